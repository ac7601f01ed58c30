#pragma once
// A rope of UTF-8 text indexed by Unicode code point. Plain class, single writer.
//
// The text lives in chunks of at most max_chunk bytes (never splitting a code point), kept
// in a treap ordered by position: each node holds one chunk plus the code point and byte
// totals of its subtree, so finding a position, inserting and erasing cost O(log n) expected
// (plus the size of one chunk, and of the text inserted or erased). Typing into a chunk
// edits it in place; a chunk that grows past max_chunk is cut into half-full pieces.
//
// The rope does not check its input: text given to insert() must be valid UTF-8 (the OT
// layer validates operations before applying them) and positions must be in range.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ot/utf8.hpp" // utf8_count and utf8_offset, which rope users need too

namespace troupe::ot {

class rope {
public:
  static constexpr std::size_t max_chunk = 1024;
  /// A chunk that an edit leaves smaller than this joins a neighbour.
  static constexpr std::size_t min_chunk = max_chunk / 16;

  rope() = default;
  explicit rope(std::string_view utf8);
  rope(const rope& other);
  rope(rope&& other) noexcept;
  rope& operator=(const rope& other);
  rope& operator=(rope&& other) noexcept;
  ~rope();

  /// Inserts `utf8` before code point `pos` (0 <= pos <= size()).
  void insert(std::size_t pos, std::string_view utf8);
  /// Erases `n` code points from `pos` (pos + n <= size()).
  void erase(std::size_t pos, std::size_t n);
  void clear();

  std::size_t size() const noexcept;       ///< length in code points
  std::size_t size_bytes() const noexcept; ///< length in bytes
  bool empty() const noexcept { return size_bytes() == 0; }
  std::string to_string() const;
  /// Number of chunks (for tests and diagnostics).
  std::size_t chunk_count() const noexcept;

  struct node; ///< a treap node holding one chunk; defined in rope.cpp

private:
  node* root_ = nullptr;
  std::uint64_t seed_ = 0x9e3779b97f4a7c15ull;

  std::uint32_t next_priority() noexcept;
  node* make_node(std::string text);
  /// A treap of chunks holding `utf8` (null when it is empty).
  node* build(std::string_view utf8);
  /// Replaces n code points at pos with `utf8` by rebuilding the chunks the range touches.
  void replace(std::size_t pos, std::size_t n, std::string_view utf8);
};

} // namespace troupe::ot
