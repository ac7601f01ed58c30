#include "ot/text_operation.hpp"

#include "ot/utf8.hpp"

#include <algorithm>
#include <limits>

namespace troupe::ot {

namespace {

using kind = component::kind;

/// Part of a component taken from an operation being walked.
struct piece {
  kind type;
  std::size_t count;
  std::string_view text; ///< inserts only
};

constexpr std::size_t all = std::numeric_limits<std::size_t>::max();

/// Walks an operation's components, handing out pieces of at most a wanted length; past the
/// last component it hands out retains (the implicit trailing retain).
class taker {
public:
  explicit taker(const std::vector<component>& components) : components_(components) {}

  bool done() const noexcept { return index_ == components_.size(); }
  const component* peek() const noexcept { return done() ? nullptr : &components_[index_]; }

  /// At most `n` code points (`all`: the rest of the component); a component of kind
  /// `whole` is always taken whole.
  piece take(std::size_t n, kind whole) noexcept {
    if (done()) return {kind::retain, n, {}};
    const component& c = components_[index_];
    const std::size_t left = c.count - offset_;
    if (n >= left || c.type == whole) {
      piece p{c.type, left, {}};
      if (c.type == kind::insert) p.text = std::string_view(c.text).substr(byte_offset_);
      ++index_;
      offset_ = byte_offset_ = 0;
      return p;
    }
    piece p{c.type, n, {}};
    if (c.type == kind::insert) {
      const auto rest = std::string_view(c.text).substr(byte_offset_);
      p.text = rest.substr(0, ot::utf8_offset(rest, n));
      byte_offset_ += p.text.size();
    }
    offset_ += n;
    return p;
  }

private:
  const std::vector<component>& components_;
  std::size_t index_ = 0;
  std::size_t offset_ = 0;      ///< code points of the current component already taken
  std::size_t byte_offset_ = 0; ///< the same in bytes, for inserts
};

void append(operation& op, const piece& p) {
  switch (p.type) {
  case kind::retain:
    op.retain(p.count);
    break;
  case kind::insert:
    op.insert(p.text);
    break;
  case kind::remove:
    op.remove(p.count);
    break;
  }
}

/// Copies `a`'s pieces over `length` code points that `b` retains. Pieces of kind `aside`
/// (a's inserts when transforming, a's removes when composing) take up none of them: they
/// are copied whole and the walk goes on.
void copy_through(taker& take, operation& out, std::size_t length, kind aside) {
  while (length > 0) {
    const piece p = take.take(length, aside);
    append(out, p);
    if (p.type != aside) length -= p.count;
  }
}

/// Lets fits() see the whole document a result applies to, not only its last change: the
/// result must span at least `length` code points.
void pad_to(operation& op, std::int64_t length) {
  if (length > 0 && static_cast<std::size_t>(length) > op.base_length())
    op.retain(static_cast<std::size_t>(length) - op.base_length());
}

} // namespace

operation& operation::retain(std::size_t n) {
  // Kept aside until something follows, so there is never a trailing retain component.
  trailing_retain_ += n;
  base_length_ += n;
  return *this;
}

operation& operation::insert(std::string_view utf8) {
  if (utf8.empty()) return *this;
  if (components_.capacity() == 0)
    components_.reserve(4); // one allocation for a typical retain, insert, remove
  if (trailing_retain_ > 0) {
    components_.push_back({kind::retain, trailing_retain_, {}});
    trailing_retain_ = 0;
  }
  const std::size_t count = ot::utf8_count(utf8);
  inserted_ += count;
  // Never moved before a preceding remove: [-1, "c"] and ["c", -1] tie differently against a
  // concurrent insert, so reordering would change what the operation means (ot-text-unicode).
  if (!components_.empty() && components_.back().type == kind::insert) {
    components_.back().count += count;
    components_.back().text.append(utf8);
  } else {
    components_.push_back({kind::insert, count, std::string(utf8)});
  }
  return *this;
}

operation& operation::remove(std::size_t n) {
  if (n == 0) return *this;
  if (components_.capacity() == 0) components_.reserve(4);
  if (trailing_retain_ > 0) {
    components_.push_back({kind::retain, trailing_retain_, {}});
    trailing_retain_ = 0;
  }
  base_length_ += n;
  removed_ += n;
  if (!components_.empty() && components_.back().type == kind::remove)
    components_.back().count += n;
  else
    components_.push_back({kind::remove, n, {}});
  return *this;
}

std::int64_t operation::length_change() const noexcept {
  return static_cast<std::int64_t>(inserted_) - static_cast<std::int64_t>(removed_);
}

std::vector<wire_component> operation::to_wire() const {
  std::vector<wire_component> wire;
  wire.reserve(components_.size());
  for (const auto& c : components_) {
    switch (c.type) {
    case kind::retain:
      wire.emplace_back(static_cast<std::int64_t>(c.count));
      break;
    case kind::insert:
      wire.emplace_back(c.text);
      break;
    case kind::remove:
      wire.emplace_back(-static_cast<std::int64_t>(c.count));
      break;
    }
  }
  return wire;
}

parse_result parse(const std::vector<wire_component>& wire) {
  // Far beyond any document, and small enough that sums cannot overflow.
  constexpr std::uint64_t max_span = std::uint64_t{1} << 48;
  operation op;
  std::uint64_t span = 0;
  for (std::size_t i = 0; i < wire.size(); ++i) {
    if (const auto* n = std::get_if<std::int64_t>(&wire[i])) {
      // Negating in unsigned arithmetic: -INT64_MIN does not overflow there.
      const std::uint64_t count =
          *n >= 0 ? static_cast<std::uint64_t>(*n) : 0 - static_cast<std::uint64_t>(*n);
      span += std::min(count, max_span + 1);
      if (span > max_span)
        return {std::nullopt, "component " + std::to_string(i) +
                                  ": the operation spans more code points than any document holds"};
      if (*n > 0)
        op.retain(static_cast<std::size_t>(count));
      else
        op.remove(static_cast<std::size_t>(count));
    } else {
      const auto& text = std::get<std::string>(wire[i]);
      std::size_t at = 0;
      if (const char* why = utf8_error(text, at))
        return {std::nullopt, "component " + std::to_string(i) + ": insert is not valid UTF-8 (" +
                                  why + " at byte " + std::to_string(at) + ")"};
      op.insert(text);
    }
  }
  return {std::move(op), {}};
}

bool fits(const operation& op, std::size_t length) noexcept { return op.base_length() <= length; }

void apply(ot::rope& text, const operation& op) {
  std::size_t pos = 0;
  for (const auto& c : op.components()) {
    switch (c.type) {
    case kind::retain:
      pos += c.count;
      break;
    case kind::insert:
      text.insert(pos, c.text);
      pos += c.count;
      break;
    case kind::remove:
      text.erase(pos, c.count);
      break;
    }
  }
}

std::string apply(std::string_view utf8, const operation& op) {
  std::string out;
  out.reserve(utf8.size() + 16);
  for (const auto& c : op.components()) {
    switch (c.type) {
    case kind::retain: {
      const std::size_t bytes = ot::utf8_offset(utf8, c.count);
      out.append(utf8.substr(0, bytes));
      utf8.remove_prefix(bytes);
      break;
    }
    case kind::insert:
      out.append(c.text);
      break;
    case kind::remove:
      utf8.remove_prefix(ot::utf8_offset(utf8, c.count));
      break;
    }
  }
  out.append(utf8);
  return out;
}

operation transform(const operation& a, const operation& b, side a_side) {
  operation out;
  taker take(a.components());
  for (const auto& c : b.components()) {
    switch (c.type) {
    case kind::retain:
      copy_through(take, out, c.count, kind::insert);
      break;
    case kind::insert:
      // At a tie the left side's insert goes first; b's inserted text is then stepped over.
      if (a_side == side::left && take.peek() && take.peek()->type == kind::insert)
        append(out, take.take(all, kind::insert));
      out.retain(c.count);
      break;
    case kind::remove:
      for (std::size_t length = c.count; length > 0;) {
        const piece p = take.take(length, kind::insert);
        if (p.type == kind::insert)
          append(out, p); // still inserted, where b's removal was
        else
          length -= p.count; // b removed it: nothing for a to retain or remove
      }
      break;
    }
  }
  while (!take.done())
    append(out, take.take(all, kind::insert));
  const auto base = static_cast<std::int64_t>(std::max(a.base_length(), b.base_length()));
  pad_to(out, base + b.length_change());
  return out;
}

operation compose(const operation& a, const operation& b) {
  operation out;
  taker take(a.components());
  for (const auto& c : b.components()) {
    switch (c.type) {
    case kind::retain:
      copy_through(take, out, c.count, kind::remove);
      break;
    case kind::insert:
      out.insert(c.text);
      break;
    case kind::remove:
      for (std::size_t length = c.count; length > 0;) {
        const piece p = take.take(length, kind::remove);
        switch (p.type) {
        case kind::retain:
          out.remove(p.count);
          length -= p.count;
          break;
        case kind::insert:
          length -= p.count; // a inserted it, b removes it: neither remains
          break;
        case kind::remove:
          out.remove(p.count); // a's removal, before the text b removes
          break;
        }
      }
      break;
    }
  }
  while (!take.done())
    append(out, take.take(all, kind::remove));
  const auto after_a = static_cast<std::int64_t>(b.base_length()) - a.length_change();
  pad_to(out, std::max(static_cast<std::int64_t>(a.base_length()), after_a));
  return out;
}

std::size_t transform_position(std::size_t position, const operation& op) noexcept {
  std::size_t pos = 0;
  for (const auto& c : op.components()) {
    if (position <= pos) break; // an insert exactly at the cursor leaves it in place
    switch (c.type) {
    case kind::retain:
      pos += c.count;
      break;
    case kind::insert:
      pos += c.count;
      position += c.count;
      break;
    case kind::remove:
      position -= std::min(c.count, position - pos);
      break;
    }
  }
  return position;
}

} // namespace troupe::ot
