#pragma once
// Operational transformation for plain text, over Unicode code points. Plain classes: no
// CAF, no Asio, no MessagePack; the engine's document actor and the C++ client share them.
//
// An operation walks the document from its start: retain n code points, insert a string, or
// remove n code points. Anything after its last component is retained (the contract lets a
// trailing retain be left out). Built through retain()/insert()/remove(), an operation keeps
// its components in the order given and is normalised only where that preserves its meaning:
// no empty components, adjacent components of one kind merged, no trailing retain. A remove
// followed by an insert is never turned into an insert followed by a remove: under
// concurrency the two tie differently (ShareDB's ot-text-unicode, the contract's reference).
//
// Concurrent inserts at one position follow ShareDB's rule, which the wire contract states:
// the operation accepted later is placed before the other. The engine transforms a late
// operation over each accepted one with side::left; a client transforms its pending
// operations over an incoming one with side::left and the incoming one over its pending
// operations with side::right.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ot/rope.hpp"

namespace troupe::ot {

/// A component as the wire carries it: n > 0 retains n, n < 0 removes -n, a string inserts
/// it. The same type as protocol::op_component.
using wire_component = std::variant<std::int64_t, std::string>;

struct component {
  enum class kind : std::uint8_t { retain, insert, remove };
  kind type = kind::retain;
  std::size_t count = 0; ///< code points retained, inserted or removed
  std::string text;      ///< insert only: the UTF-8 text, `count` code points

  friend bool operator==(const component&, const component&) = default;
};

/// Which operation's insert goes first when both insert at the same position.
enum class side : std::uint8_t { left, right };

class operation {
public:
  operation() = default;

  operation& retain(std::size_t n);
  /// `utf8` must be valid UTF-8 (parse() checks what comes from outside).
  operation& insert(std::string_view utf8);
  operation& remove(std::size_t n);

  const std::vector<component>& components() const noexcept { return components_; }
  bool empty() const noexcept { return components_.empty(); } ///< changes nothing

  /// Code points of the document it must be applied to, at least: retains plus removes.
  std::size_t base_length() const noexcept { return base_length_; }
  /// Code points retained after the last component (counted in base_length(), not a component).
  std::size_t trailing_retain() const noexcept { return trailing_retain_; }
  /// What it does to a document's length: inserted minus removed code points.
  std::int64_t length_change() const noexcept;

  /// The wire form (normalised, so without a trailing retain).
  std::vector<wire_component> to_wire() const;

  /// Equal when their normalised components are: a trailing retain (kept only in base_length)
  /// does not count.
  friend bool operator==(const operation& a, const operation& b) noexcept {
    return a.components_ == b.components_;
  }

private:
  std::vector<component> components_;
  std::size_t base_length_ = 0;
  /// Retained after the last component: part of base_length_ (so fits() still sees it), kept
  /// out of components_ until an insert or remove follows.
  std::size_t trailing_retain_ = 0;
  std::size_t inserted_ = 0;
  std::size_t removed_ = 0;
};

/// An operation from the wire, or why it is not one: a zero count is allowed and means
/// nothing; an insert that is not valid UTF-8 is refused.
struct parse_result {
  std::optional<operation> op;
  std::string error; ///< set when `op` is empty
};
parse_result parse(const std::vector<wire_component>& wire);

/// Whether `op` applies to a document of `length` code points: it may not retain or remove
/// past the end.
bool fits(const operation& op, std::size_t length) noexcept;

/// Applies `op` to the text. Precondition: fits(op, text.size()).
void apply(ot::rope& text, const operation& op);
/// The same on a string (tests, the client's small documents). Precondition: fits.
std::string apply(std::string_view utf8, const operation& op);

/// `a` rewritten to apply after `b`, where both were made against the same document.
/// `a_side` decides tied inserts: side::left puts `a`'s insert before `b`'s.
operation transform(const operation& a, const operation& b, side a_side);

/// One operation with the effect of `a` followed by `b` (`b` made against a's result).
operation compose(const operation& a, const operation& b);

/// A cursor position (code points) moved through `op`: an insert before it shifts it right,
/// an insert exactly at it leaves it in place (ot-text-unicode's rule), a removal around it
/// pulls it to the removal's start.
std::size_t transform_position(std::size_t position, const operation& op) noexcept;

} // namespace troupe::ot
