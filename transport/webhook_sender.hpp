#pragma once
// Webhooks (`--backend`): the events rooms emit, queued (core/webhook_queue) and POSTed to
// `URL/events` as `{events: [...]}` in batches, retried with backoff. emit() is the
// backend's event sink: O(1) under a short lock, never blocking on the network, so a slow
// or dead backend costs memory up to the queue's bound and nothing else. The timers and
// the replies run on one strand.

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>

#include "actors/backend.hpp"
#include "core/metrics.hpp"
#include "core/webhook_queue.hpp"

namespace troupe::transport {

class webhook_sender : public std::enable_shared_from_this<webhook_sender> {
public:
  using reply_handler = std::function<void(int status, std::string body, std::error_code ec)>;
  /// POSTs a JSON body to the backend's `path`; `done` runs once, on any thread, within the
  /// backend timeout (backend_client::post).
  using post_fn = std::function<void(std::string path, std::string body, reply_handler done)>;

  /// `executor`: a strand is made on it for the timers and replies.
  webhook_sender(boost::asio::any_io_executor executor, core::webhook_queue_settings settings,
                 post_fn post, core::metrics& metrics);

  /// Queues an event. Any thread.
  void emit(actors::backend_event event);

  /// Sends nothing more (the engine is stopping); what is queued is lost.
  void stop();

private:
  void pump(); // on the strand: send a due batch, or wait for the next
  void send(std::vector<core::webhook_event> batch);
  void replied(bool ok, const std::string& why);
  void publish_metrics();                           // under mutex_
  void note_drop(std::uint64_t n, const char* why); // under mutex_: counted, logged rate-limited

  boost::asio::any_io_executor strand_;
  boost::asio::steady_timer timer_;
  post_fn post_;
  core::metrics& metrics_;
  const std::size_t batch_max_;
  std::mutex mutex_;
  core::webhook_queue queue_; // under mutex_
  bool wake_posted_ = false;  // under mutex_: a pump() is on its way
  bool stopped_ = false;      // under mutex_
  std::uint64_t drops_unlogged_ = 0;
  core::webhook_queue::time_point last_drop_log_{};
};

} // namespace troupe::transport
