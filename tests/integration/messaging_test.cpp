// Messages against a real engine: total order, idempotency, history, ping, batches.
#include <map>
#include <set>
#include <thread>

#include "clients/cpp/map_writer.hpp"
#include "raw_ws.hpp"
#include "support.hpp"

namespace troupe::test {
namespace {

class Messaging : public EngineTest {};

// The same behaviour whichever way the fan-out's writes reach the kernel.
class WritePaths : public WritePathTest {};
INSTANTIATE_TEST_SUITE_P(Messaging, WritePaths, write_paths());

TEST_F(Messaging, PingIsAnsweredWithPong) {
  auto c = client("alice");
  EXPECT_NO_THROW(c->ping());

  RawWs raw(engine().port());
  raw.hello();
  client::map_writer w("ping");
  w.u64("id", 77);
  raw.send_binary(w.finish());
  auto reply = raw.read_reply(77);
  EXPECT_EQ(reply.type(), "pong");
}

TEST_F(Messaging, ConnectedReplyCarriesClientUserAndPing) {
  RawWs raw(engine().port());
  auto r = raw.hello("carol");
  EXPECT_EQ(r.type(), "connected");
  auto m = r.map();
  EXPECT_TRUE(m.has("client"));
  EXPECT_EQ(m.str("user").value_or(""), "carol");
  EXPECT_EQ(m.u64("ping").value_or(0), 25u); // the default interval
}

TEST_P(WritePaths, EverySubscriberSeesOneTotalOrderOfConcurrentPublishers) {
  constexpr int kPublishers = 4;
  constexpr int kEach = 50;
  constexpr int kTotal = kPublishers * kEach;
  const std::string room = "order";

  std::vector<std::unique_ptr<blocking_connection>> subs;
  for (int i = 0; i < 3; ++i) {
    subs.push_back(client("sub" + std::to_string(i)));
    auto ev = subs.back()->subscribe(room);
    EXPECT_EQ(ev.seq, 0u);
    EXPECT_EQ(ev.kind, client::subscribe_kind::initial);
  }
  std::vector<std::unique_ptr<blocking_connection>> pubs;
  for (int p = 0; p < kPublishers; ++p)
    pubs.push_back(client("pub" + std::to_string(p)));

  // Each publisher publishes in its own thread, each publish after the previous ack.
  std::map<std::string, std::uint64_t> acked; // data -> seq
  std::mutex acked_m;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int p = 0; p < kPublishers; ++p) {
    threads.emplace_back([&, p] {
      try {
        for (int k = 0; k < kEach; ++k) {
          const std::string data = "p" + std::to_string(p) + "-" + std::to_string(k);
          auto ack = pubs[p]->publish(room, value::from(data));
          std::lock_guard<std::mutex> l(acked_m);
          acked[data] = ack.seq;
        }
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << "publisher " << p << ": " << e.what();
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_EQ(acked.size(), static_cast<std::size_t>(kTotal));

  std::vector<std::vector<message>> seen;
  for (auto& s : subs)
    seen.push_back(s->take_messages(kTotal));
  // seq 1..N without holes or duplicates, for everyone.
  for (const auto& msgs : seen)
    EXPECT_EQ(seqs_of(msgs), seq_range(1, kTotal));
  // The same order for everyone: same data and user at each seq.
  for (std::size_t s = 1; s < seen.size(); ++s)
    for (int i = 0; i < kTotal; ++i) {
      EXPECT_EQ(text_of(seen[s][i]), text_of(seen[0][i])) << "at seq " << i + 1;
      EXPECT_EQ(seen[s][i].user, seen[0][i].user) << "at seq " << i + 1;
    }
  // Each message sits at the seq its ack named, with its publisher as user; each
  // publisher's messages in its own (causal) order.
  std::map<std::string, int> last_k;
  for (const auto& m : seen[0]) {
    const auto data = text_of(m);
    ASSERT_TRUE(acked.count(data)) << data;
    EXPECT_EQ(acked[data], m.seq) << data;
    const auto dash = data.find('-');
    const std::string pub = data.substr(0, dash);
    EXPECT_EQ(m.user, "pub" + pub.substr(1));
    const int k = std::stoi(data.substr(dash + 1));
    auto it = last_k.find(pub);
    if (it != last_k.end()) {
      EXPECT_GT(k, it->second) << data;
    }
    last_k[pub] = k;
    EXPECT_GT(m.ts, 0);
  }
  // Nothing more arrives after the sentinel.
  pubs[0]->publish(room, value::from("end"));
  for (auto& s : subs) {
    auto m = s->next_message();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->seq, static_cast<std::uint64_t>(kTotal + 1));
    EXPECT_EQ(text_of(*m), "end");
  }
}

TEST_F(Messaging, PublishWithTheSameKeyTwiceIsDeliveredOnce) {
  auto sub = client("sub");
  sub->subscribe("idem");
  auto pub = client("pub");
  auto first = pub->publish("idem", value::from("once"), "key-1");
  auto second = pub->publish("idem", value::from("once again"), "key-1");
  EXPECT_EQ(first.seq, 1u);
  EXPECT_EQ(second.seq, first.seq);
  // The key is the room's: another connection's resend is deduplicated too.
  auto other = client("other");
  EXPECT_EQ(other->publish("idem", value::from("third time"), "key-1").seq, first.seq);
  auto next = pub->publish("idem", value::from("next"), "key-2");
  EXPECT_EQ(next.seq, 2u);

  auto msgs = sub->take_messages(2);
  EXPECT_EQ(seqs_of(msgs), seq_range(1, 2));
  EXPECT_EQ(text_of(msgs[0]), "once");
  EXPECT_EQ(msgs[0].key.value_or(""), "key-1");
  EXPECT_EQ(text_of(msgs[1]), "next");
  pub->publish("idem", value::from("sentinel"));
  auto m = sub->next_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(text_of(*m), "sentinel");
  EXPECT_EQ(m->seq, 3u);
}

TEST_F(Messaging, HistoryReturnsKeptMessagesAfterSince) {
  auto pub = client("pub");
  for (int i = 1; i <= 20; ++i)
    pub->publish("hist", value::from("m" + std::to_string(i)));
  auto sub = client("sub");
  auto ev = sub->subscribe("hist");
  EXPECT_EQ(ev.kind, client::subscribe_kind::initial);
  EXPECT_EQ(ev.seq, 20u);
  EXPECT_EQ(seqs_of(ev.msgs), seq_range(1, 20)); // newest kept (≤ 100)

  auto h = sub->history("hist", 5, 10);
  EXPECT_EQ(h.room, "hist");
  EXPECT_EQ(h.seq, 20u);
  EXPECT_EQ(h.epoch, ev.epoch);
  EXPECT_EQ(seqs_of(h.msgs), seq_range(6, 15));
  for (const auto& m : h.msgs) {
    EXPECT_EQ(m.room, "hist");
    EXPECT_EQ(text_of(m), "m" + std::to_string(m.seq));
    EXPECT_EQ(m.user, "pub");
    EXPECT_GT(m.ts, 0);
  }
  EXPECT_EQ(seqs_of(sub->history("hist", 0).msgs), seq_range(1, 20));
  EXPECT_TRUE(sub->history("hist", 20).msgs.empty());
  // History needs read permission only, not a subscription.
  auto reader = client("reader");
  EXPECT_EQ(seqs_of(reader->history("hist", 18).msgs), seq_range(19, 20));

  // Items have the shape of the `msg` push.
  RawWs raw(engine().port());
  raw.hello();
  client::map_writer w("history");
  w.u64("id", 5).str("room", "hist").u64("since", 19);
  raw.send_binary(w.finish());
  auto r = raw.read_reply(5);
  EXPECT_EQ(r.type(), "history");
  auto items = r.map().array("msgs");
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size, 1u);
  client::map_view item(items->ptr[0]);
  EXPECT_EQ(item.str("t").value_or(""), "msg");
  EXPECT_EQ(item.str("room").value_or(""), "hist");
  EXPECT_EQ(item.u64("seq").value_or(0), 20u);
  EXPECT_TRUE(item.has("user"));
  EXPECT_TRUE(item.has("data"));
  EXPECT_TRUE(item.has("ts"));
}

TEST_F(Messaging, SeveralMapsInOneFrameAreAllAnswered) {
  RawWs raw(engine().port());
  raw.hello();
  client::map_writer a("ping");
  a.u64("id", 1);
  client::map_writer b("pub");
  b.u64("id", 2).str("room", "batch").str("data", "x");
  client::map_writer c("ping");
  c.u64("id", 3);
  raw.send_binary(a.finish() + b.finish() + c.finish());
  std::set<std::uint64_t> ids;
  std::map<std::uint64_t, std::string> types;
  while (ids.size() < 3) {
    auto f = raw.read();
    ASSERT_FALSE(f.closed) << f.close_code;
    ASSERT_TRUE(f.error.empty()) << f.error;
    for (auto& m : f.maps)
      if (auto id = m.map().u64("id")) {
        ids.insert(*id);
        types[*id] = std::string(m.type());
      }
  }
  EXPECT_EQ(types[1], "pong");
  EXPECT_EQ(types[2], "ack");
  EXPECT_EQ(types[3], "pong");
}

TEST_F(Messaging, UnsubscribeStopsDelivery) {
  auto sub = client("sub");
  sub->subscribe("a");
  sub->subscribe("b");
  auto pub = client("pub");
  pub->publish("a", value::from("a1"));
  EXPECT_EQ(text_of(sub->take_messages(1)[0]), "a1");
  sub->unsubscribe("a");
  pub->publish("a", value::from("a2"));
  pub->publish("b", value::from("b1"));
  auto m = sub->next_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->room, "b"); // a2 never came
  EXPECT_EQ(text_of(*m), "b1");
}

} // namespace
} // namespace troupe::test
