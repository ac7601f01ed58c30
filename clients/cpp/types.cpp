#include "clients/cpp/types.hpp"

namespace troupe::client {

const char* to_string(subscribe_kind k) {
  switch (k) {
  case subscribe_kind::initial:
    return "initial";
  case subscribe_kind::recovered:
    return "recovered";
  case subscribe_kind::rebuilt:
    return "rebuilt";
  }
  return "?";
}

const char* to_string(connection_state s) {
  switch (s) {
  case connection_state::idle:
    return "idle";
  case connection_state::connecting:
    return "connecting";
  case connection_state::connected:
    return "connected";
  case connection_state::disconnected:
    return "disconnected";
  case connection_state::closed:
    return "closed";
  }
  return "?";
}

} // namespace troupe::client
