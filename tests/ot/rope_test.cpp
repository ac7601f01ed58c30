#include <gtest/gtest.h>

#include <random>
#include <string>

#include "ot/rope.hpp"
#include "tests/support/random_text.hpp"

using troupe::ot::rope;

namespace {

using troupe::tests::random_text;
using troupe::tests::to_utf8;

void expect_same(const rope& r, std::u32string_view model) {
  const std::string utf8 = to_utf8(model);
  ASSERT_EQ(r.size(), model.size());
  ASSERT_EQ(r.size_bytes(), utf8.size());
  ASSERT_EQ(r.empty(), model.empty());
  ASSERT_EQ(r.to_string(), utf8);
}

} // namespace

TEST(Rope, StartsEmpty) {
  rope r;
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.to_string(), "");
  EXPECT_EQ(r.chunk_count(), 0u);
  r.insert(0, "");
  r.erase(0, 0);
  EXPECT_TRUE(r.empty());
}

TEST(Rope, InsertsAtStartMiddleAndEnd) {
  rope r("hed");
  r.insert(0, ">");
  r.insert(r.size(), "!");
  r.insert(3, "llo worl");
  EXPECT_EQ(r.to_string(), ">hello world!");
  EXPECT_EQ(r.size(), 13u);
}

TEST(Rope, ErasesAtStartMiddleAndEnd) {
  rope r("hello, world");
  r.erase(0, 1);
  EXPECT_EQ(r.to_string(), "ello, world");
  r.erase(r.size() - 1, 1);
  EXPECT_EQ(r.to_string(), "ello, worl");
  r.erase(4, 1);
  EXPECT_EQ(r.to_string(), "ello worl");
  r.erase(0, r.size());
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.chunk_count(), 0u);
  r.insert(0, "again");
  EXPECT_EQ(r.to_string(), "again");
}

TEST(Rope, CountsMultiByteAndAstralCharactersAsOne) {
  rope r("é€😀𝄞");
  EXPECT_EQ(r.size(), 4u);
  EXPECT_EQ(r.size_bytes(), 13u);
  r.insert(2, "x");
  EXPECT_EQ(r.to_string(), "é€x😀𝄞");
  r.insert(5, "😀");
  EXPECT_EQ(r.to_string(), "é€x😀𝄞😀");
  r.erase(3, 2);
  EXPECT_EQ(r.to_string(), "é€x😀");
  r.erase(0, 1);
  EXPECT_EQ(r.to_string(), "€x😀");
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(r.size_bytes(), 8u);
}

TEST(Rope, CutsChunksPastMaxChunk) {
  rope r;
  for (std::size_t i = 0; i < 3000; ++i)
    r.insert(r.size(), std::string(1, static_cast<char>('a' + i % 26)));
  EXPECT_EQ(r.size(), 3000u);
  EXPECT_GE(r.chunk_count(), 3u);
  std::string expected;
  for (std::size_t i = 0; i < 3000; ++i)
    expected += static_cast<char>('a' + i % 26);
  EXPECT_EQ(r.to_string(), expected);

  // One large insert is cut too, and an exactly full chunk is not.
  rope big(std::string(10 * rope::max_chunk, 'z'));
  EXPECT_GE(big.chunk_count(), 10u);
  rope full(std::string(rope::max_chunk, 'f'));
  EXPECT_EQ(full.chunk_count(), 1u);
  full.insert(rope::max_chunk / 2, "g");
  EXPECT_EQ(full.chunk_count(), 2u); // just over: cut in two
  EXPECT_EQ(full.size(), rope::max_chunk + 1);
}

TEST(Rope, NeverSplitsACodePointAcrossChunks) {
  // Four-byte characters typed in the middle and at the end: 1024 is a multiple of 4, so an
  // odd ASCII prefix makes every cut land inside a character unless the rope moves it.
  rope r("abc");
  std::u32string model = U"abc";
  for (std::size_t i = 0; i < 2000; ++i) {
    const std::size_t pos = i % 3 == 0 ? r.size() : r.size() / 2;
    const std::u32string c = i % 2 ? U"😀" : U"é";
    r.insert(pos, to_utf8(c));
    model.insert(pos, c);
  }
  expect_same(r, model);
  EXPECT_GE(r.chunk_count(), 6u);
  // Erase across chunk boundaries, one piece at a time.
  while (model.size() > 10) {
    const std::size_t pos = model.size() / 3;
    const std::size_t n = std::min<std::size_t>(700, model.size() - pos);
    r.erase(pos, n);
    model.erase(pos, n);
    expect_same(r, model);
  }
}

