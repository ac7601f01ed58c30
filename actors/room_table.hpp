#pragma once
// A connection's rooms by name. A vector, searched in order: a connection holds a handful of
// rooms, and an unordered_map costs a node and a bucket array (about 200 bytes) even for
// one, on every idle connection.

#include <utility>

#include <string>
#include <string_view>
#include <vector>

namespace troupe::actors {

template <class Link>
class room_table {
public:
  using value_type = std::pair<std::string, Link>;
  using iterator = typename std::vector<value_type>::iterator;

  iterator begin() noexcept { return entries_.begin(); }
  iterator end() noexcept { return entries_.end(); }

  iterator find(std::string_view name) noexcept {
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->first == name) return it;
    return entries_.end();
  }

  /// The room's link, added if it has none.
  Link& operator[](const std::string& name) {
    if (auto it = find(name); it != end()) return it->second;
    entries_.emplace_back(name, Link{});
    return entries_.back().second;
  }

  /// Moves the last entry into the erased one's place: iterators past `it` are invalid.
  void erase(iterator it) {
    if (it != entries_.end() - 1) *it = std::move(entries_.back());
    entries_.pop_back();
  }

private:
  std::vector<value_type> entries_;
};

} // namespace troupe::actors
