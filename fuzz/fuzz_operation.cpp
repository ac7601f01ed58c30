// Fuzz target: ot::parse on arbitrary wire components, and when two operations parse, the
// invariants the document actor and the clients rely on. A violation traps.
//
// The input is read front to back (fuzz/README.md has the byte layout; make_corpus.py
// writes it): the first byte adds to the document's length, then each tag byte adds one
// component to operation `a`, until a 0xFF tag switches to operation `b`.
//   0x00..0x3F  retain (bit 0x20 clear) or remove (set) of 0..31
//   0x40..0x5F  retain (bit 0x10 clear) or remove (set) of the next 2 bytes (little endian)
//               masked to 0..8191: enough to cross many rope chunks
//   0x60..0x7F  the next 8 bytes as a raw int64 (huge, INT64_MIN, ...)
//   0x80..0xBF  insert of (tag & 0x3F) raw bytes, valid UTF-8 or not
//   0xC0..0xFE  insert of (tag & 0x3F) code points, one per following byte: its top two
//               bits pick 1-, 2-, 3- or 4-byte UTF-8
//   0xFF        the rest is operation `b`

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ot/rope.hpp"
#include "ot/text_operation.hpp"
#include "ot/utf8.hpp"

using namespace troupe;
using ot::operation;
using ot::wire_component;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

/// One byte to a code point of 1, 2, 3 or 4 UTF-8 bytes.
std::uint32_t code_point(std::uint8_t b) {
  constexpr std::uint32_t base[] = {0x20, 0xC0, 0x4E00, 0x1F600};
  return base[b >> 6] + (b & 0x3F);
}

struct reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t at = 0;

  bool done() const { return at >= size; }
  std::uint8_t byte() { return at < size ? data[at++] : 0; }
  std::uint64_t little_endian(int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= std::uint64_t{byte()} << (8 * i);
    return v;
  }
};

struct input {
  std::size_t extra = 0;
  std::vector<wire_component> a, b;
};

input read_input(const std::uint8_t* data, std::size_t size) {
  reader in{data, size};
  input result;
  result.extra = in.byte();
  auto* op = &result.a;
  while (!in.done()) {
    const std::uint8_t tag = in.byte();
    if (tag < 0x40) {
      const std::int64_t n = tag & 0x1F;
      op->emplace_back((tag & 0x20) ? -n : n);
    } else if (tag < 0x60) {
      const auto n = static_cast<std::int64_t>(in.little_endian(2) & 0x1FFF);
      op->emplace_back((tag & 0x10) ? -n : n);
    } else if (tag < 0x80) {
      op->emplace_back(static_cast<std::int64_t>(in.little_endian(8)));
    } else if (tag < 0xC0) {
      const std::size_t n = std::min<std::size_t>(tag & 0x3F, in.size - in.at);
      op->emplace_back(std::string(reinterpret_cast<const char*>(in.data + in.at), n));
      in.at += n;
    } else if (tag < 0xFF) {
      std::string text;
      for (int i = 0; i < (tag & 0x3F) && !in.done(); ++i)
        ot::append_utf8(text, code_point(in.byte()));
      op->emplace_back(std::move(text));
    } else {
      op = &result.b;
    }
  }
  return result;
}

/// A document of `length` code points mixing 1- to 4-byte characters, so that code point
/// and byte offsets differ and rope chunks end inside runs of multi-byte text.
std::string make_document(std::size_t length, std::size_t seed) {
  std::string text;
  text.reserve(length * 2);
  for (std::size_t i = 0; i < length; ++i)
    ot::append_utf8(text, code_point(static_cast<std::uint8_t>((i * 37 + seed) >> (i % 3))));
  return text;
}

/// The normal form operation.hpp promises, and counts that match the text.
void check_normal(const operation& op) {
  using kind = ot::component::kind;
  const auto& cs = op.components();
  std::size_t span = 0;
  std::int64_t change = 0;
  for (std::size_t i = 0; i < cs.size(); ++i) {
    check(cs[i].count > 0);
    if (i > 0) check(cs[i].type != cs[i - 1].type);
    if (cs[i].type == kind::insert) {
      check(ot::utf8_count(cs[i].text) == cs[i].count);
      change += static_cast<std::int64_t>(cs[i].count);
    } else {
      check(cs[i].text.empty());
      span += cs[i].count;
      if (cs[i].type == kind::remove) change -= static_cast<std::int64_t>(cs[i].count);
    }
  }
  check(cs.empty() || cs.back().type != kind::retain);
  check(op.base_length() >= span);
  check(op.length_change() == change);
  check(op.empty() == cs.empty());
}

