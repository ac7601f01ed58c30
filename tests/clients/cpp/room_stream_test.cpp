// The client's pure logic, without an engine: the per-room gap logic, backoff, URLs, the
// frame codec (batches, unknown keys), the request table.
#include <gtest/gtest.h>

#include <set>

#include "clients/cpp/backoff.hpp"
#include "clients/cpp/decode.hpp"
#include "clients/cpp/map_writer.hpp"
#include "clients/cpp/request_table.hpp"
#include "clients/cpp/room_stream.hpp"
#include "clients/cpp/url.hpp"

using namespace troupe::client;

namespace {

struct recorder : room_stream::sink {
  std::vector<std::uint64_t> delivered;
  std::vector<subscribed_event> events;
  std::vector<std::uint64_t> history_requests;
  std::vector<std::optional<log_position>> resubscribes;
  void deliver(const message& m) override { delivered.push_back(m.seq); }
  void subscribed(const subscribed_event& ev) override { events.push_back(ev); }
  void fetch_history(const std::string&, std::uint64_t since) override {
    history_requests.push_back(since);
  }
  void resubscribe(const std::string&, const std::optional<log_position>& since) override {
    resubscribes.push_back(since);
  }
};

message msg(std::uint64_t seq) {
  message m;
  m.room = "r";
  m.seq = seq;
  m.user = "u";
  return m;
}

subscribed_event sub(std::uint64_t seq, std::string epoch, bool recovered,
                     std::vector<std::uint64_t> msgs = {}) {
  subscribed_event ev;
  ev.room = "r";
  ev.seq = seq;
  ev.epoch = std::move(epoch);
  ev.recovered = recovered;
  for (auto s : msgs)
    ev.msgs.push_back(msg(s));
  return ev;
}

history_reply hist(std::uint64_t seq, std::string epoch, std::vector<std::uint64_t> msgs) {
  history_reply h;
  h.room = "r";
  h.seq = seq;
  h.epoch = std::move(epoch);
  for (auto s : msgs)
    h.msgs.push_back(msg(s));
  return h;
}

std::vector<std::uint64_t> range(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> v;
  for (auto i = from; i <= to; ++i)
    v.push_back(i);
  return v;
}

} // namespace

TEST(RoomStream, InitialSubscriptionThenInOrderPushes) {
  recorder r;
  room_stream s("r", r);
  EXPECT_FALSE(s.begin_subscribe().has_value());
  s.on_subscribed(sub(5, "e1", false, {4, 5}));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, subscribe_kind::initial);
  EXPECT_TRUE(r.delivered.empty()); // the snapshot is in the event, not the stream
  s.on_push(msg(6));
  s.on_push(msg(7));
  s.on_push(msg(7)); // duplicate
  s.on_push(msg(3)); // old
  EXPECT_EQ(r.delivered, range(6, 7));
  EXPECT_EQ(s.phase(), room_stream::phase_kind::live);
}

TEST(RoomStream, GapIsFilledFromHistoryAndHeldPushesFollowInOrder) {
  recorder r;
  room_stream s("r", r);
  s.begin_subscribe();
  s.on_subscribed(sub(10, "e1", false));
  s.on_push(msg(11));
  s.on_push(msg(14)); // gap: 12, 13 missing
  ASSERT_EQ(r.history_requests, std::vector<std::uint64_t>{11});
  EXPECT_EQ(s.phase(), room_stream::phase_kind::fetching);
  s.on_push(msg(16));
  s.on_push(msg(15));
  EXPECT_EQ(r.delivered, range(11, 11)); // held back
  s.on_history(hist(16, "e1", {12, 13, 14, 15, 16}));
  EXPECT_EQ(r.delivered, range(11, 16));
  EXPECT_EQ(s.phase(), room_stream::phase_kind::live);
  EXPECT_EQ(r.history_requests.size(), 1u);
  s.on_push(msg(17));
  EXPECT_EQ(r.delivered, range(11, 17));
}

