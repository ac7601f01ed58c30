// What a subscriber hears about one room. Every callback runs on the client's strand.
#pragma once

#include <functional>

#include "clients/cpp/presence_view.hpp"
#include "clients/cpp/result.hpp"
#include "clients/cpp/types.hpp"

namespace troupe::client {

struct room_handlers {
  // Every message of the room after the subscription point, exactly once, in seq order
  // (including those recovered after a reconnect).
  std::function<void(const message&)> on_message;
  // Each (re)subscription: initial, recovered, or rebuilt (state was lost: rebuild the view
  // from `msgs`).
  std::function<void(const subscribed_event&)> on_subscribed;
  // The server refused a resubscription (e.g. forbidden): the room is no longer subscribed.
  std::function<void(const error&)> on_error;
  // The room's presence changed: a snapshot on each (re)subscription (before on_subscribed),
  // then each `pdiff` applied in pseq order, and `resynced` after a hole in pseq was repaired.
  // `ev.view` is the whole view (by connection, grouped by user, typing), valid during the call.
  std::function<void(const presence_event&)> on_presence;
  // Someone else in the room started or stopped typing (including `off` for a typer who left,
  // and for every typer when the connection is lost).
  std::function<void(const typing_event&)> on_typing;
};

} // namespace troupe::client
