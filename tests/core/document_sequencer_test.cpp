// core::document_sequencer, the one sequencer of a document (the document actor's state):
// operations at the current revision, late ones transformed over each accepted one in
// turn, keys deduplicated, old, future and misfitting operations refused, the kept log.

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "core/document_sequencer.hpp"

using namespace troupe;

namespace {

ot::operation insert_at(std::size_t position, std::string_view text) {
  ot::operation op;
  op.retain(position).insert(text);
  return op;
}

ot::operation remove_at(std::size_t position, std::size_t count) {
  ot::operation op;
  op.retain(position).remove(count);
  return op;
}

} // namespace

TEST(DocumentSequencer, AppliesOperationsAtTheCurrentRevision) {
  core::document_sequencer doc(10, "ep");
  EXPECT_EQ(doc.rev(), 0u);
  auto first = doc.submit(0, insert_at(0, "héllo"), "k1", "alice");
  ASSERT_EQ(first.kind, core::document_sequencer::outcome::applied);
  EXPECT_EQ(first.rev, 1u);
  auto second = doc.submit(1, insert_at(5, " wörld 😀"), "k2", "alice");
  EXPECT_EQ(second.rev, 2u);
  EXPECT_EQ(doc.text().to_string(), "héllo wörld 😀");
  EXPECT_EQ(doc.log().size(), 2u);
  EXPECT_EQ(doc.log().back().user, "alice");
}

TEST(DocumentSequencer, TransformsALateOperationAndPutsTheLaterInsertFirst) {
  core::document_sequencer doc(10, "ep");
  doc.submit(0, insert_at(0, "ac"), "base", "u");
  doc.submit(1, insert_at(1, "X"), "a", "u"); // "aXc"
  // Made against rev 1, concurrently, at the same position: accepted later, placed before.
  auto late = doc.submit(1, insert_at(1, "Y"), "b", "v");
  ASSERT_EQ(late.kind, core::document_sequencer::outcome::applied);
  EXPECT_EQ(doc.text().to_string(), "aYXc");
  // A removal made against rev 1 covering "c" still removes "c" after the inserts.
  auto removal = doc.submit(1, remove_at(1, 1), "c", "w");
  ASSERT_EQ(removal.kind, core::document_sequencer::outcome::applied);
  EXPECT_EQ(doc.text().to_string(), "aYX");
  EXPECT_EQ(removal.accepted->op, remove_at(3, 1));
}

TEST(DocumentSequencer, AResubmittedKeyIsAcknowledgedWithItsFirstRevision) {
  core::document_sequencer doc(10, "ep");
  doc.submit(0, insert_at(0, "a"), "k", "u");
  doc.submit(1, insert_at(1, "b"), "other", "u");
  auto again = doc.submit(0, insert_at(0, "a"), "k", "u");
  EXPECT_EQ(again.kind, core::document_sequencer::outcome::duplicate);
  EXPECT_EQ(again.rev, 1u);
  EXPECT_EQ(doc.rev(), 2u);
  EXPECT_EQ(doc.text().to_string(), "ab");
}

TEST(DocumentSequencer, RefusesOldFutureAndMisfittingOperations) {
  core::document_sequencer doc(2, "ep");
  for (int i = 0; i < 4; ++i)
    doc.submit(static_cast<std::uint64_t>(i), insert_at(0, "x"), "k" + std::to_string(i), "u");
  // The log keeps revisions 3 and 4: an operation made against 2 can still be transformed,
  // one made against 1 cannot.
  EXPECT_TRUE(doc.covers(2));
  EXPECT_FALSE(doc.covers(1));
  EXPECT_EQ(doc.submit(1, insert_at(0, "y"), "old", "u").kind,
            core::document_sequencer::outcome::conflict);
  EXPECT_EQ(doc.submit(5, insert_at(0, "y"), "future", "u").kind,
            core::document_sequencer::outcome::invalid);
  EXPECT_EQ(doc.submit(4, remove_at(3, 2), "too-long", "u").kind,
            core::document_sequencer::outcome::invalid);
  EXPECT_EQ(doc.rev(), 4u);
  EXPECT_EQ(doc.text().to_string(), "xxxx");
  // An evicted operation's key is forgotten with it.
  EXPECT_EQ(doc.submit(4, insert_at(0, "z"), "k0", "u").kind,
            core::document_sequencer::outcome::applied);
}

TEST(DocumentSequencer, ListsTheOperationsAfterARevision) {
  core::document_sequencer doc(10, "ep");
  for (int i = 0; i < 5; ++i)
    doc.submit(static_cast<std::uint64_t>(i), insert_at(0, "x"), "", "u");
  auto ops = doc.after(2);
  ASSERT_EQ(ops.size(), 3u);
  EXPECT_EQ(ops.front()->rev, 3u);
  EXPECT_EQ(ops.back()->rev, 5u);
  EXPECT_TRUE(doc.after(5).empty());
}

// The key index (open addressing, backward-shift deletion) against a plain model: a key is a
// duplicate exactly while its operation is in the kept log, with its first revision; keys are
// drawn from a small pool so that they collide, wrap around the table and are erased in the
// middle of probe runs, and some operations carry no key.
TEST(DocumentSequencer, KeysAreKnownExactlyWhileTheirOperationIsKept) {
  for (const std::size_t capacity : {1u, 3u, 7u, 64u}) {
    core::document_sequencer doc(capacity, "ep");
    std::deque<std::pair<std::string, std::uint64_t>> kept; // the model: key, rev
    std::uint64_t state = 12345;
    auto next = [&] { return state = state * 6364136223846793005ull + 1442695040888963407ull; };
    for (int i = 0; i < 5000; ++i) {
      const auto draw = next() >> 33;
      const std::string key =
          draw % 10 == 0 ? "" : "key-" + std::to_string(draw % (3 * capacity + 5));
      std::optional<std::uint64_t> first;
      for (const auto& [k, rev] : kept)
        if (!key.empty() && k == key) first = rev;
      const auto result = doc.submit(doc.rev(), insert_at(0, "x"), key, "u");
      if (first) {
        ASSERT_EQ(result.kind, core::document_sequencer::outcome::duplicate) << key;
        ASSERT_EQ(result.rev, *first) << key;
        continue;
      }
      ASSERT_EQ(result.kind, core::document_sequencer::outcome::applied) << key;
      if (kept.size() == capacity) kept.pop_front();
      kept.emplace_back(key, result.rev);
    }
  }
}
