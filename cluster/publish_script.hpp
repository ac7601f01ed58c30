#pragma once
// A room's messages in Redis: the key layout, the publish script (cluster/scripts/publish.lua,
// embedded at build time) and the reads that repair a hole. Only the commands' arguments and
// the decoding of their replies: no connection, so any hiredis context (the engine's
// asynchronous links, a test's synchronous one) can carry them.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace troupe::cluster {

namespace scripts {
/// cluster/scripts/publish.lua, byte for byte, and its SHA1 (lower-case hex, as Redis's).
std::string_view publish_text() noexcept;
std::string_view publish_sha1() noexcept;
} // namespace scripts

/// The names of one room's keys. They share the hash tag {<room>} (a room name has no
/// braces), so one script may touch them all, also on a Redis Cluster later.
struct room_keys {
  std::string meta;    ///< tr:{room}:meta   hash {epoch, seq}
  std::string stream;  ///< tr:{room}:stream the kept messages, entry id <seq>-1
  std::string keys;    ///< tr:{room}:keys   idempotency key -> seq, trimmed with the stream
  std::string channel; ///< tr:{room}:ch     pub/sub: every publish, as a packed array
};
room_keys keys_for(std::string_view room);

/// One command's arguments, owned, for redisCommandArgv / redisAsyncCommandArgv.
struct redis_command {
  std::vector<std::string> args;

  std::vector<const char*> argv() const;
  std::vector<std::size_t> argvlen() const;
};

/// A reply that is not what the command returns (or a Redis error: its text is the what()).
struct bad_reply : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct publish_args {
  std::string_view epoch_candidate; ///< becomes the epoch if the room has none
  std::uint64_t history = 100;      ///< messages kept (at least 1)
  std::string_view user;
  std::string_view key;  ///< idempotency key; empty for none
  std::string_view data; ///< the message's MessagePack bytes
};

/// EVALSHA with the script's SHA1 (the usual case), or EVAL with its text (after NOSCRIPT:
/// EVAL also loads it into Redis's script cache, so the next EVALSHA finds it).
enum class script_call { evalsha, eval };
redis_command publish_command(const room_keys& keys, const publish_args& args,
                              script_call how = script_call::evalsha);

/// True for the error reply of an EVALSHA whose script Redis does not have (a restart, a
/// SCRIPT FLUSH): send the EVAL form instead.
bool is_noscript(const redisReply& reply) noexcept;

/// The script's reply: the ack.
struct publish_result {
  std::uint64_t seq = 0;
  std::string epoch;
  std::uint64_t ts = 0;   ///< Redis's TIME at the publish, ms since the Unix epoch
  bool duplicate = false; ///< the key was known: seq and ts are the first publish's
};
publish_result decode_publish_reply(const redisReply& reply);

/// A message as published on the room's channel and as kept in its stream. The views point
/// into the payload or reply they were decoded from.
struct room_message {
  std::uint64_t seq = 0;
  std::uint64_t ts = 0;
  std::string_view user;
  std::string_view key;
  std::string_view data;
};

/// The channel's payload: the array [seq, epoch, ts, user, key, data] of cmsgpack.pack.
struct published_message {
  room_message message;
  std::string_view epoch;
};
published_message decode_published(std::string_view payload);

/// XRANGE of the stream entries with seq in [from, to] (ids <seq>-1).
redis_command range_command(const room_keys& keys, std::uint64_t from, std::uint64_t to);
/// The entries of an XRANGE (or XREVRANGE) reply, in the reply's order.
std::vector<room_message> decode_stream_entries(const redisReply& reply);

/// HMGET meta epoch seq: the periodic top check.
redis_command top_command(const room_keys& keys);
struct room_top {
  std::string epoch; ///< empty when the room has no meta (no log yet, or lost)
  std::uint64_t seq = 0;
};
room_top decode_top(const redisReply& reply);

/// A repair read: the entries [from, to] with the epoch and top seq they belong to, read
/// atomically (an epoch change between two separate reads would pass a new log's seqs for
/// the old ones): MULTI, HMGET, XRANGE, EXEC, to send back to back on one connection.
std::vector<redis_command> repair_read_commands(const room_keys& keys, std::uint64_t from,
                                                std::uint64_t to);
struct repair_read {
  room_top top;
  std::vector<room_message> entries; ///< views into the EXEC reply
};
/// Decodes the EXEC reply (the replies of MULTI and the QUEUED ones carry nothing).
repair_read decode_repair_read(const redisReply& exec_reply);

} // namespace troupe::cluster
