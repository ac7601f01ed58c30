#pragma once
// The application's backend as the actors see it (`--backend URL`): the RPC calls clients
// make, and the webhook events rooms emit. The transport implements it over HTTP
// (transport/backend_client); actors never see a socket. Without --backend there is none
// (connection_services::backend is null): an `rpc` gets `not_found` and no event is emitted.

#include <functional>
#include <optional>
#include <string>

#include "protocol/messages.hpp"

namespace troupe::actors {

/// How an `rpc` ends: `result` with `data`, or the contract's error.
struct rpc_outcome {
  std::optional<protocol::error_code> error; ///< none: a result
  std::string reason;                        ///< with an error
  std::string data;                          ///< MessagePack of the reply's `data`; empty: nil
};

/// One webhook event, as a room emits it; the sender adds `id` and `time_ms`.
struct backend_event {
  std::string name; ///< room_occupied, room_vacated, member_added, member_removed
  std::string room;
  std::string user;   ///< empty: none
  std::string client; ///< empty: none
  std::string data;   ///< MessagePack; empty: none
};

class backend {
public:
  virtual ~backend() = default;

  /// Calls `method` for the verified `user` of connection `client` with `data` (MessagePack;
  /// empty: nil). `done` runs once, on any thread, within the backend timeout.
  virtual void rpc(std::string client, std::string user, std::string method, std::string data,
                   std::function<void(rpc_outcome)> done) = 0;

  /// Queues an event for the backend. Never blocks, never fails: what the bounded queue
  /// must drop is counted and logged. Any thread; events of one room keep their order.
  virtual void emit(backend_event event) = 0;
};

} // namespace troupe::actors
