#include <gtest/gtest.h>

#include <set>

#include "core/webhook_queue.hpp"

using namespace troupe;
using namespace std::chrono_literals;
using core::webhook_event;
using core::webhook_queue;
using core::webhook_queue_settings;

namespace {

webhook_event event(std::string room, std::string name = "member_added") {
  webhook_event e;
  e.name = std::move(name);
  e.room = std::move(room);
  return e;
}

struct QueueTest : ::testing::Test {
  webhook_queue::time_point t0 = webhook_queue::clock::now();
  double random = 0.5; // no jitter unless a test sets it
  webhook_queue_settings settings;
  std::optional<webhook_queue> queue;
  webhook_queue& make() {
    queue.emplace(settings, "node", [this] { return random; });
    return *queue;
  }
};

TEST_F(QueueTest, IdsAreUniqueAndTimesSet) {
  auto& q = make();
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(q.push(event("a"), t0, 1000 + i));
  auto batch = q.take(t0 + 250ms);
  ASSERT_TRUE(batch);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < batch->size(); ++i) {
    ids.insert((*batch)[i].id);
    EXPECT_EQ((*batch)[i].time_ms, 1000 + static_cast<std::int64_t>(i));
    EXPECT_EQ((*batch)[i].id.rfind("node-", 0), 0u);
  }
  EXPECT_EQ(ids.size(), 5u);
}

TEST_F(QueueTest, FirstEventWaitsAtMostTheBatchDelay) {
  auto& q = make();
  q.push(event("a"), t0, 0);
  q.push(event("a"), t0 + 100ms, 0);
  EXPECT_EQ(q.next_due(), t0 + 250ms);
  EXPECT_FALSE(q.take(t0 + 249ms));
  auto batch = q.take(t0 + 250ms);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->size(), 2u);
}

TEST_F(QueueTest, AFullBatchGoesAtOnceAndHoldsAtMostTheMax) {
  auto& q = make();
  for (int i = 0; i < 250; ++i)
    q.push(event("a"), t0, 0);
  auto first = q.take(t0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->size(), 100u);
  EXPECT_FALSE(q.take(t0)); // one in flight at a time
  q.succeeded();
  auto second = q.take(t0);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->size(), 100u);
  EXPECT_EQ(second->front().id, "node-101");
  q.succeeded();
  EXPECT_FALSE(q.take(t0 + 249ms)); // 50 left: not a full batch, the first waits its 250 ms
  auto third = q.take(t0 + 250ms);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->size(), 50u);
  q.succeeded();
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(q.sent(), 250u);
}

TEST_F(QueueTest, RetriesKeepTheIdsAndOrderAndBackOff) {
  auto& q = make();
  q.push(event("a", "room_occupied"), t0, 0);
  q.push(event("a", "member_added"), t0, 0);
  auto batch = q.take(t0 + 250ms);
  ASSERT_TRUE(batch);
  q.push(event("a", "member_removed"), t0 + 300ms, 0); // queued behind the failing batch
  auto now = t0 + 1s;
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 9; ++i) {
    auto wait = q.failed(now);
    ASSERT_TRUE(wait);
    waits.push_back(*wait);
    EXPECT_FALSE(q.take(now + *wait - 1ms));
    now += *wait;
    auto again = q.take(now);
    ASSERT_TRUE(again);
    ASSERT_EQ(again->size(), 2u); // the same batch, not grown by the later event
    EXPECT_EQ((*again)[0].id, (*batch)[0].id);
    EXPECT_EQ((*again)[1].id, (*batch)[1].id);
  }
  std::vector<std::chrono::milliseconds> expected{1s, 2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s};
  EXPECT_EQ(waits, expected);
  EXPECT_EQ(q.retries(), 9u);
  q.succeeded();
  auto next = q.take(now);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->front().name, "member_removed");
}

TEST_F(QueueTest, JitterStaysWithinAQuarter) {
  auto& q = make();
  q.push(event("a"), t0, 0);
  ASSERT_TRUE(q.take(t0 + 250ms));
  random = 0.0;
  EXPECT_EQ(q.failed(t0 + 1s), 750ms);
  ASSERT_TRUE(q.take(t0 + 2s));
  random = 0.999999;
  auto wait = q.failed(t0 + 2s);
  ASSERT_TRUE(wait);
  EXPECT_GE(*wait, 2499ms);
  EXPECT_LE(*wait, 2500ms);
}

TEST_F(QueueTest, RetriesForAtLeastFiveMinutesThenDropsCounted) {
  settings.retry_for = 300s;
  auto& q = make();
  q.push(event("a"), t0, 0);
  auto start = t0 + 250ms;
  auto now = start;
  ASSERT_TRUE(q.take(now));
  for (;;) {
    auto wait = q.failed(now);
    if (!wait) break;
    now += *wait;
    ASSERT_TRUE(q.take(now));
  }
  EXPECT_GE(now - start, 300s);
  EXPECT_EQ(q.dropped(), 1u);
  EXPECT_EQ(q.size(), 0u);
}

TEST_F(QueueTest, TheBoundDropsWhatArrivesBeyondItAndCountsIt) {
  settings.capacity = 10;
  auto& q = make();
  for (int i = 0; i < 15; ++i)
    q.push(event("a"), t0, i);
  EXPECT_EQ(q.size(), 10u);
  EXPECT_EQ(q.dropped(), 5u);
  auto batch = q.take(t0 + 250ms);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->back().time_ms, 9); // the queued ones are kept, in order
  q.succeeded();
  EXPECT_TRUE(q.push(event("a"), t0, 0));
}

} // namespace