TEST(RoomStream, HistoryPagesAreFollowed) {
  recorder r;
  room_stream s("r", r);
  s.begin_subscribe();
  s.on_subscribed(sub(0, "e", false));
  s.on_push(msg(2000));
  ASSERT_EQ(r.history_requests, std::vector<std::uint64_t>{0});
  s.on_history(hist(2000, "e", range(1, 1000)));
  ASSERT_EQ(r.history_requests, (std::vector<std::uint64_t>{0, 1000}));
  s.on_history(hist(2000, "e", range(1001, 1999)));
  EXPECT_EQ(r.delivered, range(1, 2000));
  EXPECT_EQ(s.phase(), room_stream::phase_kind::live);
}

TEST(RoomStream, HistoryThatNoLongerReachesBackRebuilds) {
  recorder r;
  room_stream s("r", r);
  s.begin_subscribe();
  s.on_subscribed(sub(10, "e1", false));
  s.on_push(msg(50));
  s.on_history(hist(50, "e1", range(41, 50))); // 11..40 are gone
  ASSERT_EQ(r.resubscribes.size(), 1u);
  EXPECT_FALSE(r.resubscribes[0].has_value()); // resubscribe without since
  EXPECT_TRUE(r.delivered.empty());            // never a stream with a hole
  EXPECT_EQ(s.phase(), room_stream::phase_kind::subscribing);
  s.on_push(msg(51)); // ignored until the new subscription
  s.on_subscribed(sub(51, "e1", false, range(42, 51)));
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[1].kind, subscribe_kind::rebuilt);
  s.on_push(msg(52));
  EXPECT_EQ(r.delivered, range(52, 52));
}

TEST(RoomStream, HistoryOfAnotherEpochRebuilds) {
  recorder r;
  room_stream s("r", r);
  s.begin_subscribe();
  s.on_subscribed(sub(3, "e1", false));
  s.on_push(msg(5));
  s.on_history(hist(5, "e2", {4, 5}));
  ASSERT_EQ(r.resubscribes.size(), 1u);
  EXPECT_TRUE(r.delivered.empty());
}

TEST(RoomStream, FailedHistoryResubscribesFromThePosition) {
  recorder r;
  room_stream s("r", r);
  s.begin_subscribe();
  s.on_subscribed(sub(3, "e1", false));
  s.on_push(msg(6));
  s.on_history_failed();
  ASSERT_EQ(r.resubscribes.size(), 1u);
  ASSERT_TRUE(r.resubscribes[0].has_value());
  EXPECT_EQ(r.resubscribes[0]->seq, 3u);
  s.on_subscribed(sub(6, "e1", true, {4, 5, 6}));
  EXPECT_EQ(r.delivered, range(4, 6));
  EXPECT_EQ(r.events.back().kind, subscribe_kind::recovered);
}

TEST(RoomStream, ReconnectRecoversExactlyOnce) {
  recorder r;
  room_stream s("r", r);
  s.begin_subscribe();
  s.on_subscribed(sub(0, "e1", false));
  for (std::uint64_t i = 1; i <= 5; ++i)
    s.on_push(msg(i));
  s.on_connection_lost();
  s.on_push(msg(9)); // stale, ignored
  auto since = s.begin_subscribe();
  ASSERT_TRUE(since.has_value());
  EXPECT_EQ(since->seq, 5u);
  EXPECT_EQ(since->epoch, "e1");
  s.on_subscribed(sub(8, "e1", true, {4, 5, 6, 7, 8})); // overlapping items are skipped
  s.on_push(msg(8));
  s.on_push(msg(9));
  EXPECT_EQ(r.delivered, range(1, 9));
  EXPECT_EQ(r.events.back().kind, subscribe_kind::recovered);
}

TEST(RoomStream, NotRecoveredAfterReconnectIsRebuilt) {
  recorder r;
  room_stream s("r", r);
  s.begin_subscribe();
  s.on_subscribed(sub(2, "e1", false));
  s.on_connection_lost();
  ASSERT_TRUE(s.begin_subscribe().has_value());
  s.on_subscribed(sub(0, "e2", false));
  EXPECT_EQ(r.events.back().kind, subscribe_kind::rebuilt);
  EXPECT_EQ(s.epoch(), "e2");
  EXPECT_EQ(s.last_seq(), 0u);
  s.on_push(msg(1));
  EXPECT_EQ(r.delivered, range(1, 1));
}

