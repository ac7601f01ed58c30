// core::commit_watch: the durable store's commit durations and the commit running now.
#include "core/commit_watch.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace troupe::core {
namespace {

using namespace std::chrono_literals;

TEST(CommitWatch, EachCommitGoesIntoOneBucketAndOnlyThoseOverTheBoundAreSlow) {
  commit_watch watch;
  watch.set_bound(1s);
  EXPECT_FALSE(watch.end(500us)); // <= 0.001
  EXPECT_FALSE(watch.end(1ms));   // <= 0.001: a bucket's bound is inclusive
  EXPECT_FALSE(watch.end(30ms));  // <= 0.05
  EXPECT_FALSE(watch.end(1s));    // <= 1: the bound itself is not slow
  EXPECT_TRUE(watch.end(1500ms)); // <= 2.5
  EXPECT_TRUE(watch.end(60s));    // +Inf
  EXPECT_EQ(watch.bucket(0), 2u);
  EXPECT_EQ(watch.bucket(5), 1u);
  EXPECT_EQ(watch.bucket(9), 1u);
  EXPECT_EQ(watch.bucket(10), 1u);
  EXPECT_EQ(watch.bucket(commit_watch::bucket_bounds.size()), 1u);
  EXPECT_EQ(watch.count(), 6u);
  EXPECT_EQ(watch.slow(), 2u);
  EXPECT_NEAR(watch.sum_seconds(), 62.5315, 1e-9);
}

TEST(CommitWatch, NothingIsStalledOrRefusedWhileNoCommitRuns) {
  commit_watch watch;
  watch.set_bound(10ms);
  EXPECT_EQ(watch.age(), 0ms);
  EXPECT_EQ(watch.started_ms(), 0);
  EXPECT_FALSE(watch.stalled());
  EXPECT_TRUE(watch.refuse_write().empty());
  watch.begin({2, 14, 1, 3});
  EXPECT_NE(watch.started_ms(), 0);
  EXPECT_EQ(watch.running().messages, 14u);
  EXPECT_EQ(watch.running().operations, 3u);
  watch.end(1ms);
  EXPECT_EQ(watch.started_ms(), 0);
  EXPECT_TRUE(watch.refuse_write(5).empty());
  EXPECT_EQ(watch.refused(), 0u);
}

TEST(CommitWatch, ACommitRunningPastTheBoundRefusesWritesAndCountsThem) {
  commit_watch watch;
  watch.set_bound(10ms);
  watch.begin({1, 1, 0, 0});
  // The clock is the watch's own: wait (bounded) until the commit is older than the bound.
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!watch.stalled() && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(watch.stalled());
  const std::string why = watch.refuse_write(3);
  EXPECT_NE(why.find("the store is stalled"), std::string::npos) << why;
  EXPECT_NE(why.find("retry"), std::string::npos) << why;
  EXPECT_EQ(watch.refused(), 3u);
  watch.end(20ms);
  EXPECT_FALSE(watch.stalled());
}

TEST(CommitWatch, DescribesWhatACommitHolds) {
  EXPECT_EQ(commit_watch::describe({1, 1, 0, 0}),
            "1 room's log (1 message), 0 documents (0 operations)");
  EXPECT_EQ(commit_watch::describe({3, 41, 1, 2}),
            "3 rooms' logs (41 messages), 1 document (2 operations)");
  EXPECT_EQ(commit_watch::seconds_text(1420ms), "1.42 s");
}

} // namespace
} // namespace troupe::core
