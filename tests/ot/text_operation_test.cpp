#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ot/rope.hpp"
#include "ot/text_operation.hpp"
#include "tests/support/editing_trace.hpp"
#include "tests/support/random_text.hpp"

using namespace troupe;
using ot::component;
using ot::operation;
using ot::side;
using ot::wire_component;

namespace {

using kind = component::kind;

using troupe::tests::random_text;
using troupe::tests::to_utf8;

std::size_t below(std::mt19937_64& rng, std::size_t n) {
  return std::uniform_int_distribution<std::size_t>(0, n)(rng);
}

/// A random operation against a document of `length` code points, built through calls in
/// any order (removes before inserts, empty pieces, a trailing retain or not).
operation random_operation(std::mt19937_64& rng, std::size_t length) {
  operation op;
  std::size_t left = length;
  while (true) {
    const std::size_t what = below(rng, 5);
    if (what == 0) {
      op.insert(to_utf8(random_text(rng, 4)));
    } else if (what <= 2 && left > 0) {
      const std::size_t n = below(rng, std::min<std::size_t>(left, 5));
      op.retain(n);
      left -= n;
    } else if (what <= 4 && left > 0) {
      const std::size_t n = below(rng, std::min<std::size_t>(left, 4));
      op.remove(n);
      left -= n;
    }
    if (left == 0 && below(rng, 2) == 0) break;
    if (below(rng, 12) == 0) break; // stop early: the rest is retained
  }
  if (below(rng, 2) == 0) op.retain(left);
  return op;
}

bool canonical(const operation& op) {
  const auto& cs = op.components();
  for (std::size_t i = 0; i < cs.size(); ++i) {
    if (cs[i].count == 0) return false;
    if (cs[i].type == kind::insert ? ot::utf8_count(cs[i].text) != cs[i].count
                                   : !cs[i].text.empty())
      return false;
    if (i > 0 && cs[i].type == cs[i - 1].type) return false;
  }
  return cs.empty() || cs.back().type != kind::retain;
}

/// The document as character identities: each original character keeps its index, inserted
/// ones are -1. Applies `op` to it independently of the library's apply.
std::vector<long> apply_ids(std::vector<long> ids, const operation& op) {
  std::vector<long> out;
  std::size_t at = 0;
  for (const auto& c : op.components()) {
    if (c.type == kind::retain) {
      out.insert(out.end(), ids.begin() + at, ids.begin() + at + c.count);
      at += c.count;
    } else if (c.type == kind::insert) {
      out.insert(out.end(), c.count, -1);
    } else {
      at += c.count;
    }
  }
  out.insert(out.end(), ids.begin() + at, ids.end());
  return out;
}

std::string apply_rope(const std::string& text, const operation& op) {
  ot::rope r(text);
  ot::apply(r, op);
  return r.to_string();
}

} // namespace

TEST(Operation, BuilderIsCanonical) {
  operation op;
  op.retain(0).insert("").remove(0).retain(2).retain(3).insert("ab").insert("c").remove(1).remove(
      2);
  ASSERT_EQ(op.components().size(), 3u);
  EXPECT_EQ(op.components()[0], (component{kind::retain, 5, ""}));
  EXPECT_EQ(op.components()[1], (component{kind::insert, 3, "abc"}));
  EXPECT_EQ(op.components()[2], (component{kind::remove, 3, ""}));
  EXPECT_EQ(op.base_length(), 8u);
  EXPECT_EQ(op.length_change(), 0);

  // Remove then insert keeps its order: it ties differently from insert then remove.
  operation late;
  late.retain(5).remove(3).insert("abc");
  ASSERT_EQ(late.components().size(), 3u);
  EXPECT_EQ(late.components()[1], (component{kind::remove, 3, ""}));
  EXPECT_EQ(late.components()[2], (component{kind::insert, 3, "abc"}));
  EXPECT_NE(late, op);
  EXPECT_EQ(ot::apply("0123456789", late), ot::apply("0123456789", op)); // the same text alone
  operation split;
  split.retain(5).insert("a").remove(1).insert("bc").remove(2);
  EXPECT_EQ(split.components().size(), 5u); // nothing adjacent of one kind to merge

  // No trailing retain, but base_length still counts it.
  operation tail;
  tail.retain(2).insert("é").retain(7);
  ASSERT_EQ(tail.components().size(), 2u);
  EXPECT_EQ(tail.components().back().type, kind::insert);
  EXPECT_EQ(tail.base_length(), 9u);
  EXPECT_EQ(tail.length_change(), 1);
  EXPECT_TRUE(operation().retain(4).empty());
  EXPECT_EQ(operation().retain(4), operation());
  EXPECT_NE(operation().insert("a"), operation().insert("b"));
}

