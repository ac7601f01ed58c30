#pragma once
// Where actors put frames for one peer. The transport implements it; actors never see a
// socket.

#include "protocol/frame.hpp"

namespace troupe::actors {

class frame_sink {
public:
  virtual ~frame_sink() = default;

  /// Queues `frame` for the peer, after everything queued before it. Safe from any thread;
  /// cheap enough to call once per delivery. A peer that is gone, or being cut for not
  /// reading, drops it.
  virtual void send(protocol::frame_ptr frame) = 0;

  /// The room's state this peer holds was lost (a cluster's Redis came back without its
  /// data): the transport sends `disconnect` 4500 and closes, and the client resubscribes
  /// and is told `recovered:false`. Safe from any thread. A peer with no connection (an HTTP
  /// call) ignores it.
  virtual void reset(std::string_view /*reason*/) {}
};

} // namespace troupe::actors
