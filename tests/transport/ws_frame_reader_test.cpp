// transport::ws_frame_reader, the server's RFC 6455 frame parser, on bytes built here:
// masking, lengths, fragmentation, control frames, every protocol error, and input split
// at every byte.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "transport/ws_frame_reader.hpp"

using troupe::transport::ws_frame_reader;
using kind = ws_frame_reader::event_kind;

namespace {

/// A client frame: masked with `key` unless `masked` is false.
std::string client_frame(unsigned opcode, const std::string& payload, bool fin = true,
                         bool masked = true, unsigned rsv = 0) {
  std::string out;
  out.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv << 4) | opcode));
  const unsigned char mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    out.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() <= 0xffff) {
    out.push_back(static_cast<char>(mask_bit | 126));
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xff));
  } else {
    out.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i)
      out.push_back(static_cast<char>((std::uint64_t{payload.size()} >> (8 * i)) & 0xff));
  }
  const unsigned char key[4] = {0x12, 0x34, 0xab, 0xcd};
  if (masked) out.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    out.push_back(static_cast<char>(payload[i] ^ (masked ? key[i & 3] : 0)));
  return out;
}

struct seen {
  kind k;
  std::uint16_t code;
  std::string payload;
};

struct collector {
  std::vector<seen> events;
  bool stop_after_close = true;
  bool operator()(const ws_frame_reader::event& e) {
    events.push_back({e.kind, e.code, std::string(e.payload)});
    return !(stop_after_close && e.kind == kind::close);
  }
};

/// Feeds `bytes` in pieces of `piece` bytes (0: all at once); returns what feed returned last.
bool feed(ws_frame_reader& reader, collector& c, std::string bytes, std::size_t piece = 0) {
  if (piece == 0) piece = bytes.size();
  bool ok = true;
  for (std::size_t at = 0; at < bytes.size() && ok; at += piece) {
    std::string chunk = bytes.substr(at, piece);
    ok = reader.feed(chunk.data(), chunk.size(), c);
  }
  return ok;
}

TEST(WsFrameReader, UnmasksABinaryMessageOfEachLengthEncoding) {
  for (std::size_t size : {0u, 1u, 7u, 125u, 126u, 65535u, 65536u, 200000u}) {
    SCOPED_TRACE(size);
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
      payload[i] = static_cast<char>(i * 7);
    ws_frame_reader reader(1 << 20);
    collector c;
    ASSERT_TRUE(feed(reader, c, client_frame(2, payload)));
    ASSERT_EQ(c.events.size(), 1u);
    EXPECT_EQ(c.events[0].k, kind::binary);
    EXPECT_EQ(c.events[0].payload, payload);
    EXPECT_EQ(reader.held(), 0u); // nothing kept between messages
  }
}

TEST(WsFrameReader, SeveralFramesInOneReadAndAPartialOneKept) {
  ws_frame_reader reader(1 << 20);
  collector c;
  const std::string third_payload(100, 't');
  const std::string third = client_frame(2, third_payload);
  std::string bytes = client_frame(2, "one") + client_frame(2, "two") + third.substr(0, 40);
  ASSERT_TRUE(feed(reader, c, bytes));
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[1].payload, "two");
  EXPECT_GT(reader.held(), 0u); // the 40 bytes of the third frame
  ASSERT_TRUE(feed(reader, c, third.substr(40)));
  ASSERT_EQ(c.events.size(), 3u);
  EXPECT_EQ(c.events[2].payload, third_payload);
  EXPECT_EQ(reader.held(), 0u);
}

TEST(WsFrameReader, EverySplitOfAStreamGivesTheSameMessages) {
  const std::string stream = client_frame(2, std::string(300, 'a')) + client_frame(9, "p") +
                             client_frame(2, "x", false) + client_frame(10, "") +
                             client_frame(0, "y", false) + client_frame(0, "z") +
                             client_frame(2, "last");
  for (std::size_t piece : {1u, 2u, 3u, 5u, 13u, 64u, 1000u}) {
    SCOPED_TRACE(piece);
    ws_frame_reader reader(1 << 20);
    collector c;
    ASSERT_TRUE(feed(reader, c, stream, piece));
    ASSERT_EQ(c.events.size(), 5u);
    EXPECT_EQ(c.events[0].payload, std::string(300, 'a'));
    EXPECT_EQ(c.events[1].k, kind::ping);
    EXPECT_EQ(c.events[1].payload, "p");
    EXPECT_EQ(c.events[2].k, kind::pong); // a control frame between fragments
    EXPECT_EQ(c.events[3].k, kind::binary);
    EXPECT_EQ(c.events[3].payload, "xyz");
    EXPECT_EQ(c.events[4].payload, "last");
    EXPECT_EQ(reader.held(), 0u);
  }
}

