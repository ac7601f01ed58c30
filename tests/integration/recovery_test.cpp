// Recovery against a real engine: cut connections, short history, engine restarts.
#include <sys/wait.h>

#include <thread>

#include "support.hpp"

namespace troupe::test {
namespace {

using client::State;
using client::SubscribeKind;

class Recovery : public EngineTest {};

TEST_F(Recovery, CutConnectionRecoversEveryMissedMessageExactlyOnceInOrder) {
  auto sub = client("sub");
  auto first = sub->subscribe("cut");
  EXPECT_EQ(first.kind, SubscribeKind::initial);
  auto pub = client("pub");
  for (int i = 1; i <= 10; ++i) pub->publish("cut", Value::from("m" + std::to_string(i)));
  EXPECT_EQ(seqs_of(sub->take_messages(10)), seq_range(1, 10));

  sub->drop_connection(/*reconnect=*/false);  // RST, no close handshake
  auto down = sub->wait_state(State::disconnected);
  EXPECT_EQ(down.close_code, 0);
  for (int i = 11; i <= 40; ++i) pub->publish("cut", Value::from("m" + std::to_string(i)));

  sub->reconnect_now();
  sub->wait_state(State::connected);
  std::optional<client::SubscribedEvent> ev;
  while ((ev = sub->next_subscribed()) && ev->kind == SubscribeKind::initial) {
  }
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, SubscribeKind::recovered);
  EXPECT_TRUE(ev->recovered);
  EXPECT_EQ(ev->seq, 40u);
  EXPECT_EQ(ev->epoch, first.epoch);
  auto missed = sub->take_messages(30);
  EXPECT_EQ(seqs_of(missed), seq_range(11, 40));
  for (const auto& m : missed) EXPECT_EQ(text_of(m), "m" + std::to_string(m.seq));

  pub->publish("cut", Value::from("m41"));
  auto next = sub->next_message();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->seq, 41u);  // nothing duplicated before it
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
      for (int i = 1; i <= kTotal; ++i) pub->publish("busy", Value::from("m" + std::to_string(i)));
    } catch (const std::exception& e) {
      pub_failed = true;
      ADD_FAILURE() << "publisher: " << e.what();
    }
  });
  std::vector<std::uint64_t> got;
  int cuts = 0;
  while (got.size() < static_cast<std::size_t>(kTotal)) {
    auto m = sub->next_message();
    if (!m) break;
    got.push_back(m->seq);
    EXPECT_EQ(text_of(*m), "m" + std::to_string(m->seq));
    if (got.size() == 50 || got.size() == 150 || got.size() == 151) {
      sub->drop_connection(/*reconnect=*/true);  // reconnects by itself, with backoff
      ++cuts;
    }
  }
  publisher.join();
  ASSERT_FALSE(pub_failed.load());
  EXPECT_EQ(got, seq_range(1, kTotal));
  // Each cut was followed by a recovered resubscription (two cuts may merge into one).
  int recovered = 0;
  while (auto ev = sub->next_subscribed(0ms)) {
    if (ev->kind == SubscribeKind::recovered)
      ++recovered;
    else
      EXPECT_EQ(ev->kind, SubscribeKind::initial);
  }
  EXPECT_GE(recovered, 2);
  EXPECT_LE(recovered, cuts);
}

class ShortHistory : public EngineTest {
 protected:
  std::vector<std::string> extra_args() const override { return {"--history", "10"}; }
};

TEST_F(ShortHistory, RecoveryPastTheKeptHistoryIsReportedAsRebuilt) {
  auto sub = client("sub");
  auto first = sub->subscribe("short");
  auto pub = client("pub");
  for (int i = 1; i <= 5; ++i) pub->publish("short", Value::from("m" + std::to_string(i)));
  EXPECT_EQ(seqs_of(sub->take_messages(5)), seq_range(1, 5));

  sub->drop_connection(/*reconnect=*/false);
  sub->wait_state(State::disconnected);
  for (int i = 6; i <= 35; ++i) pub->publish("short", Value::from("m" + std::to_string(i)));
  sub->reconnect_now();

  std::optional<client::SubscribedEvent> ev;
  while ((ev = sub->next_subscribed()) && ev->kind == SubscribeKind::initial) {
  }
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, SubscribeKind::rebuilt);
  EXPECT_FALSE(ev->recovered);
  EXPECT_EQ(ev->seq, 35u);
  EXPECT_EQ(ev->epoch, first.epoch);
  EXPECT_EQ(seqs_of(ev->msgs), seq_range(26, 35));  // the newest kept
  EXPECT_EQ(sub->queued_messages(), 0u);            // no stream with a hole

  pub->publish("short", Value::from("m36"));
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

TEST_F(Recovery, RestartOfAMemoryOnlyEngineIsANewEpoch) {
  auto sub = client("sub");
  auto first = sub->subscribe("epoch");
  {
    auto pub = client("pub");
    for (int i = 1; i <= 3; ++i) pub->publish("epoch", Value::from("m" + std::to_string(i)));
  }
  EXPECT_EQ(seqs_of(sub->take_messages(3)), seq_range(1, 3));

  const int status = engine().stop();  // SIGTERM
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  auto down = sub->wait_state(State::disconnected);
  EXPECT_EQ(down.close_code, 4503) << down.reason;

  engine().start(engine().port());
  std::optional<client::SubscribedEvent> ev;
  while ((ev = sub->next_subscribed()) && ev->kind == SubscribeKind::initial) {
  }
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, SubscribeKind::rebuilt);
  EXPECT_FALSE(ev->recovered);
  EXPECT_NE(ev->epoch, first.epoch);
  EXPECT_EQ(ev->seq, 0u);

  auto pub = client("pub2");
  EXPECT_EQ(pub->publish("epoch", Value::from("fresh")).seq, 1u);
  auto m = sub->next_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->seq, 1u);
  EXPECT_EQ(text_of(*m), "fresh");
}

}  // namespace
}  // namespace troupe::test