TEST(Operation, CountsCodePoints) {
  operation op;
  op.insert("é€😀𝄞").remove(2);
  EXPECT_EQ(op.components()[0].count, 4u);
  EXPECT_EQ(op.length_change(), 2);
  EXPECT_EQ(ot::apply("xy😀z", op), "é€😀𝄞😀z");
  EXPECT_EQ(apply_rope("xy😀z", op), "é€😀𝄞😀z");
}

TEST(Operation, WireRoundTrip) {
  operation op;
  op.retain(3).insert("hé").remove(4).retain(1).insert("😀");
  const auto wire = op.to_wire();
  ASSERT_EQ(wire.size(), 5u);
  EXPECT_EQ(wire[0], wire_component(std::int64_t{3}));
  EXPECT_EQ(wire[1], wire_component(std::string("hé")));
  EXPECT_EQ(wire[2], wire_component(std::int64_t{-4}));
  EXPECT_EQ(wire[4], wire_component(std::string("😀")));
  const auto parsed = ot::parse(wire);
  ASSERT_TRUE(parsed.op) << parsed.error;
  EXPECT_EQ(*parsed.op, op);
  EXPECT_EQ(parsed.op->base_length(), 8u);
}

TEST(Operation, ParseNormalisesAndIgnoresZeroLength) {
  const auto parsed =
      ot::parse({std::int64_t{0}, std::int64_t{2}, std::string(""), std::int64_t{-1},
                 std::string("x"), std::int64_t{0}, std::int64_t{5}});
  ASSERT_TRUE(parsed.op) << parsed.error;
  EXPECT_EQ(*parsed.op, operation().retain(2).remove(1).insert("x")); // in the order given
  EXPECT_EQ(parsed.op->base_length(), 8u); // the trailing retain must fit too
  EXPECT_TRUE(ot::parse({}).op->empty());
  EXPECT_TRUE(ot::parse({std::int64_t{0}, std::string()}).op->empty());
}

TEST(Operation, ParseRefusesInvalidUtf8) {
  const std::vector<std::string> invalid = {
      "\x80",             // continuation byte without a lead
      "ab\xC3",           // truncated two-byte sequence
      "\xE2\x82",         // truncated three-byte sequence
      "\xE2(\xAC",        // lead followed by a non-continuation
      "\xC0\xAF",         // overlong "/"
      "\xC1\xBF",         // overlong
      "\xE0\x80\xAF",     // overlong, three bytes
      "\xF0\x80\x80\xAF", // overlong, four bytes
      "\xED\xA0\x80",     // U+D800, a surrogate
      "\xED\xBF\xBF",     // U+DFFF
      "\xF4\x90\x80\x80", // U+110000
      "\xF5\x80\x80\x80", // lead byte beyond U+10FFFF
      "\xFF",             // never in UTF-8
  };
  for (const auto& text : invalid) {
    const auto parsed = ot::parse({std::int64_t{1}, text});
    EXPECT_FALSE(parsed.op) << "accepted " << testing::PrintToString(text);
    EXPECT_NE(parsed.error.find("UTF-8"), std::string::npos) << parsed.error;
  }
  const std::vector<std::string> valid = {"plain",
                                          "é€😀𝄞",
                                          "\xED\x9F\xBF" /* U+D7FF */,
                                          "\xEE\x80\x80" /* U+E000 */,
                                          "\xEF\xBF\xBF" /* U+FFFF */,
                                          "\xF4\x8F\xBF\xBF" /* U+10FFFF */,
                                          std::string("a\0b", 3)};
  for (const auto& text : valid) {
    const auto parsed = ot::parse({text});
    ASSERT_TRUE(parsed.op) << testing::PrintToString(text) << ": " << parsed.error;
    EXPECT_EQ(parsed.op->components()[0].text, text);
  }
}

TEST(Operation, ParseRefusesAbsurdLengths) {
  EXPECT_FALSE(ot::parse({std::numeric_limits<std::int64_t>::min()}).op);
  EXPECT_FALSE(ot::parse({std::numeric_limits<std::int64_t>::max(),
                          std::numeric_limits<std::int64_t>::max()})
                   .op);
  EXPECT_TRUE(ot::parse({std::int64_t{1'000'000}}).op);
}