TEST(WsFrameReader, TextMessagesAreReportedAsText) {
  ws_frame_reader reader(1 << 20);
  collector c;
  ASSERT_TRUE(feed(reader, c, client_frame(1, "he", false) + client_frame(0, "llo")));
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].k, kind::text);
  EXPECT_EQ(c.events[0].payload, "hello");
}

TEST(WsFrameReader, CloseFramesCarryTheirCodeAndReason) {
  {
    ws_frame_reader reader(1 << 20);
    collector c;
    EXPECT_FALSE(feed(reader, c, client_frame(8, std::string("\x03\xe8", 2) + "bye")));
    ASSERT_EQ(c.events.size(), 1u);
    EXPECT_EQ(c.events[0].k, kind::close);
    EXPECT_EQ(c.events[0].code, 1000);
    EXPECT_EQ(c.events[0].payload, "bye");
  }
  {
    ws_frame_reader reader(1 << 20);
    collector c;
    EXPECT_FALSE(feed(reader, c, client_frame(8, "")));
    ASSERT_EQ(c.events.size(), 1u);
    EXPECT_EQ(c.events[0].code, 1005);
  }
}

struct bad_case {
  const char* what;
  std::string bytes;
  std::uint16_t code;
};

TEST(WsFrameReader, ProtocolErrorsEndTheStreamWithTheirCode) {
  const std::vector<bad_case> cases = {
      {"unmasked", client_frame(2, "x", true, false), 1002},
      {"rsv1", client_frame(2, "x", true, true, 4), 1002},
      {"rsv3", client_frame(2, "x", true, true, 1), 1002},
      {"unknown opcode", client_frame(3, "x"), 1002},
      {"unknown control opcode", client_frame(11, ""), 1002},
      {"continuation of nothing", client_frame(0, "x"), 1002},
      {"new message inside a fragmented one", client_frame(2, "a", false) + client_frame(2, "b"),
       1002},
      {"fragmented ping", client_frame(9, "", false), 1002},
      {"ping over 125 bytes", client_frame(9, std::string(126, 'p')), 1002},
      {"close of one byte", client_frame(8, "x"), 1002},
      {"close code 1005", client_frame(8, std::string("\x03\xed", 2)), 1002},
      {"close code 999", client_frame(8, std::string("\x03\xe7", 2)), 1002},
      {"oversize frame", client_frame(2, std::string(1001, 'x')), 1009},
      {"oversize message",
       client_frame(2, std::string(600, 'x'), false) + client_frame(0, std::string(600, 'x')),
       1009},
      {"length not minimal", std::string("\x82\xfe\x00\x05", 4) + "abcd" + "hello", 1002},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.what);
    for (std::size_t piece : {0u, 1u}) {
      ws_frame_reader reader(1000);
      collector c;
      EXPECT_FALSE(feed(reader, c, bad.bytes, piece));
      ASSERT_FALSE(c.events.empty());
      EXPECT_EQ(c.events.back().k, kind::error);
      EXPECT_EQ(c.events.back().code, bad.code);
      EXPECT_EQ(reader.held(), 0u);
    }
  }
}

TEST(WsFrameReader, AnOversizeFrameIsRefusedAtItsHeaderBeforeItsPayload) {
  ws_frame_reader reader(1000);
  collector c;
  const std::string frame = client_frame(2, std::string(100000, 'x'));
  EXPECT_FALSE(feed(reader, c, frame.substr(0, 14)));
  ASSERT_EQ(c.events.size(), 1u);
  EXPECT_EQ(c.events[0].code, 1009);
}

TEST(WsFrameReader, AStopFromTheHandlerEndsParsing) {
  ws_frame_reader reader(1 << 20);
  collector c;
  std::string bytes = client_frame(2, "a") + client_frame(8, "") + client_frame(2, "after");
  EXPECT_FALSE(feed(reader, c, bytes));
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[1].k, kind::close);
}

} // namespace
