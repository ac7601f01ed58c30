#pragma once
// What the command connection and the subscriber share (internal): one hiredis context at a
// time on a strand, resolved and connected asynchronously, AUTH and SELECT, the connect
// timeout, and reconnection with exponential backoff and jitter after any failure.
//
// Everything here runs on the strand. The context is freed only by this class (outside any
// hiredis callback) or by hiredis itself (EOF, an I/O error); either way the derived class
// hears it once through on_link_lost, after hiredis has already given every pending callback
// its NULL reply. Async handlers hold shared_from_this(), so the object outlives them.

#include <utility> // before Boost 1.74's Asio
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "cluster/redis_types.hpp"
#include "cluster/redis_url.hpp"

struct redisAsyncContext;

namespace troupe::cluster::detail {

class redis_link : public std::enable_shared_from_this<redis_link> {
public:
  using strand_type = boost::asio::strand<boost::asio::any_io_executor>;

  redis_link(const boost::asio::any_io_executor& executor, redis_url url, redis_options options,
             bool select_db);
  virtual ~redis_link();
  redis_link(const redis_link&) = delete;
  redis_link& operator=(const redis_link&) = delete;

  const strand_type& strand() const noexcept { return strand_; }

protected:
  /// Starts the first connection attempt.
  void start_link();
  /// Frees the context and stops reconnecting; on_link_lost is not called.
  void stop_link();
  /// The link is unusable (a timeout, a refused handshake): free it, reconnect later.
  void break_link(std::string reason);
  /// The derived handshake is done: the connect timeout stops and the backoff resets.
  void link_ready();

  /// The context once connected and authenticated; null while there is no link.
  redisAsyncContext* context() const noexcept { return open_ ? ac_ : nullptr; }
  bool stopped() const noexcept { return stopped_; }

  /// TCP up, AUTH and SELECT accepted, PING answered: run the derived handshake, then call
  /// link_ready().
  virtual void on_link_open() = 0;
  /// The context is gone (or an attempt failed). `report` is true on a transition to down (the
  /// first failure after being up or since the start), false on a repeated failed attempt.
  virtual void on_link_lost(std::string_view reason, bool report) = 0;

  strand_type strand_;
  const redis_url url_;
  const redis_options options_;

private:
  void connect();
  void resolved(const boost::system::error_code& ec,
                const boost::asio::ip::tcp::resolver::results_type& results);
  void handshake();
  void lost(std::string reason);
  void schedule_reconnect();

  static void connect_callback(const redisAsyncContext* ac, int status);
  static void disconnect_callback(const redisAsyncContext* ac, int status);
  static void handshake_callback(redisAsyncContext* ac, void* reply, void* privdata);

  const bool select_db_;
  redisAsyncContext* ac_ = nullptr; // the current context, connecting or connected
  bool active_ = false;             // an attempt or a link is under way (not waiting to retry)
  bool open_ = false;               // AUTH/SELECT done (on_link_open called)
  bool ready_ = false;              // link_ready() called for this link
  bool stopped_ = true;
  bool reported_down_ = false; // a down was reported and no link_ready() since
  int handshake_replies_ = 0;  // AUTH/SELECT/PING replies still expected
  std::uint64_t attempt_ = 0;  // bumped by every connect(): stale handlers ignore themselves
  unsigned failures_ = 0;      // consecutive failed attempts: the backoff exponent
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer reconnect_timer_;
  std::minstd_rand random_;
};

} // namespace troupe::cluster::detail
