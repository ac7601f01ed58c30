#pragma once
// One timer for every WebSocket's liveness, as uWebSockets sweeps its sockets' timeouts:
// each session keeps its next deadline (a ping to send, the silence bound, the connect
// deadline, the close handshake's bound) in an atomic, and the sweep posts the session's
// check to its strand once that deadline has passed. A pending timer per connection would
// cost every idle connection a timer and a wait operation (about 280 bytes).

#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>

#include "transport/server_context.hpp"

namespace troupe::transport {

class liveness_sweep {
public:
  /// Sweeps every tick: a quarter of the shortest liveness setting, between 50 ms and 1 s,
  /// so a deadline is kept within a quarter of its own length.
  liveness_sweep(net::io_context& io, server_context& context);

  void start();
  /// After the last session has gone: their close handshakes are bounded by the sweep.
  void stop();

  static std::chrono::milliseconds tick_for(const server_settings& settings);

private:
  void wait();

  net::steady_timer timer_; // on its own strand
  server_context& context_;
  const std::chrono::milliseconds tick_;
  bool stopped_ = false;
};

} // namespace troupe::transport
