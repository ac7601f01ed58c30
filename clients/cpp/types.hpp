// What the client hands to its user: messages, subscription events, replies, states.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clients/cpp/value.hpp"

namespace troupe::client {

// A message of a room's log (a `msg` push, or an item of `history` / `subscribed.msgs`).
struct message {
  std::string room;
  std::uint64_t seq = 0;
  std::string user;
  value data;
  std::int64_t ts = 0; // server time, ms since the Unix epoch
  std::optional<std::string> key;
};

// A position in a room's log.
struct log_position {
  std::uint64_t seq = 0;
  std::string epoch;
};

enum class subscribe_kind {
  initial,   // first subscription: `msgs` is the newest kept history, a snapshot
  recovered, // resubscribed with `since` and nothing was lost: the missed messages were
             // delivered through on_message, in order, before this event
  rebuilt,   // the missed messages could not be recovered (history too short, new epoch):
             // `msgs` is the newest kept history; the user must rebuild the room's view
};

const char* to_string(subscribe_kind k);

struct subscribed_event {
  std::string room;
  std::uint64_t seq = 0; // newest sequence number; pushes continue at seq + 1
  std::string epoch;
  subscribe_kind kind = subscribe_kind::initial;
  bool recovered = false;    // as the server said
  std::vector<message> msgs; // the snapshot for initial/rebuilt; the recovered messages otherwise
  std::uint64_t pseq = 0;    // presence
  value members;             // presence entries, raw (for a presence extension)
};

struct ack {
  std::string room;
  std::uint64_t seq = 0;
};

struct history_reply {
  std::string room;
  std::uint64_t seq = 0;
  std::string epoch;
  std::vector<message> msgs;
};

struct connected_info {
  std::string client; // the connection's id
  std::string user;
  std::chrono::seconds ping{0};
};

enum class connection_state {
  idle,         // not started
  connecting,   // resolving, connecting, handshaking, waiting for `connected`
  connected,    // `connected` received; subscriptions are being (re)established
  disconnected, // lost; a reconnect is scheduled
  closed,       // stopped for good (close() or a refusal such as 4403)
};

const char* to_string(connection_state s);

struct state_event {
  connection_state state = connection_state::idle;
  // For disconnected/closed: the close code (0 if the connection broke without one),
  // the reason (from the close frame, the `disconnect` push, or the local error).
  std::uint16_t close_code = 0;
  std::string reason;
  std::chrono::milliseconds retry_in{0}; // for disconnected
  unsigned attempt = 0;                  // reconnect attempts since the last success
  connected_info info;                   // for connected
};

} // namespace troupe::client
