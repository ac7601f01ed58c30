#include <gtest/gtest.h>

#include "core/history_log.hpp"
#include "protocol/frame.hpp"

using namespace troupe;

namespace {

core::stored_message message(std::uint64_t seq, std::string key = {}) {
  protocol::frame_builder builder;
  builder.write("m" + std::to_string(seq));
  return {seq, std::move(key), builder.finish()};
}

std::vector<std::string> texts(const std::vector<std::string_view>& views) {
  return {views.begin(), views.end()};
}

} // namespace

TEST(HistoryLog, SequenceStartsAtZeroAndKeepsNewest) {
  core::history_log log(3, "e1");
  EXPECT_EQ(log.seq(), 0u);
  for (std::uint64_t seq = 1; seq <= 5; ++seq)
    log.append(message(seq));
  EXPECT_EQ(log.seq(), 5u);
  EXPECT_EQ(log.size(), 3u);
  EXPECT_EQ(texts(log.newest(10)), (std::vector<std::string>{"m3", "m4", "m5"}));
  EXPECT_EQ(texts(log.newest(2)), (std::vector<std::string>{"m4", "m5"}));
}

TEST(HistoryLog, CoversOnlyWhatIsKept) {
  core::history_log log(3, "e1");
  EXPECT_TRUE(log.covers(0)); // nothing to miss yet
  for (std::uint64_t seq = 1; seq <= 5; ++seq)
    log.append(message(seq));
  EXPECT_FALSE(log.covers(0)); // 1 and 2 are gone
  EXPECT_FALSE(log.covers(1));
  EXPECT_TRUE(log.covers(2));  // 3, 4, 5 kept
  EXPECT_TRUE(log.covers(5));  // up to date
  EXPECT_FALSE(log.covers(6)); // never handed out
}

TEST(HistoryLog, AfterReturnsMissedInOrderWithLimit) {
  core::history_log log(10, "e1");
  for (std::uint64_t seq = 1; seq <= 6; ++seq)
    log.append(message(seq));
  EXPECT_EQ(texts(log.after(3, 100)), (std::vector<std::string>{"m4", "m5", "m6"}));
  EXPECT_EQ(texts(log.after(0, 2)), (std::vector<std::string>{"m1", "m2"}));
  EXPECT_TRUE(log.after(6, 100).empty());
}

TEST(HistoryLog, KeysAreForgottenWithTheirMessages) {
  core::history_log log(2, "e1");
  log.append(message(1, "a"));
  log.append(message(2, "b"));
  EXPECT_EQ(log.find_key("a"), 1u);
  log.append(message(3));
  EXPECT_FALSE(log.find_key("a"));
  EXPECT_EQ(log.find_key("b"), 2u);
}

TEST(HistoryLog, ZeroCapacityStillSequences) {
  core::history_log log(0, "e1");
  log.append(message(1, "a"));
  log.append(message(2));
  EXPECT_EQ(log.seq(), 2u);
  EXPECT_EQ(log.size(), 0u);
  EXPECT_FALSE(log.covers(1));
  EXPECT_TRUE(log.covers(2));
}

TEST(HistoryLog, ResumesAtAGivenPosition) {
  core::history_log log(5, "old", 41);
  EXPECT_EQ(log.seq(), 41u);
  EXPECT_FALSE(log.covers(40)); // 41 itself is not kept
  log.append(message(42));
  EXPECT_TRUE(log.covers(41));
}

TEST(HistoryLog, EpochsAreRandomHex) {
  auto a = core::new_epoch();
  auto b = core::new_epoch();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}
