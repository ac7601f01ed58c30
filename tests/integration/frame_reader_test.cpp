// The engine's WebSocket frame reader (transport/ws_frame_reader.hpp) through a real engine
// on loopback: frames written byte for byte by the test, below any WebSocket library, so
// that what no library would send (unmasked frames, RSV bits, a length it never follows
// with a payload) reaches the server, and the server's answers are read as raw bytes.
#include "clients/cpp/decode.hpp"
#include "clients/cpp/map_writer.hpp"
#include "raw_ws.hpp"
#include "support.hpp"

namespace troupe::test {
namespace {

using client::map_writer;

class FrameReader : public EngineTest {
protected:
  /// A `ping` request map with `id`: the engine answers `{t:"pong", id}`.
  static std::string ping_request(std::uint64_t id) {
    map_writer w("ping");
    w.u64("id", id);
    return w.finish();
  }
  /// Sends `bytes` raw and expects the server to close with `code` and then end the TCP
  /// connection.
  static void expect_close(RawWs& raw, const std::string& bytes, int code) {
    raw.send_tcp(bytes);
    bool ended = false;
    const auto out = raw.drain_tcp_until([](const std::string&) { return false; }, 10s, &ended);
    EXPECT_EQ(RawWs::close_code_in(out), code);
    EXPECT_TRUE(ended);
  }
};

TEST_F(FrameReader, UnmaskedFrameIsClosedWith1002) {
  RawWs raw(engine().port());
  raw.hello();
  expect_close(raw, RawWs::client_frame(2, ping_request(1), true, false), 1002);
}

TEST_F(FrameReader, ReservedBitsAreClosedWith1002) {
  RawWs raw(engine().port());
  raw.hello();
  expect_close(raw, RawWs::client_frame(2, ping_request(1), true, true, 4), 1002);
}

TEST_F(FrameReader, UnknownOpcodeIsClosedWith1002) {
  RawWs raw(engine().port());
  raw.hello();
  expect_close(raw, RawWs::client_frame(5, "x"), 1002);
}

TEST_F(FrameReader, OversizeFrameIsClosedWith1009AtItsHeader) {
  RawWs raw(engine().port());
  raw.hello();
  // Only the header of a 2 MiB frame: the server refuses it before any payload.
  const std::string frame = RawWs::client_frame(2, std::string(2 << 20, 'x'));
  expect_close(raw, frame.substr(0, 14), 1009);
}

TEST_F(FrameReader, OversizeFragmentedMessageIsClosedWith1009) {
  RawWs raw(engine().port());
  raw.hello();
  const std::string half(600 * 1024, 'x');
  raw.send_tcp(RawWs::client_frame(2, half, false));
  expect_close(raw, RawWs::client_frame(0, half), 1009);
}

TEST_F(FrameReader, FragmentedTextMessageIsClosedWith1003) {
  RawWs raw(engine().port());
  raw.hello();
  expect_close(raw, RawWs::client_frame(1, "{\"t\":", false) + RawWs::client_frame(0, "1}"), 1003);
}

TEST_F(FrameReader, FragmentedBinaryMessageIsReassembled) {
  RawWs raw(engine().port());
  raw.hello();
  // Two requests in one message, cut in three fragments, a ping between them.
  const std::string message = ping_request(7) + ping_request(8);
  raw.send_tcp(RawWs::client_frame(2, message.substr(0, 3), false) +
               RawWs::client_frame(9, "between") +
               RawWs::client_frame(0, message.substr(3, 9), false) +
               RawWs::client_frame(0, message.substr(12)));
  // Read below the WebSocket: the pong to the ping in the middle, then both replies.
  std::vector<client::reply> maps;
  bool pong = false;
  raw.drain_tcp_until([&](const std::string& bytes) {
    maps.clear();
    pong = false;
    for (const auto& [op, payload] : RawWs::frames_in(bytes)) {
      if (op == 0xA) pong = payload == "between";
      if (op == 0x2) client::split_frame(payload, maps);
    }
    return pong && maps.size() >= 2;
  });
  EXPECT_TRUE(pong);
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].type(), "pong");
  EXPECT_EQ(maps[0].map().u64("id"), 7u);
  EXPECT_EQ(maps[1].type(), "pong");
  EXPECT_EQ(maps[1].map().u64("id"), 8u);
}

TEST_F(FrameReader, PingIsAnsweredWithPongCarryingItsPayload) {
  RawWs raw(engine().port());
  raw.hello();
  raw.send_tcp(RawWs::client_frame(9, "are you there"));
  const auto out = raw.drain_tcp_until([](const std::string& bytes) {
    for (const auto& [op, payload] : RawWs::frames_in(bytes))
      if (op == 0xA) return true;
    return false;
  });
  bool pong = false;
  for (const auto& [op, payload] : RawWs::frames_in(out))
    if (op == 0xA) {
      pong = true;
      EXPECT_EQ(payload, "are you there");
    }
  EXPECT_TRUE(pong);
}

TEST_F(FrameReader, ClientCloseIsAnsweredWithCloseAndTheConnectionEnds) {
  RawWs raw(engine().port());
  raw.hello();
  expect_close(raw, RawWs::client_frame(8, std::string("\x0f\xa0", 2) + "bye"), 4000);
}

TEST_F(FrameReader, ClientCloseWithoutCodeIsAnsweredWithoutCode) {
  RawWs raw(engine().port());
  raw.hello();
  expect_close(raw, RawWs::client_frame(8, ""), 1005);
}

TEST_F(FrameReader, MessagesSplitByteByByteArriveWhole) {
  RawWs raw(engine().port());
  // The connect and a 200-byte frame written one byte per TCP write, then an 80 kB frame
  // (a 64-bit length) in pieces of 997 bytes.
  map_writer connect("connect");
  connect.u64("id", 1).str("user", "bytewise");
  raw.send_tcp(RawWs::client_frame(2, connect.finish()), 1);
  EXPECT_EQ(raw.read_reply(1).type(), "connected");
  map_writer pub("pub");
  pub.u64("id", 2).str("room", "split").field("data", std::string(200, 'd'));
  raw.send_tcp(RawWs::client_frame(2, pub.finish() + ping_request(3)), 1);
  EXPECT_EQ(raw.read_reply(3).type(), "pong");
  map_writer pub1("pub"), pub2("pub");
  pub1.u64("id", 4).str("room", "split").field("data", std::string(40000, 'e'));
  pub2.u64("id", 5).str("room", "split").field("data", std::string(40000, 'f'));
  const std::string big = pub1.finish() + pub2.finish() + ping_request(6);
  raw.send_tcp(RawWs::client_frame(2, big), 997);
  EXPECT_EQ(raw.read_reply(6).type(), "pong");
}

} // namespace
} // namespace troupe::test
