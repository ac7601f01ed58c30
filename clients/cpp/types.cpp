#include "clients/cpp/types.hpp"

namespace troupe::client {

const char* to_string(SubscribeKind k) {
  switch (k) {
    case SubscribeKind::initial: return "initial";
    case SubscribeKind::recovered: return "recovered";
    case SubscribeKind::rebuilt: return "rebuilt";
  }
  return "?";
}

const char* to_string(State s) {
  switch (s) {
    case State::idle: return "idle";
    case State::connecting: return "connecting";
    case State::connected: return "connected";
    case State::disconnected: return "disconnected";
    case State::closed: return "closed";
  }
  return "?";
}

}  // namespace troupe::client
