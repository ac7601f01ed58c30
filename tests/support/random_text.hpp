#pragma once
// Random Unicode text for property tests: mostly ASCII, with two-, three- and four-byte
// characters (é € 中 😀 𝄞) mixed in, kept as code points so a test can model positions.

#include <cstddef>
#include <iterator>
#include <random>
#include <string>
#include <string_view>

#include "ot/utf8.hpp"

namespace troupe::tests {

inline std::string to_utf8(std::u32string_view text) {
  std::string out;
  for (char32_t c : text)
    ot::append_utf8(out, c);
  return out;
}

/// The first `ascii` characters are ASCII.
inline constexpr char32_t random_alphabet[] = {U'a', U'b', U'c', U' ', U'\n',
                                               U'é', U'€', U'😀', U'𝄞', U'中'};
inline constexpr std::size_t random_alphabet_ascii = 5;

/// 0..max_length code points; only ASCII ones if `ascii_only`.
inline std::u32string random_text(std::mt19937_64& rng, std::size_t max_length,
                                  bool ascii_only = false) {
  std::u32string text(std::uniform_int_distribution<std::size_t>(0, max_length)(rng), U'a');
  const std::size_t choices = ascii_only ? random_alphabet_ascii : std::size(random_alphabet);
  for (auto& c : text)
    c = random_alphabet[std::uniform_int_distribution<std::size_t>(0, choices - 1)(rng)];
  return text;
}

} // namespace troupe::tests
