#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ot/utf8.hpp"

using troupe::ot::is_ascii;
using troupe::ot::utf8_count;
using troupe::ot::utf8_error;
using troupe::ot::utf8_offset;
using troupe::ot::valid_utf8;

TEST(Utf8, CountsCodePointsNotBytes) {
  EXPECT_EQ(utf8_count(""), 0u);
  EXPECT_EQ(utf8_count("abc"), 3u);
  EXPECT_EQ(utf8_count("é€😀𝄞"), 4u);
  EXPECT_EQ(utf8_count("0123456789abcdef😀0123456789é"), 28u); // crosses 8-byte words
}

TEST(Utf8, OffsetOfCodePoint) {
  const std::string text = "aé€😀𝄞b";
  EXPECT_EQ(utf8_offset(text, 0), 0u);
  EXPECT_EQ(utf8_offset(text, 1), 1u);
  EXPECT_EQ(utf8_offset(text, 2), 3u);
  EXPECT_EQ(utf8_offset(text, 3), 6u);
  EXPECT_EQ(utf8_offset(text, 4), 10u);
  EXPECT_EQ(utf8_offset(text, 5), 14u);
  EXPECT_EQ(utf8_offset(text, 6), text.size());
  const std::string long_text = std::string(20, 'x') + "😀" + std::string(20, 'y');
  EXPECT_EQ(utf8_offset(long_text, 20), 20u);
  EXPECT_EQ(utf8_offset(long_text, 21), 24u);
  EXPECT_EQ(utf8_offset(long_text, 41), long_text.size());
}

TEST(Utf8, ValidatorAcceptsEveryWellFormedSequence) {
  const std::vector<std::string> valid = {"",
                                          "plain",
                                          "é€😀𝄞",
                                          "\xED\x9F\xBF" /* U+D7FF */,
                                          "\xEE\x80\x80" /* U+E000 */,
                                          "\xEF\xBF\xBF" /* U+FFFF */,
                                          "\xF4\x8F\xBF\xBF" /* U+10FFFF */,
                                          std::string("a\0b", 3)};
  for (const auto& text : valid) {
    std::size_t at = 99;
    EXPECT_EQ(utf8_error(text, at), nullptr) << testing::PrintToString(text);
    EXPECT_TRUE(valid_utf8(text)) << testing::PrintToString(text);
  }
}

TEST(Utf8, ValidatorSaysWhyAndWhere) {
  struct bad {
    std::string text;
    std::string why;
    std::size_t at;
  };
  const std::vector<bad> cases = {
      {"ab\x80", "unexpected continuation byte", 2},
      {"\xE2\x82", "truncated sequence", 0},
      {"x\xE2(\xAC", "truncated sequence", 1},
      {"\xC0\xAF", "overlong encoding", 0},
      {"\xE0\x80\xAF", "overlong encoding", 0},
      {"\xF0\x80\x80\xAF", "overlong encoding", 0},
      {"é\xED\xA0\x80", "UTF-16 surrogate", 2},
      {"\xF4\x90\x80\x80", "code point above U+10FFFF", 0},
      {"\xF5\x80\x80\x80", "byte that never appears in UTF-8", 0},
      {"\xFF", "byte that never appears in UTF-8", 0},
  };
  for (const auto& c : cases) {
    std::size_t at = 99;
    const char* why = utf8_error(c.text, at);
    ASSERT_NE(why, nullptr) << testing::PrintToString(c.text);
    EXPECT_EQ(std::string(why), c.why) << testing::PrintToString(c.text);
    EXPECT_EQ(at, c.at) << testing::PrintToString(c.text);
    EXPECT_FALSE(valid_utf8(c.text)) << testing::PrintToString(c.text);
  }
}

TEST(Utf8, AsciiAndContinuationBytes) {
  EXPECT_TRUE(is_ascii(""));
  EXPECT_TRUE(is_ascii("0123456789abcdef0123")); // crosses 8-byte words
  EXPECT_FALSE(is_ascii("0123456789abcdef012é"));
  EXPECT_TRUE(troupe::ot::is_continuation('\x80'));
  EXPECT_FALSE(troupe::ot::is_continuation('\xC3'));
  EXPECT_FALSE(troupe::ot::is_continuation('a'));
}

TEST(Utf8, AppendEncodesEachLength) {
  std::string out;
  for (char32_t cp : {U'a', U'\u00e9', U'\u20ac', U'\U0001F600', U'\U0010FFFF'})
    troupe::ot::append_utf8(out, cp);
  EXPECT_EQ(out, "a\u00e9\u20ac\U0001F600\U0010FFFF");
  EXPECT_TRUE(valid_utf8(out));
  EXPECT_EQ(utf8_count(out), 5u);
}
