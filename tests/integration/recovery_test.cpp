// Recovery against a real engine: cut connections, short history, engine restarts.
#include <sys/wait.h>

#include <fstream>
#include <future>
#include <thread>

#include "support.hpp"

namespace troupe::test {
namespace {

using client::connection_state;
using client::subscribe_kind;

// Publishers here send hundreds of messages back to back, past the request budget.
class Recovery : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--rate", "0"}; }
};

TEST_F(Recovery, CutConnectionRecoversEveryMissedMessageExactlyOnceInOrder) {
  auto sub = client("sub");
  auto first = sub->subscribe("cut");
  EXPECT_EQ(first.kind, subscribe_kind::initial);
  auto pub = client("pub");
  for (int i = 1; i <= 10; ++i)
    pub->publish("cut", value::from("m" + std::to_string(i)));
  EXPECT_EQ(seqs_of(sub->take_messages(10)), seq_range(1, 10));

  sub->drop_connection(/*reconnect=*/false); // RST, no close handshake
  auto down = sub->wait_state(connection_state::disconnected);
  EXPECT_EQ(down.close_code, 0);
  for (int i = 11; i <= 40; ++i)
    pub->publish("cut", value::from("m" + std::to_string(i)));

  sub->reconnect_now();
  sub->wait_state(connection_state::connected);
  std::optional<client::subscribed_event> ev;
  while ((ev = sub->next_subscribed()) && ev->kind == subscribe_kind::initial) {}
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, subscribe_kind::recovered);
  EXPECT_TRUE(ev->recovered);
  EXPECT_EQ(ev->seq, 40u);
  EXPECT_EQ(ev->epoch, first.epoch);
  auto missed = sub->take_messages(30);
  EXPECT_EQ(seqs_of(missed), seq_range(11, 40));
  for (const auto& m : missed)
    EXPECT_EQ(text_of(m), "m" + std::to_string(m.seq));

  pub->publish("cut", value::from("m41"));
  auto next = sub->next_message();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->seq, 41u); // nothing duplicated before it
  EXPECT_EQ(sub->queued_messages(), 0u);
}

TEST_F(Recovery, CutsDuringTrafficLoseAndRepeatNothing) {
  constexpr int kTotal = 300;
  auto sub = client("sub");
  sub->subscribe("busy");
  auto pub = client("pub");
  std::atomic<bool> pub_failed{false};
  std::thread publisher([&] {
    try {
      for (int i = 1; i <= kTotal; ++i)
        pub->publish("busy", value::from("m" + std::to_string(i)));
    } catch (const std::exception& e) {
      pub_failed = true;
      ADD_FAILURE() << "publisher: " << e.what();
    }
  });
  std::vector<std::uint64_t> got;
  while (got.size() < static_cast<std::size_t>(kTotal)) {
    auto m = sub->next_message();
    if (!m) break;
    got.push_back(m->seq);
    EXPECT_EQ(text_of(*m), "m" + std::to_string(m->seq));
    if (got.size() == 50 || got.size() == 150) {
      // Cut while the publisher goes on; the client reconnects by itself, with backoff.
      sub->drop_connection(/*reconnect=*/true);
      EXPECT_EQ(sub->wait_state(connection_state::disconnected).close_code, 0);
      sub->wait_state(connection_state::connected);
    }
  }
  publisher.join();
  ASSERT_FALSE(pub_failed.load());
  EXPECT_EQ(got, seq_range(1, kTotal));
  // Each cut was followed by one recovered resubscription.
  int recovered = 0;
  while (recovered < 2) {
    auto ev = sub->next_subscribed();
    ASSERT_TRUE(ev) << "only " << recovered << " recoveries";
    if (ev->kind == subscribe_kind::recovered)
      ++recovered;
    else
      EXPECT_EQ(ev->kind, subscribe_kind::initial);
  }
  EXPECT_FALSE(sub->next_subscribed(0ms).has_value());
  EXPECT_EQ(sub->queued_messages(), 0u);
}

class ShortHistory : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--history", "10"}; }
};

