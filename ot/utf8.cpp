#include "ot/utf8.hpp"

#include <bit>
#include <cstdint>
#include <cstring>

namespace troupe::ot {

namespace {

constexpr std::uint64_t high_bits = 0x8080808080808080ull;

std::uint64_t load_word(const char* p) noexcept {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

/// Bytes of an 8-byte word that start a code point: continuation bytes are 10xxxxxx.
unsigned leading_bytes(std::uint64_t word) noexcept {
  const std::uint64_t continuation = word & ~(word << 1) & high_bits;
  return 8 - static_cast<unsigned>(std::popcount(continuation));
}

} // namespace

const char* utf8_error(std::string_view s, std::size_t& at) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t size = s.size();
  std::size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    at = i;
    std::size_t length;
    std::uint32_t cp;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
      cp = lead & 0x1F;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      cp = lead & 0x0F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      cp = lead & 0x07;
    } else if (lead == 0xC0 || lead == 0xC1) {
      return "overlong encoding";
    } else if (lead <= 0xBF) {
      return "unexpected continuation byte";
    } else {
      return "byte that never appears in UTF-8";
    }
    if (size - i < length) return "truncated sequence";
    for (std::size_t k = 1; k < length; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return "truncated sequence";
      cp = (cp << 6) | (bytes[i + k] & 0x3F);
    }
    if ((length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000)) return "overlong encoding";
    if (cp >= 0xD800 && cp <= 0xDFFF) return "UTF-16 surrogate";
    if (cp > 0x10FFFF) return "code point above U+10FFFF";
    i += length;
  }
  return nullptr;
}

bool valid_utf8(std::string_view s) noexcept {
  std::size_t at = 0;
  return utf8_error(s, at) == nullptr;
}

std::size_t utf8_count(std::string_view s) noexcept {
  std::size_t count = 0;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8)
    count += leading_bytes(load_word(s.data() + i));
  for (; i < s.size(); ++i)
    count += !is_continuation(s[i]);
  return count;
}

std::size_t utf8_offset(std::string_view s, std::size_t cp) noexcept {
  std::size_t seen = 0;
  std::size_t i = 0;
  // Skip whole words that end before the wanted code point starts.
  for (; i + 8 <= s.size(); i += 8) {
    const unsigned lead = leading_bytes(load_word(s.data() + i));
    if (seen + lead > cp) break;
    seen += lead;
  }
  for (; i < s.size(); ++i) {
    if (is_continuation(s[i])) continue;
    if (seen == cp) return i;
    ++seen;
  }
  return s.size();
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_ascii(std::string_view s) noexcept {
  std::size_t i = 0;
  std::uint64_t any = 0;
  for (; i + 8 <= s.size(); i += 8)
    any |= load_word(s.data() + i);
  for (; i < s.size(); ++i)
    any |= static_cast<unsigned char>(s[i]);
  return (any & high_bits) == 0;
}

} // namespace troupe::ot