TEST(RoomStream, RecoveredWithAHoleFetchesTheRest) {
  recorder r;
  room_stream s("r", r);
  s.begin_subscribe();
  s.on_subscribed(sub(2, "e1", false));
  s.on_connection_lost();
  s.begin_subscribe();
  s.on_subscribed(sub(6, "e1", true, {3, 5, 6})); // 4 missing: a server bug, still handled
  EXPECT_EQ(r.delivered, range(3, 3));
  ASSERT_EQ(r.history_requests, std::vector<std::uint64_t>{3});
  s.on_history(hist(6, "e1", {4, 5, 6}));
  EXPECT_EQ(r.delivered, range(3, 6));
}

TEST(Backoff, GrowsWithJitterAndIsCapped) {
  backoff b({std::chrono::milliseconds(100), std::chrono::milliseconds(1000), 2.0}, 42);
  std::vector<long long> d;
  for (int i = 0; i < 8; ++i)
    d.push_back(b.next().count());
  EXPECT_GE(d[0], 50);
  EXPECT_LE(d[0], 100);
  EXPECT_GE(d[3], 400);
  EXPECT_LE(d[3], 800);
  for (int i = 4; i < 8; ++i) {
    EXPECT_GE(d[i], 500);
    EXPECT_LE(d[i], 1000);
  }
  std::set<long long> distinct(d.begin() + 4, d.end());
  EXPECT_GT(distinct.size(), 1u); // jitter
  b.reset();
  EXPECT_LE(b.next().count(), 100);
}

TEST(Url, Parses) {
  auto u = parsed_url::parse("ws://127.0.0.1:8080/ws");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->target, "/ws");
  auto v = parsed_url::parse("ws://example.org");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->port, "80");
  EXPECT_EQ(v->target, "/");
  auto w = parsed_url::parse("ws://[::1]:9/x?y=1");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->host, "::1");
  EXPECT_EQ(w->host_header(), "[::1]:9");
  EXPECT_FALSE(parsed_url::parse("http://x/"));
  EXPECT_FALSE(parsed_url::parse("ws://x:abc/"));
}

TEST(Codec, BatchedMapsWithUnknownKeysDecode) {
  map_writer a("msg");
  a.str("room", "lobby")
      .u64("seq", 7)
      .str("user", "bob")
      .str("data", "hi")
      .i64("ts", 1)
      .str("zzz", "new");
  map_writer b("ack");
  b.u64("id", 3).str("room", "lobby").u64("seq", 8).field("future", std::vector<int>{1, 2});
  const std::string frame = a.finish() + b.finish();
  std::vector<reply> maps;
  ASSERT_TRUE(split_frame(frame, maps));
  ASSERT_EQ(maps.size(), 2u);
  EXPECT_EQ(maps[0].type(), "msg");
  auto m = parse_message(maps[0], maps[0].object());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->seq, 7u);
  EXPECT_EQ(m->user, "bob");
  EXPECT_EQ(m->data.str().value_or(""), "hi");
  auto ack = parse_ack(maps[1]);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->seq, 8u);
  std::vector<reply> bad;
  EXPECT_FALSE(split_frame(std::string("\xc1", 1), bad));
}

TEST(Codec, ManyFieldsUseMap16) {
  map_writer w("x");
  for (int i = 0; i < 20; ++i)
    w.u64("k" + std::to_string(i), i);
  auto s = w.finish();
  auto v = value::from_encoded(s);
  ASSERT_EQ(v.type(), msgpack::type::MAP);
  EXPECT_EQ(v.object().via.map.size, 21u);
}

TEST(RequestTable, LostRequestsFailUnlessIdempotent) {
  request_table t;
  int failed = 0;
  auto h = [&](result<reply> r) {
    if (!r.ok()) ++failed;
  };
  const auto now = request_table::clock::now();
  t.add(1, {h, now + std::chrono::seconds(10), "a", false, true});
  t.add(2, {h, now + std::chrono::seconds(10), "b", true, true});
  t.add(3, {h, now + std::chrono::seconds(10), "c", false, false});
  auto lost = t.take_lost();
  EXPECT_EQ(lost.size(), 1u);
  std::vector<std::string> sent;
  t.send_unsent([&](std::string f) { sent.push_back(f); });
  EXPECT_EQ(sent, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(t.take_expired(now + std::chrono::seconds(11)).size(), 2u);
  EXPECT_TRUE(t.empty());
}
