#pragma once
// The SQLite store's row codecs: what a row's bytes must hold and how an operation is kept.

#include <cstdint>
#include <string_view>

#include "ot/text_operation.hpp"
#include "protocol/string_sink.hpp"

namespace troupe::store::sqlite {

/// True when `payload` is exactly one MessagePack map with t == "msg" and this seq.
bool is_msg_map(std::string_view payload, std::uint64_t seq);

/// An operation as its row keeps it: the wire's array plus its trailing retain when it has
/// one, so base_length() (which replay's fits() checks) round-trips. Replaces `out`'s bytes.
void encode_operation(const ot::operation& op, protocol::string_sink& out);
/// The operation of a row, or why the bytes are not one.
ot::parse_result decode_operation(std::string_view bytes);

} // namespace troupe::store::sqlite