TEST(Rope, SmallChunksJoinANeighbour) {
  // Deleting here and there until little is left must not leave a sliver per old chunk.
  std::mt19937_64 rng(5);
  std::u32string model = random_text(rng, 0, false);
  while (model.size() < 8000)
    model += random_text(rng, 100, false);
  rope r(to_utf8(model));
  ASSERT_GE(r.chunk_count(), 10u);
  while (model.size() > 200) {
    const std::size_t pos = std::uniform_int_distribution<std::size_t>(0, model.size() - 1)(rng);
    r.erase(pos, 1);
    model.erase(pos, 1);
  }
  expect_same(r, model);
  EXPECT_LE(r.chunk_count(), r.size_bytes() / rope::min_chunk + 1);
}

TEST(Rope, RandomEditsMatchAModel) {
  std::mt19937_64 rng(20240611);
  for (int round = 0; round < 40; ++round) {
    const bool ascii_only = round % 4 == 0;
    std::u32string model = random_text(rng, round % 2 ? 3000 : 20, ascii_only);
    rope r(to_utf8(model));
    expect_same(r, model);
    for (int step = 0; step < 400; ++step) {
      const int what = std::uniform_int_distribution<int>(0, 9)(rng);
      if (what < 6) {
        // Mostly short inserts, sometimes long ones that overflow a chunk.
        const std::u32string text = random_text(rng, what == 0 ? 1500 : 6, ascii_only);
        const std::size_t pos = std::uniform_int_distribution<std::size_t>(0, model.size())(rng);
        r.insert(pos, to_utf8(text));
        model.insert(pos, text);
      } else if (!model.empty()) {
        const std::size_t pos =
            std::uniform_int_distribution<std::size_t>(0, model.size() - 1)(rng);
        const std::size_t limit =
            what == 9 ? model.size() - pos : std::min<std::size_t>(8, model.size() - pos);
        const std::size_t n = std::uniform_int_distribution<std::size_t>(0, limit)(rng);
        r.erase(pos, n);
        model.erase(pos, n);
      }
      ASSERT_EQ(r.size(), model.size()) << "round " << round << " step " << step;
      if (step % 50 == 0) expect_same(r, model);
    }
    expect_same(r, model);
  }
}

TEST(Rope, CopiesAreIndependent) {
  rope original("shared é text 😀");
  original.insert(0, std::string(3000, 'x'));
  rope copy(original);
  EXPECT_EQ(copy.to_string(), original.to_string());
  EXPECT_EQ(copy.chunk_count(), original.chunk_count());
  copy.insert(0, "c");
  original.erase(0, 1);
  EXPECT_EQ(copy.size(), 3000u + 15u + 1u);
  EXPECT_EQ(original.size(), 3000u + 15u - 1u);
  EXPECT_EQ(copy.to_string().substr(0, 2), "cx");

  rope assigned("old");
  assigned = copy;
  EXPECT_EQ(assigned.to_string(), copy.to_string());
  auto& self = assigned;
  assigned = self;
  EXPECT_EQ(assigned.to_string(), copy.to_string());
}

TEST(Rope, MovesLeaveTheSourceEmpty) {
  rope source("moving é 😀");
  const std::string text = source.to_string();
  rope moved(std::move(source));
  EXPECT_EQ(moved.to_string(), text);
  EXPECT_TRUE(source.empty()); // NOLINT(bugprone-use-after-move): moved-from is empty
  source.insert(0, "reused");
  EXPECT_EQ(source.to_string(), "reused");

  rope target("something else");
  target = std::move(moved);
  EXPECT_EQ(target.to_string(), text);
  EXPECT_EQ(target.size(), 10u);
  target.clear();
  EXPECT_TRUE(target.empty());
}
