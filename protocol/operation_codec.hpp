#pragma once
// The one MessagePack form of a text operation, shared by the codec (`op` requests and
// pushes, `opened.ops`), the SQLite store's rows, the C++ client, the benches and the fuzzers.
//
// An operation is an array of components: a positive integer n retains n code points, a
// negative integer -n removes n, a string inserts it (the contract's "Documents" section).
// Edge cases, decided once here:
//  - an empty array is the empty operation (it changes nothing); zero-length components
//    (`0`, `""`) are accepted and dropped;
//  - a trailing retain is accepted and kept in base_length(), so fits() still refuses one
//    that runs past the document's end; pack_operation() leaves it out (the wire's
//    normalised form), pack_operation_spanning() writes it (the store's replay checks it);
//  - a count outside int64 (a retain above INT64_MAX, a delete of INT64_MIN, whose length
//    -INT64_MIN has no int64) is refused by the reader; ot::parse() then refuses any span
//    larger than a document can be (2^48 code points) and inserts that are not valid UTF-8.

#include <cstdint>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "ot/text_operation.hpp"

namespace troupe::protocol {

namespace detail {
/// The components of `op`, then `trailing` as a retain when it is not zero. Retains are
/// packed as unsigned integers: the same bytes pack_int64 gives a positive count.
template <class Stream>
void pack_components(msgpack::packer<Stream>& pk, const ot::operation& op, std::size_t trailing) {
  const auto& parts = op.components();
  pk.pack_array(static_cast<std::uint32_t>(parts.size() + (trailing > 0 ? 1 : 0)));
  for (const auto& part : parts) {
    switch (part.type) {
    case ot::component::kind::retain:
      pk.pack_uint64(part.count);
      break;
    case ot::component::kind::remove:
      pk.pack_int64(-static_cast<std::int64_t>(part.count));
      break;
    case ot::component::kind::insert:
      pk.pack_str(static_cast<std::uint32_t>(part.text.size()));
      pk.pack_str_body(part.text.data(), static_cast<std::uint32_t>(part.text.size()));
      break;
    }
  }
  if (trailing > 0) pk.pack_uint64(trailing);
}
} // namespace detail

/// Packs `op` as the wire's array of components (normalised: no trailing retain).
template <class Stream>
void pack_operation(msgpack::packer<Stream>& pk, const ot::operation& op) {
  detail::pack_components(pk, op, 0);
}

/// Packs `op` with its trailing retain, so that base_length() round-trips through
/// unpack_operation(): the store's rows, whose replay checks that each operation fits.
template <class Stream>
void pack_operation_spanning(msgpack::packer<Stream>& pk, const ot::operation& op) {
  detail::pack_components(pk, op, op.trailing_retain());
}

/// Reads the array's components as they are, without ot::parse()'s checks (the codec hands
/// `op` requests on in this form): an empty string, or why `value` is not such an array.
std::string unpack_components(const msgpack::object& value, std::vector<ot::wire_component>& out);

/// Reads an operation from a MessagePack value: an array of integers and strings. On failure
/// `error` says why (not an array, a component that is neither, a bad integer, invalid UTF-8 ...).
ot::parse_result unpack_operation(const msgpack::object& value);

} // namespace troupe::protocol
