#include "actors/cluster_hub.hpp"

#include <boost/asio/steady_timer.hpp>
#include <caf/all.hpp>

#include <algorithm>
#include <iostream>
#include <random>
#include <unordered_map>

#include "cluster/node_script.hpp"
#include "core/history_log.hpp"

namespace troupe::actors {

namespace net = boost::asio;
using cluster::link_state;
using cluster::redis_subscriber;

class cluster_hub::impl : public std::enable_shared_from_this<impl> {
public:
  impl(const net::any_io_executor& executor, cluster_settings settings, std::string incarnation,
       cluster::redis_connection& commands, std::atomic<std::size_t>& live_nodes)
      : settings_(std::move(settings)), incarnation_(std::move(incarnation)), commands_(commands),
        subscriber_(executor, settings_.url, settings_.options), beat_timer_(commands.executor()),
        live_nodes_(live_nodes) {}

  void start() {
    auto weak = weak_from_this();
    commands_.on_state([weak](link_state state, std::string_view reason) {
      if (auto self = weak.lock()) self->commands_changed(state, reason);
    });
    subscriber_.on_message([weak](std::string_view channel, std::string_view payload) {
      if (auto self = weak.lock()) self->message(channel, payload);
    });
    subscriber_.on_event([weak](redis_subscriber::event e, std::string_view reason) {
      if (auto self = weak.lock()) self->subscriber_changed(e, reason);
    });
    subscriber_.subscribe(std::string(cluster::control_channel));
    subscriber_.subscribe(cluster::node_channel(incarnation_));
    commands_.start();
    subscriber_.start();
    net::post(commands_.executor(), [self = shared_from_this()] { self->beat(); });
  }

  void close() {
    net::post(commands_.executor(), [self = shared_from_this()] {
      self->closed_ = true;
      self->beat_timer_.cancel();
    });
    subscriber_.close();
  }

  bool up() const noexcept { return commands_up_.load() && subscriber_up_.load(); }

  std::string down_reason() const {
    std::lock_guard lock(mutex_);
    return down_reason_;
  }

  void subscribe(const std::string& channel, const caf::actor& to,
                 std::function<void(std::error_code)> done) {
    {
      std::lock_guard lock(mutex_);
      routes_[channel].push_back(to);
    }
    subscriber_.subscribe(channel, [to, done = std::move(done)](std::error_code ec) {
      if (done) caf::anon_send(to, redis_continuation{[done, ec] { done(ec); }});
    });
  }

  void unsubscribe(const std::string& channel, const caf::actor& to) {
    {
      std::lock_guard lock(mutex_);
      auto it = routes_.find(channel);
      if (it == routes_.end()) return;
      auto& actors = it->second;
      auto found = std::find(actors.begin(), actors.end(), to);
      if (found == actors.end()) return;
      actors.erase(found);
      if (actors.empty()) routes_.erase(it);
    }
    subscriber_.unsubscribe(channel);
  }

  void on_dead_node(std::function<void(const std::string&)> handler) {
    dead_handler_ = std::move(handler);
  }
  void on_control(control_handler handler) { control_handler_ = std::move(handler); }

private:
  void commands_changed(link_state state, std::string_view reason) {
    commands_up_ = state == link_state::up;
    if (state == link_state::down) {
      set_reason("Redis command link down: " + std::string(reason));
      std::cerr << "troupe: cluster: Redis command link down: " << reason << std::endl;
    } else {
      std::cout << "troupe: cluster: Redis command link up (" << settings_.url.redacted() << ")"
                << std::endl;
      if (up()) set_reason({});
      beat(); // at once: the others learn of this node, and the count of nodes is fresh
    }
  }

