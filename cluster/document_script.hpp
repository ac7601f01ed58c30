#pragma once
// A room's document in Redis: the key layout, the commit script (cluster/scripts/
// doc_commit.lua: optimistic, checked against the document's revision, deduplicated by key)
// and the read script (cluster/scripts/doc_read.lua), both embedded at build time, and the
// decoding of their replies and of the channel's messages. Only keys and arguments: any link
// (the engine's redis_connection, a test's synchronous hiredis context) can carry them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/publish_script.hpp"
#include "cluster/redis_types.hpp"
#include "ot/text_operation.hpp"

namespace troupe::cluster {

namespace scripts {
std::string_view doc_commit_text() noexcept;
std::string_view doc_commit_sha1() noexcept;
std::string_view doc_read_text() noexcept;
std::string_view doc_read_sha1() noexcept;
} // namespace scripts

const redis_script& doc_commit_script();
const redis_script& doc_read_script();

/// The names of one document's keys, sharing the room's hash tag {<room>}.
struct document_keys {
  std::string meta;     ///< tr:{room}:dmeta  hash {epoch, rev}
  std::string ops;      ///< tr:{room}:dops   the kept operations, entry id <rev>-1
  std::string keys;     ///< tr:{room}:dkeys  idempotency key -> rev, trimmed with the stream
  std::string snapshot; ///< tr:{room}:dsnap  hash {rev, text}
  std::string channel;  ///< tr:{room}:dch    pub/sub: every committed operation
};
document_keys document_keys_for(std::string_view room);

/// An operation as Redis keeps it: MessagePack, with its trailing retain (so that a replay
/// can check that it fits).
std::string pack_op(const ot::operation& op);

struct commit_args {
  std::string_view epoch; ///< the epoch the node's copy belongs to
  std::uint64_t log = 1000;
  std::uint64_t base = 0; ///< the revision `op` was transformed up to
  std::string_view user;
  std::string_view key; ///< empty: not deduplicated
  std::string_view cid; ///< the node's id of this commit (its own op on the channel)
  std::string_view op;  ///< pack_op()
  /// The text after this operation, to keep as the document's snapshot.
  std::optional<std::string_view> snapshot;
  std::size_t missed = 1000; ///< the most operations a stale reply carries
};
script_call commit_call(const document_keys& keys, const commit_args& args);

enum class commit_status {
  accepted,  ///< committed as `rev`
  duplicate, ///< the key was accepted before, as `rev`
  stale,     ///< refused: the document is at `rev`, not at the base
  epoch,     ///< refused: the document is gone or of another epoch (`epoch`, '' if gone)
};
/// One committed operation, owned.
struct document_entry {
  std::uint64_t rev = 0;
  std::string user;
  std::string key;
  std::string cid;
  ot::operation op;
};

struct commit_result {
  commit_status status = commit_status::stale;
  std::uint64_t rev = 0;
  std::string epoch;
  std::vector<document_entry> missed; ///< stale: the operations after the base, ascending
};
commit_result decode_commit_reply(const redis_reply& reply);

/// The channel's payload: [rev, epoch, user, key, cid, op] of cmsgpack.pack.
struct published_op {
  std::string epoch;
  document_entry entry;
};
published_op decode_published_op(std::string_view payload);

/// The whole document (its snapshot and every kept operation), creating its epoch from
/// `epoch_candidate` if it has none ...
script_call load_call(const document_keys& keys, std::string_view epoch_candidate);
/// ... or the operations from revision `from` (>= 1) on, creating nothing.
script_call range_call(const document_keys& keys, std::uint64_t from);

struct document_read {
  std::string epoch; ///< empty: the document has none (lost, or never made)
  std::uint64_t rev = 0;
  std::uint64_t snapshot_rev = 0;      ///< load_call only
  std::string snapshot_text;           ///< load_call only
  std::vector<document_entry> entries; ///< ascending revisions
};
document_read decode_document_read(const redis_reply& reply);

} // namespace troupe::cluster
