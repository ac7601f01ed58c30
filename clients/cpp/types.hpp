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
struct Message {
  std::string room;
  std::uint64_t seq = 0;
  std::string user;
  Value data;
  std::int64_t ts = 0;  // server time, ms since the Unix epoch
  std::optional<std::string> key;
};

// A position in a room's log.
struct Since {
  std::uint64_t seq = 0;
  std::string epoch;
};

enum class SubscribeKind {
  initial,    // first subscription: `msgs` is the newest kept history, a snapshot
  recovered,  // resubscribed with `since` and nothing was lost: the missed messages were
              // delivered through on_message, in order, before this event
  rebuilt,    // the missed messages could not be recovered (history too short, new epoch):
              // `msgs` is the newest kept history; the user must rebuild the room's view
};

const char* to_string(SubscribeKind k);

struct SubscribedEvent {
  std::string room;
  std::uint64_t seq = 0;  // newest sequence number; pushes continue at seq + 1
  std::string epoch;
  SubscribeKind kind = SubscribeKind::initial;
  bool recovered = false;      // as the server said
  std::vector<Message> msgs;   // the snapshot for initial/rebuilt; the recovered messages otherwise
  std::uint64_t pseq = 0;      // presence
  Value members;               // presence entries, raw (for a presence extension)
};

struct Ack {
  std::string room;
  std::uint64_t seq = 0;
};

struct HistoryReply {
  std::string room;
  std::uint64_t seq = 0;
  std::string epoch;
  std::vector<Message> msgs;
};

struct ConnectedInfo {
  std::string client;  // the connection's id
  std::string user;
  std::chrono::seconds ping{0};
};

enum class State {
  idle,          // not started
  connecting,    // resolving, connecting, handshaking, waiting for `connected`
  connected,     // `connected` received; subscriptions are being (re)established
  disconnected,  // lost; a reconnect is scheduled
  closed,        // stopped for good (close() or a refusal such as 4403)
};

const char* to_string(State s);

struct StateEvent {
  State state = State::idle;
  // For disconnected/closed: the close code (0 if the connection broke without one),
  // the reason (from the close frame, the `disconnect` push, or the local error).
  std::uint16_t close_code = 0;
  std::string reason;
  std::chrono::milliseconds retry_in{0};  // for disconnected
  unsigned attempt = 0;                   // reconnect attempts since the last success
  ConnectedInfo info;                     // for connected
};

}  // namespace troupe::client
