#include "core/room_access.hpp"

#include <algorithm>

namespace troupe::core {

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  // Greedy with one backtrack point: the last `*` seen absorbs one more character when the
  // rest fails to match. Linear in practice, quadratic at worst, never exponential.
  std::size_t p = 0, t = 0;
  std::size_t star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*')
    ++p;
  return p == pattern.size();
}

namespace {
bool any_match(const std::vector<std::string>& patterns, std::string_view room) noexcept {
  return std::any_of(patterns.begin(), patterns.end(),
                     [room](const std::string& pattern) { return glob_match(pattern, room); });
}
} // namespace

room_access room_access::everything() {
  room_access access;
  access.everything_ = true;
  return access;
}

room_access::room_access(std::vector<std::string> write, std::vector<std::string> read)
    : write_(std::move(write)), read_(std::move(read)) {}

bool room_access::may_read(std::string_view room) const noexcept {
  if (is_user_room(room)) return !user_.empty() && room.substr(user_room_prefix.size()) == user_;
  return everything_ || any_match(write_, room) || any_match(read_, room);
}

bool room_access::may_write(std::string_view room) const noexcept {
  if (is_user_room(room)) return false; // backends publish there, through the HTTP API
  return everything_ || any_match(write_, room);
}

} // namespace troupe::core