TEST_F(ShortHistory, RecoveryPastTheKeptHistoryIsReportedAsRebuilt) {
  auto sub = client("sub");
  auto first = sub->subscribe("short");
  auto pub = client("pub");
  for (int i = 1; i <= 5; ++i)
    pub->publish("short", value::from("m" + std::to_string(i)));
  EXPECT_EQ(seqs_of(sub->take_messages(5)), seq_range(1, 5));

  sub->drop_connection(/*reconnect=*/false);
  sub->wait_state(connection_state::disconnected);
  for (int i = 6; i <= 35; ++i)
    pub->publish("short", value::from("m" + std::to_string(i)));
  sub->reconnect_now();

  std::optional<client::subscribed_event> ev;
  while ((ev = sub->next_subscribed()) && ev->kind == subscribe_kind::initial) {}
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, subscribe_kind::rebuilt);
  EXPECT_FALSE(ev->recovered);
  EXPECT_EQ(ev->seq, 35u);
  EXPECT_EQ(ev->epoch, first.epoch);
  EXPECT_EQ(seqs_of(ev->msgs), seq_range(26, 35)); // the newest kept
  EXPECT_EQ(sub->queued_messages(), 0u);           // no stream with a hole

  pub->publish("short", value::from("m36"));
  auto m = sub->next_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->seq, 36u);

  // The history request itself no longer reaches back either.
  auto h = sub->history("short", 5);
  EXPECT_EQ(h.seq, 36u);
  ASSERT_FALSE(h.msgs.empty());
  EXPECT_GT(h.msgs.front().seq, 6u);
  EXPECT_EQ(h.msgs.back().seq, 36u);
}

// A subscriber of `room` sees messages 1..3, the engine is stopped (SIGTERM) and started
// again on its port; returns the subscription before and the client's event after.
struct Restarted {
  client::subscribed_event before;
  std::optional<client::subscribed_event> after;
};
Restarted restart_under(EngineProcess& engine, blocking_connection& sub, const std::string& room) {
  Restarted r{sub.subscribe(room), std::nullopt};
  {
    auto pub = connected_client(engine, "pub");
    for (int i = 1; i <= 3; ++i)
      pub->publish(room, value::from("m" + std::to_string(i)));
  }
  EXPECT_EQ(seqs_of(sub.take_messages(3)), seq_range(1, 3));
  const int status = engine.stop(); // SIGTERM
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  auto down = sub.wait_state(connection_state::disconnected);
  EXPECT_EQ(down.close_code, 4503) << down.reason;
  engine.start(engine.port());
  while ((r.after = sub.next_subscribed()) && r.after->kind == subscribe_kind::initial) {}
  return r;
}

// An engine that keeps rooms in memory only (--store memory).
class MemoryRecovery : public Recovery {
protected:
  std::vector<std::string> extra_args() const override {
    return {"--rate", "0", "--store", "memory"};
  }
};

TEST_F(MemoryRecovery, RestartOfAMemoryOnlyEngineIsANewEpoch) {
  auto sub = client("sub");
  auto [first, ev] = restart_under(engine(), *sub, "epoch");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, subscribe_kind::rebuilt);
  EXPECT_FALSE(ev->recovered);
  EXPECT_NE(ev->epoch, first.epoch);
  EXPECT_EQ(ev->seq, 0u);

  auto pub = client("pub2");
  EXPECT_EQ(pub->publish("epoch", value::from("fresh")).seq, 1u);
  auto m = sub->next_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->seq, 1u);
  EXPECT_EQ(text_of(*m), "fresh");
}

TEST_F(Recovery, RestartOfTheDurableEngineKeepsTheEpochAndRecovers) {
  auto sub = client("sub");
  auto [first, ev] = restart_under(engine(), *sub, "kept");
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, subscribe_kind::recovered);
  EXPECT_TRUE(ev->recovered);
  EXPECT_EQ(ev->epoch, first.epoch);
  EXPECT_EQ(ev->seq, 3u);

  // The history survived too, and the sequence goes on where it was.
  auto pub = client("pub2");
  EXPECT_EQ(pub->publish("kept", value::from("m4")).seq, 4u);
  auto m = sub->next_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->seq, 4u);
  auto h = pub->history("kept", 0);
  EXPECT_EQ(seqs_of(h.msgs), seq_range(1, 4));
  EXPECT_EQ(text_of(h.msgs.front()), "m1");
}