TEST(Operation, FitsRefusesRunningPastTheEnd) {
  EXPECT_TRUE(ot::fits(operation(), 0));
  EXPECT_TRUE(ot::fits(operation().insert("abc"), 0));
  EXPECT_TRUE(ot::fits(operation().retain(3).insert("x"), 3));
  EXPECT_FALSE(ot::fits(operation().retain(4).insert("x"), 3));
  EXPECT_TRUE(ot::fits(operation().retain(1).remove(2), 3));
  EXPECT_FALSE(ot::fits(operation().retain(1).remove(3), 3));
  EXPECT_FALSE(ot::fits(operation().insert("x").retain(4), 3)); // a trailing retain too long
  EXPECT_FALSE(ot::fits(*ot::parse({std::int64_t{-1}}).op, 0));
}

TEST(Operation, ApplyOnStringAndRope) {
  const std::string doc = "héllo wörld 😀!";
  operation op;
  op.retain(1).remove(4).insert("ey").retain(7).insert("𝄞").remove(1);
  EXPECT_EQ(ot::apply(doc, op), "hey wörld 𝄞!");
  EXPECT_EQ(apply_rope(doc, op), "hey wörld 𝄞!");
  EXPECT_EQ(ot::apply(doc, operation()), doc);
}

TEST(Transform, LeftSideInsertGoesFirst) {
  const std::string doc = "ab";
  const operation a = operation().retain(1).insert("X");
  const operation b = operation().retain(1).insert("Y");
  EXPECT_EQ(ot::apply(ot::apply(doc, b), ot::transform(a, b, side::left)), "aXYb");
  EXPECT_EQ(ot::apply(ot::apply(doc, a), ot::transform(b, a, side::right)), "aXYb");
  EXPECT_EQ(ot::apply(ot::apply(doc, b), ot::transform(a, b, side::right)), "aYXb");
  EXPECT_EQ(ot::apply(ot::apply(doc, a), ot::transform(b, a, side::left)), "aYXb");
  // At the very end too, where nothing follows the inserts.
  const operation c = operation().retain(2).insert("1");
  const operation d = operation().retain(2).insert("2");
  EXPECT_EQ(ot::transform(c, d, side::left), operation().retain(2).insert("1"));
  EXPECT_EQ(ot::transform(c, d, side::right), operation().retain(3).insert("1"));
}

TEST(Transform, OverlappingRemoves) {
  const std::string doc = "0123456789";
  const operation a = operation().retain(2).remove(5);             // removes 2..6
  const operation b = operation().retain(4).remove(4).insert("é"); // removes 4..7, inserts
  const operation a2 = ot::transform(a, b, side::left);
  const operation b2 = ot::transform(b, a, side::right);
  EXPECT_EQ(a2, operation().retain(2).remove(2));
  EXPECT_EQ(ot::apply(ot::apply(doc, b), a2), "01é89");
  EXPECT_EQ(ot::apply(ot::apply(doc, a), b2), "01é89");
}

TEST(Compose, SplitsMultiByteInserts) {
  const operation a = operation().insert("é€😀𝄞");
  const operation b = operation().retain(1).remove(2).insert("x");
  const operation ab = ot::compose(a, b);
  EXPECT_EQ(ab, operation().insert("éx𝄞"));
  EXPECT_EQ(ot::apply("", ab), "éx𝄞");
}

TEST(TransformPosition, FollowsOtTextUnicode) {
  const operation insert_at_3 = operation().retain(3).insert("ab");
  EXPECT_EQ(ot::transform_position(2, insert_at_3), 2u);
  EXPECT_EQ(ot::transform_position(3, insert_at_3), 3u); // an insert at the cursor: stays
  EXPECT_EQ(ot::transform_position(4, insert_at_3), 6u);
  const operation remove_2_to_5 = operation().retain(2).remove(3);
  EXPECT_EQ(ot::transform_position(1, remove_2_to_5), 1u);
  EXPECT_EQ(ot::transform_position(2, remove_2_to_5), 2u);
  EXPECT_EQ(ot::transform_position(4, remove_2_to_5), 2u); // pulled to the removal's start
  EXPECT_EQ(ot::transform_position(5, remove_2_to_5), 2u);
  EXPECT_EQ(ot::transform_position(7, remove_2_to_5), 4u);
  EXPECT_EQ(ot::transform_position(0, operation().insert("😀")), 0u);
  EXPECT_EQ(ot::transform_position(1, operation().insert("😀")), 2u);
}

// --- properties over random documents and operations -------------------------------------

