// What a subscriber hears about one room. Every callback runs on the client's strand.
#pragma once

#include <functional>

#include "client/result.hpp"
#include "client/types.hpp"

namespace troupe::client {

struct RoomHandlers {
  // Every message of the room after the subscription point, exactly once, in seq order
  // (including those recovered after a reconnect).
  std::function<void(const Message&)> on_message;
  // Each (re)subscription: initial, recovered, or rebuilt (state was lost: rebuild the view
  // from `msgs`).
  std::function<void(const SubscribedEvent&)> on_subscribed;
  // The server refused a resubscription (e.g. forbidden): the room is no longer subscribed.
  std::function<void(const Error&)> on_error;
};

}  // namespace troupe::client
