#pragma once
// A cluster node's way to Redis, shared by every room actor of the engine (`--redis`): the
// command link, the pub/sub link, the node's incarnation and its heartbeat.
//
// Actors never get callbacks on another strand: what Redis answers comes back to the actor
// that asked as a `redis_continuation` message, run in its own handler, on its own strand.
// A room actor routes it with `[](redis_continuation& c) { c.run(); }`. If the actor has ended
// meanwhile, the answer is dropped with the message.
//
// Pub/sub: an actor subscribes to the channels of its room while it has local holders; the
// hub keeps one Redis subscription per channel and hands each message to the actors that
// asked for it (redis_pubsub), and each change of the pub/sub link to them all
// (redis_link_event): `down` means messages are being missed, `resubscribed` that every
// channel is live again and the gaps must be read back from the streams.
//
// Liveness: every node beats (cluster/scripts/heartbeat.lua) into `tr:nodes` with Redis's
// clock; each beat answers the incarnations that stopped beating, handed to on_dead_node
// (presence removes their entries). The control channel carries cluster-wide requests
// (`/api/disconnect` on every node).

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "cluster/redis_connection.hpp"
#include "cluster/redis_subscriber.hpp"
#include "cluster/redis_types.hpp"
#include "cluster/redis_url.hpp"

namespace troupe::actors {

/// An answer from Redis, to run in the actor that asked.
struct redis_continuation {
  std::function<void()> run;
};

/// A message on one of the channels the actor subscribed to.
struct redis_pubsub {
  std::string channel;
  std::string payload;
};

/// A change of the pub/sub link, to every actor with a subscription.
struct redis_link_event {
  cluster::redis_subscriber::event event;
};

struct cluster_settings {
  cluster::redis_url url;
  cluster::redis_options options;
  /// Beat interval, and how long a node may miss beats before the others count it dead.
  std::chrono::milliseconds heartbeat{2000};
  std::chrono::milliseconds node_timeout{6000};
};

class cluster_hub {
public:
  using reply_handler = std::function<void(std::error_code ec, cluster::redis_reply reply)>;
  /// A cluster-wide request from any node (the originating one included): `kind` and its
  /// MessagePack `body`.
  using control_handler = std::function<void(std::string_view kind, std::string_view body)>;

  /// `executor`: the engine's I/O; the links make strands of it.
  cluster_hub(const boost::asio::any_io_executor& executor, cluster_settings settings);
  ~cluster_hub();
  cluster_hub(const cluster_hub&) = delete;
  cluster_hub& operator=(const cluster_hub&) = delete;

  /// Set before start(): incarnations whose beats stopped (each may be reported by several
  /// nodes, and again until it is swept: the handler must be idempotent). On the hub's strand.
  void on_dead_node(std::function<void(const std::string& incarnation)> handler);
  /// Set before start(): the control channel's messages. On the subscriber's strand.
  void on_control(control_handler handler);

  /// Connects both links and starts beating.
  void start();
  /// Stops beating (and removes this node from `tr:nodes`, best effort) and closes the links.
  void close();

  /// New at every start of the engine: tags this node's presence entries.
  const std::string& incarnation() const noexcept { return incarnation_; }

  /// Both links are up (a hint for health; each command's result is the answer).
  bool up() const noexcept;
  /// Why not, for /health: empty while up.
  std::string down_reason() const;

  // Commands, answered to `to` as a redis_continuation running `then`. Any thread.
  void command(const caf::actor& to, std::vector<std::string> argv, reply_handler then);
  void eval(const caf::actor& to, const cluster::redis_script& script,
            std::vector<std::string> keys, std::vector<std::string> args, reply_handler then);
  /// The same, for callers that are not actors (the HTTP API's cluster-wide requests):
  /// `then` runs on the command link's strand.
  cluster::redis_connection& commands() noexcept { return *commands_; }

  /// Subscribes `to` to `channel` (redis_pubsub and redis_link_event follow); `done`, if
  /// given, runs in `to` once Redis confirmed it (empty error) or failed to. Any thread.
  void subscribe(const std::string& channel, const caf::actor& to,
                 std::function<void(std::error_code)> done = {});
  /// Any thread; pairs with subscribe().
  void unsubscribe(const std::string& channel, const caf::actor& to);

  /// Publishes a control request to every node (this one included); `done` on the command
  /// link's strand with the number of nodes that received it, or an error.
  void broadcast_control(std::string_view kind, std::string_view body,
                         std::function<void(std::error_code, std::size_t receivers)> done);
  /// The channel a node's answers to its control requests arrive on (subscribed by the
  /// hub): `tr:node:<incarnation>`; its messages go to the control handler as well.
  std::string reply_channel() const;
  /// Publishes to another node's reply channel. Any thread.
  void reply_control(const std::string& incarnation, std::string_view kind, std::string_view body);

  /// How many nodes beat within node_timeout, by the last beat (this one included).
  std::size_t live_nodes() const noexcept { return live_nodes_.load(); }

private:
  class impl;
  std::shared_ptr<impl> impl_;
  std::string incarnation_;
  std::unique_ptr<cluster::redis_connection> commands_;
  std::atomic<std::size_t> live_nodes_{1};
};

} // namespace troupe::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::redis_continuation)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::redis_pubsub)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::redis_link_event)