TEST(Properties, Convergence) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 5000; ++round) {
    const std::string doc = to_utf8(random_text(rng, round % 10 == 0 ? 0 : 30));
    const std::size_t length = ot::utf8_count(doc);
    const operation a = random_operation(rng, length);
    const operation b = random_operation(rng, length);
    const operation a2 = ot::transform(a, b, side::left);
    const operation b2 = ot::transform(b, a, side::right);
    ASSERT_TRUE(canonical(a2) && canonical(b2));
    const std::string after_b = ot::apply(doc, b);
    const std::string after_a = ot::apply(doc, a);
    ASSERT_TRUE(ot::fits(a2, ot::utf8_count(after_b))) << "round " << round;
    ASSERT_TRUE(ot::fits(b2, ot::utf8_count(after_a))) << "round " << round;
    const std::string left = ot::apply(after_b, a2);
    ASSERT_EQ(ot::apply(after_a, b2), left) << "round " << round << " doc " << doc;
    ASSERT_EQ(apply_rope(after_b, a2), left);
    ASSERT_EQ(ot::utf8_count(left), ot::utf8_count(after_b) + a2.length_change());
  }
}

TEST(Properties, ComposeAgreesWithApplyingInTurn) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 5000; ++round) {
    const std::string doc = to_utf8(random_text(rng, 30));
    const operation a = random_operation(rng, ot::utf8_count(doc));
    const std::string after_a = ot::apply(doc, a);
    const operation b = random_operation(rng, ot::utf8_count(after_a));
    const operation ab = ot::compose(a, b);
    ASSERT_TRUE(canonical(ab));
    ASSERT_TRUE(ot::fits(ab, ot::utf8_count(doc)));
    ASSERT_EQ(ot::apply(doc, ab), ot::apply(after_a, b)) << "round " << round;
    ASSERT_EQ(ab.length_change(), a.length_change() + b.length_change());
  }
}

TEST(Properties, CanonicalFormAndWireRoundTrip) {
  std::mt19937_64 rng(13);
  for (int round = 0; round < 5000; ++round) {
    const std::string doc = to_utf8(random_text(rng, 30));
    const std::size_t length = ot::utf8_count(doc);
    const operation op = random_operation(rng, length);
    ASSERT_TRUE(canonical(op));
    ASSERT_TRUE(ot::fits(op, length));
    if (op.base_length() > 0) {
      ASSERT_FALSE(ot::fits(op, op.base_length() - 1));
    }
    const auto parsed = ot::parse(op.to_wire());
    ASSERT_TRUE(parsed.op) << parsed.error;
    ASSERT_EQ(*parsed.op, op);
    ASSERT_EQ(parsed.op->length_change(), op.length_change());
    // Applying on a string and on a rope agree.
    ASSERT_EQ(apply_rope(doc, op), ot::apply(doc, op));
  }
}

TEST(Properties, TransformPositionKeepsTheCursorBetweenTheSameCharacters) {
  std::mt19937_64 rng(17);
  for (int round = 0; round < 5000; ++round) {
    const std::size_t length = below(rng, 30);
    const operation op = random_operation(rng, length);
    std::vector<long> ids(length);
    for (std::size_t i = 0; i < length; ++i)
      ids[i] = static_cast<long>(i);
    const std::vector<long> after = apply_ids(ids, op);
    const std::size_t cursor = below(rng, length);
    const std::size_t moved = ot::transform_position(cursor, op);
    ASSERT_LE(moved, after.size());
    // Every surviving character before the cursor stays before it, every other one after.
    for (std::size_t i = 0; i < after.size(); ++i) {
      if (after[i] < 0) continue;
      if (static_cast<std::size_t>(after[i]) < cursor) {
        ASSERT_LT(i, moved) << "round " << round;
      } else {
        ASSERT_GE(i, moved) << "round " << round;
      }
    }
    // Inserted text right at the cursor stays after it.
    if (cursor < after.size() && op.components().size() == 2 &&
        op.components()[0].type == kind::retain && op.components()[0].count == cursor &&
        op.components()[1].type == kind::insert) {
      ASSERT_EQ(moved, cursor);
    }
  }
}

// --- the editing traces, one operation per patch, applied to a rope ------------------------

class Traces : public testing::TestWithParam<const char*> {};

TEST_P(Traces, ReplayThroughOperationsReachesTheEndContent) {
  const auto trace = traces::load_trace(traces::trace_path(GetParam()));
  ASSERT_FALSE(trace.patches.empty());
  ot::rope text(trace.start_content);
  for (const auto& patch : trace.patches) {
    operation op;
    op.retain(patch.position).remove(patch.removed).insert(patch.inserted);
    ASSERT_TRUE(ot::fits(op, text.size()));
    ot::apply(text, op);
  }
  EXPECT_EQ(text.size(), ot::utf8_count(trace.end_content));
  EXPECT_TRUE(text.to_string() == trace.end_content) << "the replayed text differs";
}

INSTANTIATE_TEST_SUITE_P(EditingTraces, Traces, testing::Values("automerge-paper", "seph-blog1"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::erase(name, '-');
                           return name;
                         });