void check_single(const operation& op) {
  check_normal(op);
  auto again = ot::parse(op.to_wire());
  check(again.op.has_value());
  check(*again.op == op);
  check(ot::fits(op, op.base_length()));
  check(op.base_length() == 0 || !ot::fits(op, op.base_length() - 1));
}

/// Applies `op` to the text through the rope and through a string; both must agree, and
/// the length must change as the operation says.
std::string apply_both(const std::string& text, const operation& op) {
  const std::size_t length = ot::utf8_count(text);
  check(ot::fits(op, length));
  std::string by_string = ot::apply(text, op);
  ot::rope rope(text);
  ot::apply(rope, op);
  check(rope.size() == ot::utf8_count(by_string));
  check(rope.size_bytes() == by_string.size());
  check(rope.to_string() == by_string);
  check(static_cast<std::int64_t>(rope.size()) ==
        static_cast<std::int64_t>(length) + op.length_change());
  return by_string;
}

/// Where and what `op` inserts when it is only an insert (after a retain or not).
std::optional<std::pair<std::size_t, std::string>> lone_insert(const operation& op) {
  using kind = ot::component::kind;
  const auto& cs = op.components();
  if (cs.size() == 1 && cs[0].type == kind::insert) return std::pair{std::size_t{0}, cs[0].text};
  if (cs.size() == 2 && cs[0].type == kind::retain && cs[1].type == kind::insert)
    return std::pair{cs[0].count, cs[1].text};
  return std::nullopt;
}

// Documents above this are not built: parse accepts spans up to 2^48.
constexpr std::size_t max_document = std::size_t{1} << 15;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const input in = read_input(data, size);
  auto a = ot::parse(in.a);
  auto b = ot::parse(in.b);
  check(a.op.has_value() != !a.error.empty());
  check(b.op.has_value() != !b.error.empty());
  if (a.op) check_single(*a.op);
  if (b.op) check_single(*b.op);
  if (!a.op || !b.op) return 0;

  const operation& opa = *a.op;
  const operation& opb = *b.op;
  const std::size_t length = std::max(opa.base_length(), opb.base_length()) + in.extra;
  if (length > max_document) return 0;
  const std::string doc = make_document(length, in.extra);

  const std::string after_a = apply_both(doc, opa);
  const std::string after_b = apply_both(doc, opb);

  // Doing nothing is the identity of both.
  check(ot::transform(opa, operation{}, ot::side::left) == opa);
  check(ot::compose(opa, operation{}) == opa);
  check(ot::compose(operation{}, opa) == opa);

  // b read as made after a: composing them does both in one step.
  if (ot::fits(opb, ot::utf8_count(after_a))) {
    const operation both = ot::compose(opa, opb);
    check_normal(both);
    check(apply_both(doc, both) == apply_both(after_a, opb));
  }

  // Convergence with either tie-break: the server transforms with left, a client with right.
  for (auto a_side : {ot::side::left, ot::side::right}) {
    const auto b_side = a_side == ot::side::left ? ot::side::right : ot::side::left;
    const operation a2 = ot::transform(opa, opb, a_side);
    const operation b2 = ot::transform(opb, opa, b_side);
    check_normal(a2);
    check_normal(b2);
    const std::string ab = apply_both(after_a, b2);
    const std::string ba = apply_both(after_b, a2);
    check(ab == ba);
    // One rope edited twice in a row (chunks split and joined by the first edit) agrees.
    ot::rope rope(doc);
    ot::apply(rope, opb);
    ot::apply(rope, a2);
    check(rope.to_string() == ba);

    // Composing a with b transformed over it does both in one step.
    const operation both = ot::compose(opa, b2);
    check_normal(both);
    check(apply_both(doc, both) == ab);
  }

  // The tie rule itself (convergence holds with either rule): when both only insert at
  // one position, the left side's text comes first.
  if (auto pa = lone_insert(opa), pb = lone_insert(opb); pa && pb && pa->first == pb->first) {
    const std::size_t at = ot::utf8_offset(doc, pa->first);
    const std::string a_first = doc.substr(0, at) + pa->second + pb->second + doc.substr(at);
    check(apply_both(after_b, ot::transform(opa, opb, ot::side::left)) == a_first);
  }

  // A cursor anywhere stays inside the document after the edit.
  for (std::size_t p : {std::size_t{0}, length / 2, length}) {
    check(ot::transform_position(p, opa) <=
          static_cast<std::size_t>(static_cast<std::int64_t>(length) + opa.length_change()));
  }
  return 0;
}
