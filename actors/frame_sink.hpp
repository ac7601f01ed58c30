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
};

} // namespace troupe::actors
