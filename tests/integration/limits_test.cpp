// Malformed input and limits against a real engine, over a bare WebSocket.
#include <fstream>

#include "clients/cpp/map_writer.hpp"
#include "raw_ws.hpp"
#include "support.hpp"

namespace troupe::test {
namespace {

using client::map_writer;
using client::reply;

class Malformed : public EngineTest {
protected:
  // The connection still answers a ping.
  void expect_usable(RawWs& raw) {
    const auto id = raw.next_id();
    map_writer w("ping");
    w.u64("id", id);
    raw.send_binary(w.finish());
    EXPECT_EQ(raw.read_reply(id).type(), "pong");
  }
  // Sends `frame` and expects `{t:"error", id, code}` back.
  void expect_error(RawWs& raw, const std::string& frame, std::uint64_t id, const std::string& code,
                    const std::string& what) {
    SCOPED_TRACE(what);
    raw.send_binary(frame);
    reply r = raw.read_reply(id);
    EXPECT_EQ(r.type(), "error");
    EXPECT_EQ(r.map().str("code").value_or(""), code);
    EXPECT_TRUE(r.map().str("reason").has_value());
  }
  // Sends `frame` (no usable id) and expects an error without an id.
  void expect_anonymous_error(RawWs& raw, const std::string& frame, const std::string& code,
                              const std::string& what) {
    SCOPED_TRACE(what);
    raw.send_binary(frame);
    auto f = raw.read();
    ASSERT_FALSE(f.closed) << "closed with " << f.close_code << " " << f.close_reason;
    ASSERT_TRUE(f.error.empty()) << f.error;
    ASSERT_TRUE(f.decoded);
    ASSERT_EQ(f.maps.size(), 1u);
    EXPECT_EQ(f.maps[0].type(), "error");
    EXPECT_EQ(f.maps[0].map().str("code").value_or(""), code);
    EXPECT_FALSE(f.maps[0].map().has("id"));
  }
};

TEST_F(Malformed, TextFrameIsClosedWith1003) {
  RawWs raw(engine().port());
  raw.hello();
  raw.send_text("{\"t\":\"ping\",\"id\":1}");
  auto end = raw.read_until_closed();
  EXPECT_TRUE(end.closed) << end.error;
  EXPECT_EQ(end.close_code, 1003);
}

TEST_F(Malformed, FrameOverOneMebibyteIsClosedWith1009) {
  RawWs raw(engine().port());
  raw.hello();
  map_writer w("pub");
  w.u64("id", 1).str("room", "big").field("data", std::string(1024 * 1024 + 16, 'x'));
  auto end = raw.send_and_expect_close(w.finish());
  EXPECT_TRUE(end.closed) << end.error;
  EXPECT_EQ(end.close_code, 1009);
}

TEST_F(Malformed, FirstMessageOtherThanConnectIsClosedWith4401) {
  RawWs raw(engine().port());
  map_writer w("ping");
  w.u64("id", 1);
  raw.send_binary(w.finish());
  std::vector<reply> maps;
  // Well before the 10 s connect deadline: this close is for the wrong first message.
  auto end = raw.read_until_closed(5s, nullptr, &maps);
  EXPECT_TRUE(end.closed) << end.error;
  EXPECT_EQ(end.close_code, 4401);
  for (auto& m : maps)
    EXPECT_NE(m.type(), "pong");
}

TEST_F(Malformed, GarbageIsABadRequestAndTheConnectionStays) {
  RawWs raw(engine().port());
  raw.hello();
  expect_anonymous_error(raw, std::string("\xc1\xc1\xc1", 3), "bad_request", "reserved byte 0xc1");
  expect_usable(raw);
  expect_anonymous_error(raw, std::string("\x85\xa1t", 3), "bad_request", "truncated map");
  expect_usable(raw);
}

TEST_F(Malformed, NonMapsAreBadRequests) {
  RawWs raw(engine().port());
  raw.hello();
  expect_anonymous_error(raw, std::string("\x92\x01\x02", 3), "bad_request", "array [1,2]");
  expect_anonymous_error(raw, std::string("\x2a", 1), "bad_request", "integer 42");
  expect_anonymous_error(raw, std::string("\xa4ping", 5), "bad_request", "string");
  expect_usable(raw);
}

TEST_F(Malformed, MissingKeysWrongTypesAndUnknownTypesAreBadRequests) {
  RawWs raw(engine().port());
  raw.hello();
  {
    map_writer w("pub");
    w.u64("id", 11).str("data", "no room");
    expect_error(raw, w.finish(), 11, "bad_request", "pub without room");
  }
  {
    map_writer w("sub");
    w.u64("id", 12);
    expect_error(raw, w.finish(), 12, "bad_request", "sub without room");
  }
  {
    map_writer w("history");
    w.u64("id", 13).str("room", "r");
    expect_error(raw, w.finish(), 13, "bad_request", "history without since");
  }
  {
    map_writer w("pub");
    w.u64("id", 14).u64("room", 5).str("data", "x");
    expect_error(raw, w.finish(), 14, "bad_request", "room as an integer");
  }
  {
    map_writer w("history");
    w.u64("id", 15).str("room", "r").str("since", "3");
    expect_error(raw, w.finish(), 15, "bad_request", "since as a string");
  }
  {
    map_writer w("sub");
    w.u64("id", 16).str("room", "r").str("since", "nope");
    expect_error(raw, w.finish(), 16, "bad_request", "sub since not a map");
  }
  {
    map_writer w("bogus");
    w.u64("id", 17);
    expect_error(raw, w.finish(), 17, "bad_request", "unknown t");
  }
  {
    std::string m; // {id: 18} without t
    m += '\x81';
    m += "\xa2id";
    m += '\x12';
    expect_error(raw, m, 18, "bad_request", "no t");
  }
  {
    map_writer w("pub");
    w.str("id", "x").str("room", "r").str("data", "id is a string");
    expect_anonymous_error(raw, w.finish(), "bad_request", "id as a string");
  }
  expect_usable(raw);
}

TEST_F(Malformed, BadRoomNamesAreBadRequests) {
  RawWs raw(engine().port());
  raw.hello();
  const std::vector<std::string> bad = {
      "", std::string(129, 'a'), "a b", "caf\xc3\xa9", "x/y", "a#b", "tab\t"};
  std::uint64_t id = 100;
  for (const auto& room : bad) {
    for (const char* t : {"sub", "pub"}) {
      map_writer w(t);
      w.u64("id", ++id).str("room", room);
      if (std::string(t) == "pub") w.str("data", "x");
      expect_error(raw, w.finish(), id, "bad_request", std::string(t) + " room '" + room + "'");
    }
  }
  // The widest valid name: 128 bytes of every allowed character class.
  std::string good = "AZaz09_-:.@";
  while (good.size() < 128)
    good += 'x';
  map_writer w("pub");
  w.u64("id", ++id).str("room", good).str("data", "ok");
  raw.send_binary(w.finish());
  EXPECT_EQ(raw.read_reply(id).type(), "ack");
  expect_usable(raw);
}

TEST_F(Malformed, DataOver64KiBIsTooLargeAndExactly64KiBIsAccepted) {
  RawWs raw(engine().port());
  raw.hello();
  // bin 16 (3-byte header) + payload: encoded size exactly 64 KiB, then one byte more.
  auto bin = [](std::size_t encoded) {
    const std::size_t payload = encoded - 3;
    EXPECT_TRUE(payload >= 256 && payload <= 0xffff);
    return std::vector<char>(payload, 'b');
  };
  auto pub = [&](std::uint64_t id, std::size_t encoded) {
    map_writer w("pub");
    w.u64("id", id).str("room", "big");
    auto payload = bin(encoded);
    auto& pk = w.begin("data");
    pk.pack_bin(static_cast<std::uint32_t>(payload.size()));
    pk.pack_bin_body(payload.data(), static_cast<std::uint32_t>(payload.size()));
    auto frame = w.finish();
    EXPECT_EQ(client::value::from_encoded(frame).object().via.map.ptr[3].val.via.bin.size + 3,
              encoded);
    return frame;
  };
  expect_error(raw, pub(2, 64 * 1024 + 1), 2, "too_large", "65537 bytes of data");
  expect_usable(raw);
  raw.send_binary(pub(3, 64 * 1024));
  auto r = raw.read_reply(3);
  EXPECT_EQ(r.type(), "ack") << r.value().to_string().substr(0, 200);
}

// Total bytes the kernel may buffer between the engine and a client that stopped reading.
std::size_t kernel_buffering(int rcvbuf) {
  std::ifstream f("/proc/sys/net/ipv4/tcp_wmem");
  std::size_t min = 0, def = 0, max = 4 * 1024 * 1024;
  f >> min >> def >> max;
  return max + 2 * static_cast<std::size_t>(rcvbuf);
}

// Whichever way writes reach the kernel (io_uring, sendmsg, several threads' batches).
class SlowConsumer : public WritePathTest {};
INSTANTIATE_TEST_SUITE_P(WritePaths, SlowConsumer, write_paths());

TEST_P(SlowConsumer, AReaderThatStopsIsCutWith4500AndOthersGetEverything) {
  constexpr int kRcvBuf = 16 * 1024;
  constexpr std::size_t kData = 60 * 1024;
  // Enough to overflow the kernel's buffers and the engine's 1 MiB queue, twice over.
  const std::size_t need = kernel_buffering(kRcvBuf) + 2 * 1024 * 1024;
  const int count = static_cast<int>(need / kData) + 16;

  RawWs slow(engine().port(), kRcvBuf);
  slow.hello("slow");
  map_writer w("sub");
  w.u64("id", 1).str("room", "flood");
  slow.send_binary(w.finish());
  EXPECT_EQ(slow.read_reply(1).type(), "subscribed");
  // From here on `slow` reads nothing until the flood is over.

  auto a = client("fast-a");
  auto b = client("fast-b");
  a->subscribe("flood");
  b->subscribe("flood");
  // Several publishers, so no single connection exceeds its request budget.
  std::vector<std::unique_ptr<blocking_connection>> pubs;
  for (int i = 0; i < 4; ++i)
    pubs.push_back(client("pub" + std::to_string(i)));
  const std::string payload(kData, 'z');
  for (int i = 0; i < count; ++i)
    pubs[i % pubs.size()]->publish("flood", value::from(payload));

  // The others receive every message, in order.
  for (auto* c : {a.get(), b.get()}) {
    auto msgs = c->take_messages(count, 30s);
    EXPECT_EQ(seqs_of(msgs), seq_range(1, count));
  }

  // The slow reader finds its stream ends with 4500 (after whatever was already buffered).
  std::size_t frames = 0;
  std::vector<reply> maps;
  auto end = slow.read_until_closed(30s, &frames, &maps);
  EXPECT_TRUE(end.closed) << "no close frame: " << end.error;
  EXPECT_EQ(end.close_code, 4500) << end.close_reason;
  std::uint64_t msgs = 0, last = 0;
  for (auto& m : maps) {
    if (m.type() == "msg") {
      ++msgs;
      auto seq = m.map().u64("seq").value_or(0);
      EXPECT_EQ(seq, last + 1); // what it got before the cut is a gap-free prefix
      last = seq;
    } else if (m.type() == "disconnect") {
      EXPECT_EQ(m.map().u64("code").value_or(0), 4500u);
      EXPECT_EQ(m.map().boolean("reconnect").value_or(false), true);
    }
  }
  EXPECT_LT(msgs, static_cast<std::uint64_t>(count)); // it really was cut
}

class Liveness : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--ping", "1"}; }
};

// With a 1 s ping: a connection that answers nothing is closed with 4408 after 2 × ping,
// while a client that is merely idle (its WebSocket layer answers the pings) stays.
TEST_F(Liveness, SilentConnectionIsClosedWith4408AndAnIdleClientStays) {
  auto idle = client("idle");
  idle->subscribe("quiet");
  RawWs silent(engine().port());
  auto hello = silent.hello("silent");
  EXPECT_EQ(hello.map().u64("ping").value_or(0), 1u);
  const std::string bytes = silent.drain_tcp_until_close(10s); // never answers a ping
  EXPECT_EQ(RawWs::close_code_in(bytes), 4408);
  int pings = 0;
  for (const auto& [op, payload] : RawWs::frames_in(bytes))
    if (op == 0x9) ++pings;
  EXPECT_GE(pings, 1) << "closed before it was ever pinged";
  // The idle client lived through the same pings, on its first connection.
  EXPECT_FALSE(idle->next_state(0ms).has_value());
  EXPECT_NO_THROW(idle->ping());
}

class Deadlines : public EngineTest {};

// The liveness sweep (transport/liveness_sweep.hpp) also keeps the two deadlines that have
// no option: a WebSocket that never sends `connect` gets 4401 after the connect deadline
// (10 s), and one that leaves our close frame unanswered is dropped at the close
// handshake's bound (5 s later), within the sweep's tick (1 s here) of each.
TEST_F(Deadlines, NoConnectGets4401AndAnUnansweredCloseIsDroppedAtItsBound) {
  const auto start = std::chrono::steady_clock::now();
  RawWs mute(engine().port());
  bool ended = false;
  const std::string bytes = mute.drain_tcp_until([](const std::string&) { return false; }, 25s,
                                                 &ended); // until the engine ends it
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(ended);
  EXPECT_EQ(RawWs::close_code_in(bytes), 4401);
  EXPECT_GE(took, 15s - 500ms);
  EXPECT_LT(took, 15s + 3s);
}

} // namespace
} // namespace troupe::test
