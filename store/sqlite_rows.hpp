#pragma once
// The SQLite store's row codecs: what a row's bytes must hold and how an operation is kept.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ot/text_operation.hpp"
#include "protocol/string_sink.hpp"

namespace troupe::store::sqlite {

/// True when `payload` is exactly one MessagePack map with t == "msg" and this seq.
bool is_msg_map(std::string_view payload, std::uint64_t seq);

/// The operation of a row, or why the bytes are not one: the wire's array plus its trailing
/// retain when it has one, so base_length() (which replay's fits() checks) round-trips.
ot::parse_result decode_operation(std::string_view bytes);

/// A row of several operations (a run: consecutive revisions by one author, as
/// append_to_runs() makes it) keeps, for each in order, its idempotency key (a MessagePack
/// string) and then the operation as decode_operation() reads it.
/// A run of one operation as schema 1's row keeps it: its key, and the operation's bytes;
/// false when `entries` does not start with a MessagePack string.
bool split_lone_entry(std::string_view entries, std::string_view& key, std::string_view& op);
struct run_entry {
  std::string key;
  ot::operation op;
};
/// The `count` entries of a run row's bytes, appended to `out`; empty on success, else why
/// the bytes are not exactly `count` entries (and `out` holds what was read before).
std::string decode_run(std::string_view bytes, std::size_t count, std::vector<run_entry>& out);

} // namespace troupe::store::sqlite
