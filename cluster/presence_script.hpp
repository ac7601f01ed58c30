#pragma once
// A room's presence list in Redis, shared by every node: the key layout, the scripts
// (cluster/scripts/presence.lua, presence_read.lua, presence_sweep.lua, embedded at build
// time), the channel messages (diffs, typing) and the decoding of their replies. Keys and
// arguments only: no connection (see cluster/publish_script.hpp).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/publish_script.hpp"
#include "cluster/redis_types.hpp"

namespace troupe::cluster {

namespace scripts {
std::string_view presence_text() noexcept;
std::string_view presence_sha1() noexcept;
std::string_view presence_read_text() noexcept;
std::string_view presence_read_sha1() noexcept;
std::string_view presence_sweep_text() noexcept;
std::string_view presence_sweep_sha1() noexcept;
} // namespace scripts

const redis_script& presence_script();
const redis_script& presence_read_script();
const redis_script& presence_sweep_script();

/// A room's presence keys: the hash tag {room}, as its log's (presence_sweep.lua builds the
/// same names from the room's name).
struct presence_keys {
  std::string entries; ///< tr:{room}:pres    client -> encoded entry
  std::string owners;  ///< tr:{room}:powner  client -> incarnation of its node
  std::string grace;   ///< tr:{room}:pgrace  client -> user, while it waits out a grace period
  std::string meta;    ///< tr:{room}:pmeta   {pseq}
  std::string channel; ///< tr:{room}:pch     the diffs, in pseq order as published
  std::string typing;  ///< tr:{room}:tch     typing on/off: published only, never stored
  std::string users;   ///< tr:{room}:pusers  user -> number of its entries (webhook events)
};
presence_keys presence_keys_for(std::string_view room);

/// tr:node:<incarnation>:rooms: the rooms where that node has entries.
std::string node_rooms_key(std::string_view incarnation);

/// One change in a batch (at most one per client).
struct presence_change {
  enum class kind : char { upsert = 'u', remove = 'r', grace = 'g' };
  kind what = kind::upsert;
  std::string client;
  std::string user;  ///< upsert, grace
  std::string entry; ///< upsert: the encoded entry
};
script_call presence_call(const presence_keys& keys, std::string_view room,
                          std::string_view incarnation,
                          const std::vector<presence_change>& changes);

/// A webhook event a script computed (room_occupied, member_added, member_removed,
/// room_vacated): the cluster's one copy, for the node that ran the script to emit.
struct presence_event {
  std::string room; ///< the sweep's events only; a batch's are its room's
  std::string name;
  std::string user;   ///< empty: none
  std::string client; ///< empty: none
};

struct presence_write {
  std::uint64_t pseq = 0;             ///< the list's pseq after the batch
  bool changed = false;               ///< the batch made a diff (published with that pseq)
  std::vector<presence_event> events; ///< in order
};
presence_write decode_presence_write(const redis_reply& reply);

script_call presence_read_call(const presence_keys& keys);
struct presence_list_read {
  std::uint64_t pseq = 0;
  std::vector<std::pair<std::string, std::string>> entries; ///< client, encoded entry
};
presence_list_read decode_presence_read(const redis_reply& reply);

script_call presence_sweep_call(std::string_view dead_incarnation);
/// The sweep's reply: how many entries it removed, and the events that caused.
struct presence_sweep_result {
  std::uint64_t removed = 0;
  std::vector<presence_event> events; ///< in order per room
};
presence_sweep_result decode_presence_sweep(const redis_reply& reply);

/// A diff as published on the channel; the views point into the payload.
struct presence_diff_message {
  std::uint64_t pseq = 0;
  std::vector<std::pair<std::string_view, std::string_view>> joins;  ///< client, entry
  std::vector<std::pair<std::string_view, std::string_view>> leaves; ///< client, entry
};
presence_diff_message decode_presence_diff(std::string_view payload);

/// Typing on the typing channel: [incarnation, client, user, on].
std::string encode_typing_message(std::string_view incarnation, std::string_view client,
                                  std::string_view user, bool on);
struct typing_message {
  std::string_view incarnation, client, user; ///< views into the payload
  bool on = false;
};
typing_message decode_typing_message(std::string_view payload);

} // namespace troupe::cluster