TEST_F(Recovery, RequestsMadeWhileDisconnectedAreSentOnReconnect) {
  auto sub = client("sub");
  sub->subscribe("queued");
  auto pub = client("pub");
  pub->drop_connection(/*reconnect=*/false);
  pub->wait_state(connection_state::disconnected);

  std::promise<client::result<client::ack>> keyed, plain;
  pub->async().publish("queued", value::from("keyed"), "k1",
                       [&](client::result<client::ack> r) { keyed.set_value(std::move(r)); });
  pub->async().publish("queued", value::from("plain"),
                       [&](client::result<client::ack> r) { plain.set_value(std::move(r)); });
  auto fk = keyed.get_future();
  auto fp = plain.get_future();
  EXPECT_EQ(fk.wait_for(100ms), std::future_status::timeout); // held while disconnected
  pub->reconnect_now();
  ASSERT_EQ(fk.wait_for(10s), std::future_status::ready);
  ASSERT_EQ(fp.wait_for(10s), std::future_status::ready);
  auto rk = fk.get();
  auto rp = fp.get();
  ASSERT_TRUE(rk.ok()) << rk.error().code;
  ASSERT_TRUE(rp.ok()) << rp.error().code;
  EXPECT_EQ(rk.value().seq, 1u);
  EXPECT_EQ(rp.value().seq, 2u);
  auto msgs = sub->take_messages(2);
  EXPECT_EQ(text_of(msgs[0]), "keyed");
  EXPECT_EQ(text_of(msgs[1]), "plain");
}

// A client-library subscriber whose callback stalls (so it stops reading) is cut with 4500,
// then reconnects by itself and recovers everything, exactly once, in order.
TEST_F(Recovery, SlowConsumerCutWith4500ReconnectsAndRecovers) {
  constexpr std::size_t kData = 60 * 1024;
  constexpr int kRcvBuf = 16 * 1024;
  std::size_t wmem_max = 4 * 1024 * 1024;
  {
    std::ifstream f("/proc/sys/net/ipv4/tcp_wmem");
    std::size_t lo = 0, def = 0;
    f >> lo >> def >> wmem_max;
  }
  const int count = static_cast<int>((wmem_max + 2 * kRcvBuf + 2 * 1024 * 1024) / kData) + 16;
  ASSERT_LT(count, 1000) << "must stay within the kept history";

  IoThread io;
  auto opts = options_for(engine(), "stalled");
  opts.receive_buffer = kRcvBuf;
  std::promise<void> gate;
  auto gate_f = gate.get_future().share();
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::uint64_t> got;
  std::vector<client::state_event> states;
  std::vector<client::subscribe_kind> kinds;
  bool stalled_once = false;
  {
    client::connection c(io.executor(), opts);
    c.on_state([&](const client::state_event& ev) {
      std::lock_guard<std::mutex> l(m);
      states.push_back(ev);
      cv.notify_all();
    });
    client::room_handlers h;
    h.on_message = [&](const message& msg) {
      if (!stalled_once) { // the first message stalls this client's strand (and its reading)
        stalled_once = true;
        gate_f.wait_for(30s);
      }
      std::lock_guard<std::mutex> l(m);
      got.push_back(msg.seq);
      cv.notify_all();
    };
    h.on_subscribed = [&](const client::subscribed_event& ev) {
      std::lock_guard<std::mutex> l(m);
      kinds.push_back(ev.kind);
      cv.notify_all();
    };
    std::promise<client::result<client::subscribed_event>> subscribed;
    c.subscribe("stall", h, [&](client::result<client::subscribed_event> r) {
      subscribed.set_value(std::move(r));
    });
    c.start();
    auto sf = subscribed.get_future();
    ASSERT_EQ(sf.wait_for(10s), std::future_status::ready);
    ASSERT_TRUE(sf.get().ok());

    std::vector<std::unique_ptr<blocking_connection>> pubs;
    for (int i = 0; i < 8; ++i)
      pubs.push_back(client("pub" + std::to_string(i)));
    const std::string payload(kData, 'z');
    for (int i = 0; i < count; ++i)
      pubs[i % pubs.size()]->publish("stall", value::from(payload));
    gate.set_value();

    std::unique_lock<std::mutex> l(m);
    // The recovered messages come first, then the `recovered` event.
    const auto recovered = [&] {
      return std::find(kinds.begin(), kinds.end(), subscribe_kind::recovered) != kinds.end();
    };
    const bool all = cv.wait_for(
        l, 30s, [&] { return got.size() >= static_cast<std::size_t>(count) && recovered(); });
    EXPECT_TRUE(all) << "got " << got.size() << " of " << count << ", recovered: " << recovered();
    EXPECT_EQ(got, seq_range(1, std::min<std::size_t>(got.size(), count)));
    bool cut_4500 = false;
    for (const auto& ev : states)
      if (ev.state == connection_state::disconnected && ev.close_code == 4500) cut_4500 = true;
    EXPECT_TRUE(cut_4500) << "the engine never cut the stalled client with 4500";
    l.unlock();
  } // the Client closes; no callback runs after this
}

} // namespace
} // namespace troupe::test
