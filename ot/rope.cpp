#include "ot/rope.hpp"

#include <utility>

namespace troupe::ot {

struct rope::node {
  node* left = nullptr;
  node* right = nullptr;
  std::uint32_t priority = 0;
  bool ascii = true;         ///< the chunk is pure ASCII: code point offsets are byte offsets
  std::size_t chunk_cps = 0; ///< code points in `text`
  std::size_t cps = 0;       ///< code points in this subtree
  std::size_t bytes = 0;     ///< bytes in this subtree
  std::string text;

  /// Byte offset of code point `cp` inside this chunk.
  std::size_t offset(std::size_t cp) const noexcept { return ascii ? cp : utf8_offset(text, cp); }
};

namespace {

using node = rope::node;

std::size_t cps_of(const node* n) noexcept { return n ? n->cps : 0; }
std::size_t bytes_of(const node* n) noexcept { return n ? n->bytes : 0; }

void update(node* n) noexcept {
  n->cps = cps_of(n->left) + n->chunk_cps + cps_of(n->right);
  n->bytes = bytes_of(n->left) + n->text.size() + bytes_of(n->right);
}

node* merge(node* a, node* b) noexcept {
  if (!a) return b;
  if (!b) return a;
  if (a->priority > b->priority) {
    a->right = merge(a->right, b);
    update(a);
    return a;
  }
  b->left = merge(a, b->left);
  update(b);
  return b;
}

/// Splits `t` at code point `k`, which must fall on a chunk boundary: chunks that end at or
/// before `k` go left.
void split(node* t, std::size_t k, node*& left, node*& right) noexcept {
  if (!t) {
    left = right = nullptr;
    return;
  }
  const std::size_t through = cps_of(t->left) + t->chunk_cps;
  if (through <= k) {
    split(t->right, k - through, t->right, right);
    left = t;
  } else {
    split(t->left, k, left, t->left);
    right = t;
  }
  update(t);
}

void destroy(node* t) noexcept {
  while (t) {
    destroy(t->left);
    node* next = t->right;
    delete t;
    t = next;
  }
}

node* clone(const node* t) {
  if (!t) return nullptr;
  auto* copy =
      new node{nullptr, nullptr, t->priority, t->ascii, t->chunk_cps, t->cps, t->bytes, t->text};
  copy->left = clone(t->left);
  copy->right = clone(t->right);
  return copy;
}

void append_text(const node* t, std::string& out) {
  while (t) {
    append_text(t->left, out);
    out.append(t->text);
    t = t->right;
  }
}

std::size_t count_nodes(const node* t) noexcept {
  std::size_t count = 0;
  while (t) {
    count += 1 + count_nodes(t->left);
    t = t->right;
  }
  return count;
}

/// Inserts in place when the chunk holding `pos` has room. Returns false, changing nothing,
/// when it has not; on the way back up, every ancestor adds the new totals.
bool insert_in_place(node* t, std::size_t pos, std::string_view utf8, std::size_t cps, bool ascii) {
  const std::size_t before = cps_of(t->left);
  bool done;
  if (pos < before) {
    done = insert_in_place(t->left, pos, utf8, cps, ascii);
  } else if (pos <= before + t->chunk_cps) {
    if (t->text.size() + utf8.size() > rope::max_chunk) return false;
    t->text.insert(t->offset(pos - before), utf8);
    t->chunk_cps += cps;
    t->ascii = t->ascii && ascii;
    done = true;
  } else {
    done = insert_in_place(t->right, pos - before - t->chunk_cps, utf8, cps, ascii);
  }
  if (done) {
    t->cps += cps;
    t->bytes += utf8.size();
  }
  return done;
}

/// Erases in place when [pos, pos + n) lies inside one chunk that keeps at least min_chunk
/// bytes (or any text, when `lone` says it is the only chunk).
bool erase_in_place(node* t, std::size_t pos, std::size_t n, bool lone) {
  const std::size_t before = cps_of(t->left);
  if (pos < before) {
    if (pos + n > before || !erase_in_place(t->left, pos, n, lone)) return false;
    update(t);
    return true;
  }
  if (pos >= before + t->chunk_cps) {
    if (!erase_in_place(t->right, pos - before - t->chunk_cps, n, lone)) return false;
    update(t);
    return true;
  }
  const std::size_t from = pos - before;
  if (from + n > t->chunk_cps || n == t->chunk_cps) return false;
  const std::size_t first = t->offset(from);
  const std::size_t removed_bytes =
      t->ascii ? n : utf8_offset(std::string_view(t->text).substr(first), n);
  if (!lone && t->text.size() - removed_bytes < rope::min_chunk) return false;
  t->text.erase(first, removed_bytes);
  t->chunk_cps -= n;
  // A chunk that lost its last non-ASCII character stays marked non-ASCII: only slower.
  t->cps -= n;
  t->bytes -= removed_bytes;
  return true;
}

/// Start of the chunk holding code point `pos` (the last chunk when `pos` is the end), and
/// that chunk's length.
std::pair<std::size_t, std::size_t> locate(const node* t, std::size_t pos) noexcept {
  std::size_t start = 0;
  while (t) {
    const std::size_t before = cps_of(t->left);
    if (pos < before) {
      t = t->left;
    } else if (pos < before + t->chunk_cps || !t->right) {
      return {start + before, t->chunk_cps};
    } else {
      start += before + t->chunk_cps;
      pos -= before + t->chunk_cps;
      t = t->right;
    }
  }
  return {start, 0};
}

const node* leftmost(const node* t) noexcept {
  while (t->left)
    t = t->left;
  return t;
}

const node* rightmost(const node* t) noexcept {
  while (t->right)
    t = t->right;
  return t;
}

} // namespace

std::uint32_t rope::next_priority() noexcept {
  // xorshift64*: cheap, and good enough to keep the treap balanced.
  seed_ ^= seed_ >> 12;
  seed_ ^= seed_ << 25;
  seed_ ^= seed_ >> 27;
  return static_cast<std::uint32_t>((seed_ * 0x2545f4914f6cdd1dull) >> 32);
}

rope::node* rope::make_node(std::string text) {
  auto* n = new node;
  n->priority = next_priority();
  n->ascii = is_ascii(text);
  n->chunk_cps = n->ascii ? text.size() : utf8_count(text);
  n->cps = n->chunk_cps;
  n->bytes = text.size();
  n->text = std::move(text);
  return n;
}

rope::node* rope::build(std::string_view utf8) {
  if (utf8.empty()) return nullptr;
  if (utf8.size() <= max_chunk) return make_node(std::string(utf8));
  // Pieces between half and three quarters full leave room to type into each without
  // cutting it again at once.
  const std::size_t most = max_chunk / 4 * 3;
  const std::size_t pieces = (utf8.size() + most - 1) / most;
  node* tree = nullptr;
  std::size_t from = 0;
  for (std::size_t i = 1; i <= pieces; ++i) {
    std::size_t to = utf8.size() * i / pieces;
    while (to < utf8.size() && is_continuation(utf8[to]))
      ++to; // never cut a code point
    if (to > from) tree = merge(tree, make_node(std::string(utf8.substr(from, to - from))));
    from = to;
  }
  return tree;
}

void rope::replace(std::size_t pos, std::size_t n, std::string_view utf8) {
  if (!root_) {
    root_ = build(utf8);
    return;
  }
  // Cut out the chunks that [pos, pos + n) touches, keep their text outside the range, and
  // put the rebuilt chunks back between the two sides.
  const auto [start, first_length] = locate(root_, pos);
  std::size_t end = start + first_length;
  if (n > 0 && pos + n > end) {
    const auto [last_start, last_length] = locate(root_, pos + n - 1);
    end = last_start + last_length;
  }
  node *before, *rest, *middle, *after;
  split(root_, start, before, rest);
  split(rest, end - start, middle, after);
  std::string text;
  if (middle) {
    const node* first = leftmost(middle);
    const node* last = rightmost(middle);
    const std::size_t head = first->offset(pos - start);
    const std::size_t tail_cp = pos + n - (end - last->chunk_cps);
    const std::size_t tail = last->offset(tail_cp);
    text.reserve(head + utf8.size() + last->text.size() - tail);
    text.append(first->text, 0, head);
    text.append(utf8);
    text.append(last->text, tail);
    destroy(middle);
  } else {
    text.assign(utf8);
  }
  if (text.size() < min_chunk) {
    // Join a neighbour rather than leave a sliver: many small chunks make a deep treap.
    if (after) {
      node* next;
      split(after, leftmost(after)->chunk_cps, next, after);
      text.append(next->text);
      destroy(next);
    } else if (before) {
      node* previous;
      split(before, before->cps - rightmost(before)->chunk_cps, before, previous);
      text.insert(0, previous->text);
      destroy(previous);
    }
  }
  root_ = merge(merge(before, build(text)), after);
}

rope::rope(std::string_view utf8) : root_(build(utf8)) {}

rope::rope(const rope& other) : root_(clone(other.root_)), seed_(other.seed_) {}

rope::rope(rope&& other) noexcept
    : root_(std::exchange(other.root_, nullptr)), seed_(other.seed_) {}

rope& rope::operator=(const rope& other) {
  if (this != &other) {
    rope copy(other);
    std::swap(root_, copy.root_);
    seed_ = copy.seed_;
  }
  return *this;
}

rope& rope::operator=(rope&& other) noexcept {
  if (this != &other) {
    destroy(root_);
    root_ = std::exchange(other.root_, nullptr);
    seed_ = other.seed_;
  }
  return *this;
}

rope::~rope() { destroy(root_); }

void rope::insert(std::size_t pos, std::string_view utf8) {
  if (utf8.empty()) return;
  if (root_ && utf8.size() <= max_chunk) {
    const bool ascii = is_ascii(utf8);
    if (insert_in_place(root_, pos, utf8, ascii ? utf8.size() : utf8_count(utf8), ascii)) return;
  }
  replace(pos, 0, utf8);
}

void rope::erase(std::size_t pos, std::size_t n) {
  if (n == 0 || !root_) return;
  if (erase_in_place(root_, pos, n, !root_->left && !root_->right)) return;
  replace(pos, n, {});
}

void rope::clear() {
  destroy(root_);
  root_ = nullptr;
}

std::size_t rope::size() const noexcept { return cps_of(root_); }

std::size_t rope::size_bytes() const noexcept { return bytes_of(root_); }

std::string rope::to_string() const {
  std::string out;
  out.reserve(size_bytes());
  append_text(root_, out);
  return out;
}

std::size_t rope::chunk_count() const noexcept { return count_nodes(root_); }

} // namespace troupe::ot
