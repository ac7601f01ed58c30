#pragma once
// The tree's one UTF-8 module: validation (what comes from clients and the store) and the
// code point arithmetic of valid text (the rope and the operations count in code points).

#include <cstddef>
#include <string>
#include <string_view>

namespace troupe::ot {

/// Why `s` is not valid UTF-8 (overlong forms, UTF-16 surrogates and code points above
/// U+10FFFF included) with `at` set to the offending byte, or nullptr when it is valid.
const char* utf8_error(std::string_view s, std::size_t& at) noexcept;
/// True when `s` is valid UTF-8.
bool valid_utf8(std::string_view s) noexcept;

/// Code points in valid UTF-8 text (counts the bytes that do not continue a sequence).
std::size_t utf8_count(std::string_view s) noexcept;
/// Byte offset of code point `cp` in valid UTF-8 text (s.size() if cp is the length).
std::size_t utf8_offset(std::string_view s, std::size_t cp) noexcept;

/// Appends code point `cp` (at most U+10FFFF, no surrogate) as UTF-8.
void append_utf8(std::string& out, char32_t cp);

/// True when `s` holds only ASCII (then code point and byte offsets agree).
bool is_ascii(std::string_view s) noexcept;
/// True for a byte that continues a sequence (10xxxxxx): never a place to cut text.
constexpr bool is_continuation(char c) noexcept {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

} // namespace troupe::ot