  void subscriber_changed(redis_subscriber::event e, std::string_view reason) {
    subscriber_up_ = e != redis_subscriber::event::down;
    if (e == redis_subscriber::event::down) {
      set_reason("Redis pub/sub link down: " + std::string(reason));
      std::cerr << "troupe: cluster: Redis pub/sub link down: " << reason << std::endl;
    } else if (up()) {
      set_reason({});
    }
    std::vector<caf::actor> everyone;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [channel, actors] : routes_)
        everyone.insert(everyone.end(), actors.begin(), actors.end());
    }
    std::sort(everyone.begin(), everyone.end());
    everyone.erase(std::unique(everyone.begin(), everyone.end()), everyone.end());
    for (const auto& actor : everyone)
      caf::anon_send(actor, redis_link_event{e});
  }

  void message(std::string_view channel, std::string_view payload) {
    if (channel == cluster::control_channel || channel == cluster::node_channel(incarnation_)) {
      if (!control_handler_) return;
      try {
        const auto control = cluster::decode_control(payload);
        control_handler_(control.kind, control.body);
      } catch (const std::exception& e) {
        std::cerr << "troupe: cluster: a control message was not understood: " << e.what()
                  << std::endl;
      }
      return;
    }
    std::vector<caf::actor> to;
    {
      std::lock_guard lock(mutex_);
      auto it = routes_.find(std::string(channel));
      if (it == routes_.end()) return;
      to = it->second;
    }
    for (const auto& actor : to)
      caf::anon_send(actor, redis_pubsub{std::string(channel), std::string(payload)});
  }

  /// On the command link's strand.
  void beat() {
    if (closed_) return;
    beat_timer_.cancel();
    const auto call = cluster::heartbeat_call(
        incarnation_, static_cast<std::uint64_t>(settings_.node_timeout.count()));
    commands_.eval_script(cluster::heartbeat_script(), call.keys, call.args,
                          [self = shared_from_this()](std::error_code ec, cluster::redis_reply r) {
                            self->beaten(ec, r);
                          });
    beat_timer_.expires_after(settings_.heartbeat);
    beat_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->beat();
    });
  }

  void beaten(std::error_code ec, const cluster::redis_reply& reply) {
    if (ec) return; // the link is down: reported by its state
    try {
      auto result = cluster::decode_heartbeat(reply);
      live_nodes_ = std::max<std::size_t>(1, result.live);
      if (dead_handler_)
        for (const auto& dead : result.dead)
          if (dead != incarnation_) dead_handler_(dead);
    } catch (const std::exception& e) {
      std::cerr << "troupe: cluster: heartbeat: " << e.what() << std::endl;
    }
  }

  void set_reason(std::string reason) {
    std::lock_guard lock(mutex_);
    if (reason.empty() && !up()) return;
    down_reason_ = std::move(reason);
  }

  cluster_settings settings_;
  std::string incarnation_;
  cluster::redis_connection& commands_;
  redis_subscriber subscriber_;
  net::steady_timer beat_timer_; // on the command link's strand
  std::atomic<std::size_t>& live_nodes_;
  bool closed_ = false;

  std::atomic<bool> commands_up_{false};
  std::atomic<bool> subscriber_up_{false};
  mutable std::mutex mutex_;
  std::string down_reason_ = "Redis not connected yet";
  std::unordered_map<std::string, std::vector<caf::actor>> routes_;
  std::function<void(const std::string&)> dead_handler_;
  control_handler control_handler_;
};

cluster_hub::cluster_hub(const net::any_io_executor& executor, cluster_settings settings)
    : incarnation_(core::new_epoch()), commands_(std::make_unique<cluster::redis_connection>(
                                           executor, settings.url, settings.options)) {
  impl_ =
      std::make_shared<impl>(executor, std::move(settings), incarnation_, *commands_, live_nodes_);
}

cluster_hub::~cluster_hub() { close(); }

void cluster_hub::on_dead_node(std::function<void(const std::string&)> handler) {
  impl_->on_dead_node(std::move(handler));
}
void cluster_hub::on_control(control_handler handler) { impl_->on_control(std::move(handler)); }

void cluster_hub::start() { impl_->start(); }

void cluster_hub::close() {
  if (!impl_) return;
  // Leaves tr:nodes at once: the others stop waiting for this node's control answers.
  commands_->command({"ZREM", std::string(cluster::nodes_key), incarnation_},
                     [](std::error_code, cluster::redis_reply) {});
  impl_->close();
}

bool cluster_hub::up() const noexcept { return impl_->up(); }
std::string cluster_hub::down_reason() const { return impl_->down_reason(); }

void cluster_hub::command(const caf::actor& to, std::vector<std::string> argv, reply_handler then) {
  commands_->command(std::move(argv), [to, then = std::move(then)](std::error_code ec,
                                                                   cluster::redis_reply reply) {
    caf::anon_send(to, redis_continuation{[then, ec, reply = std::move(reply)]() mutable {
                     then(ec, std::move(reply));
                   }});
  });
}

void cluster_hub::eval(const caf::actor& to, const cluster::redis_script& script,
                       std::vector<std::string> keys, std::vector<std::string> args,
                       reply_handler then) {
  commands_->eval_script(
      script, std::move(keys), std::move(args),
      [to, then = std::move(then)](std::error_code ec, cluster::redis_reply reply) {
        caf::anon_send(to, redis_continuation{[then, ec, reply = std::move(reply)]() mutable {
                         then(ec, std::move(reply));
                       }});
      });
}

void cluster_hub::subscribe(const std::string& channel, const caf::actor& to,
                            std::function<void(std::error_code)> done) {
  impl_->subscribe(channel, to, std::move(done));
}

void cluster_hub::unsubscribe(const std::string& channel, const caf::actor& to) {
  impl_->unsubscribe(channel, to);
}

void cluster_hub::broadcast_control(std::string_view kind, std::string_view body,
                                    std::function<void(std::error_code, std::size_t)> done) {
  commands_->command(
      {"PUBLISH", std::string(cluster::control_channel), cluster::encode_control(kind, body)},
      [done = std::move(done)](std::error_code ec, cluster::redis_reply reply) {
        if (!ec && reply.is_error()) ec = make_error_code(cluster::redis_errc::link_lost);
        done(ec, reply.is_integer() ? static_cast<std::size_t>(reply.integer) : 0);
      });
}

std::string cluster_hub::reply_channel() const { return cluster::node_channel(incarnation_); }

void cluster_hub::reply_control(const std::string& incarnation, std::string_view kind,
                                std::string_view body) {
  commands_->command(
      {"PUBLISH", cluster::node_channel(incarnation), cluster::encode_control(kind, body)},
      [](std::error_code, cluster::redis_reply) {});
}

} // namespace troupe::actors
