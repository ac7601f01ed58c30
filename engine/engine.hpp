#pragma once
// The engine process: Asio threads for sockets and the hot actors, a small CAF actor
// system for mailboxes and timers, the store (and, when it is durable, a thread for the
// storage actor, whose commits wait for the disk), the directory of rooms, and the listener.

#include <utility>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "store/store.hpp"
#include "core/metrics.hpp"
#include "engine/memory_trimmer.hpp"
#include "engine/options.hpp"
#include "actors/cluster_hub.hpp"
#include "transport/cluster_control.hpp"
#include "transport/server_context.hpp"

#include <caf/actor.hpp>

namespace caf {
class actor_system;
class actor_system_config;
} // namespace caf
namespace troupe::transport {
class listener;
class backend_client;
class liveness_sweep;
class webhook_sender;
} // namespace troupe::transport

namespace troupe::engine {

class engine {
public:
  explicit engine(const options& options);
  ~engine();

  /// Binds the port and starts serving; returns the port actually bound.
  std::uint16_t start();

  /// Serves until SIGINT or SIGTERM, then shuts down: stops accepting, tells every client
  /// `disconnect` 4503, lets rooms hand their state to the store, and returns.
  void run_until_signal();

private:
  void shutdown();

  options options_;
  boost::asio::io_context io_; // outlives everything that posts to it
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::signal_set signals_; // from construction on: a signal during start-up is not fatal
  core::metrics metrics_;
  memory_trimmer trimmer_{io_, metrics_}; ///< malloc_trim after bursts
  std::unique_ptr<store::room_store> store_;
  boost::asio::io_context storage_io_{1}; // the storage actor's thread: commits block
  std::thread storage_thread_;
  std::atomic<std::uint64_t> next_client_{1};
  std::unique_ptr<caf::actor_system_config> caf_config_;
  std::unique_ptr<caf::actor_system> caf_;
  transport::server_context context_;
  caf::actor storage_;
  std::unique_ptr<actors::cluster_hub> cluster_;                ///< --redis
  std::unique_ptr<transport::cluster_control> cluster_control_; ///< --redis
  std::shared_ptr<transport::listener> listener_;
  std::unique_ptr<transport::liveness_sweep> liveness_; ///< every session's pings and deadlines
  std::shared_ptr<transport::backend_client> backend_;  ///< --backend
  std::shared_ptr<transport::webhook_sender> webhooks_; ///< --backend: the event queue
  std::vector<std::thread> threads_;
};

} // namespace troupe::engine
