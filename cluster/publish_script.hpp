#pragma once
// A room's messages in Redis: the key layout, the publish script (cluster/scripts/publish.lua)
// and the read script (cluster/scripts/read.lua), both embedded at build time, and the
// decoding of their replies. Only the scripts' keys and arguments: no connection, so any link
// (the engine's redis_connection, a test's synchronous hiredis context) can carry them.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/redis_types.hpp"

namespace troupe::cluster {

namespace scripts {
/// cluster/scripts/<name>.lua, byte for byte, and its SHA1 (lower-case hex, as Redis's).
std::string_view publish_text() noexcept;
std::string_view publish_sha1() noexcept;
std::string_view read_text() noexcept;
std::string_view read_sha1() noexcept;
} // namespace scripts

const redis_script& publish_script();
const redis_script& read_script();

/// The names of one room's keys. They share the hash tag {<room>} (a room name has no
/// braces), so one script may touch them all, also on a Redis Cluster later.
struct room_keys {
  std::string meta;    ///< tr:{room}:meta   hash {epoch, seq}
  std::string stream;  ///< tr:{room}:stream the kept messages, entry id <seq>-1
  std::string keys;    ///< tr:{room}:keys   idempotency key -> seq, trimmed with the stream
  std::string channel; ///< tr:{room}:ch     pub/sub: every publish, as a packed array
};
room_keys keys_for(std::string_view room);

/// One script call's KEYS and ARGV, for redis_connection::eval_script.
struct script_call {
  std::vector<std::string> keys;
  std::vector<std::string> args;
};

/// One command's arguments, owned, for redisCommandArgv (a test's synchronous context).
struct redis_command {
  std::vector<std::string> args;

  std::vector<const char*> argv() const;
  std::vector<std::size_t> argvlen() const;
};
/// EVALSHA of `script` with `call`'s keys and arguments.
redis_command eval_command(const redis_script& script, const script_call& call);

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
script_call publish_call(const room_keys& keys, const publish_args& args);

/// The publish script's reply: the ack.
struct publish_result {
  std::uint64_t seq = 0;
  std::string epoch;
  std::uint64_t ts = 0;   ///< Redis's TIME at the publish, ms since the Unix epoch
  bool duplicate = false; ///< the key was known: seq and ts are the first publish's
};
publish_result decode_publish_reply(const redis_reply& reply);

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

/// The entries of an XRANGE (or XREVRANGE) reply, in the reply's order.
std::vector<room_message> decode_stream_entries(const redis_reply& reply);

struct room_top {
  std::string epoch; ///< empty when the room has no meta (no log yet, or lost)
  std::uint64_t seq = 0;
};

/// Read script calls, each answering the epoch and top with what it read; with an
/// `epoch_candidate`, a room with no epoch gets that one (its log starts there):
/// the entries [from, to] (to 0: up to the top), at most `count` of them (0: all) ...
script_call read_call(const room_keys& keys, std::uint64_t from, std::uint64_t to,
                      std::size_t count = 0, std::string_view epoch_candidate = {});
/// ... the newest `count` entries ...
script_call newest_call(const room_keys& keys, std::size_t count,
                        std::string_view epoch_candidate = {});
/// ... or none: the periodic top check.
script_call top_call(const room_keys& keys);

struct room_read {
  room_top top;
  std::vector<room_message> entries; ///< oldest first; views into the reply
};
room_read decode_read(const redis_reply& reply);

} // namespace troupe::cluster
