#pragma once
// The HTTP API's requests that act on every node of a cluster: `/api/disconnect` closes the
// user's connections on each node and counts them all. The request goes out on the control
// channel (cluster_hub::broadcast_control); each node closes its own connections and answers
// on the asking node's reply channel; the answer is complete when every node that received
// the request has answered, or after 5 s with the nodes that did (the contract's bound).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "actors/cluster_hub.hpp"
#include "actors/room_requests.hpp"

namespace troupe::transport {

class session_registry;

class cluster_control {
public:
  static constexpr std::chrono::seconds answer_bound{5};

  /// Registers itself as the hub's control handler: call before hub.start().
  cluster_control(actors::cluster_hub& hub, session_registry& sessions,
                  const boost::asio::any_io_executor& executor);
  ~cluster_control();

  /// The user_closer of room_requests for a cluster.
  actors::room_requests::user_closer closer();

private:
  class impl;
  std::shared_ptr<impl> impl_;
};

} // namespace troupe::transport
