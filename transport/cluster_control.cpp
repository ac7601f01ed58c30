#include "transport/cluster_control.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <msgpack.hpp>

#include <iostream>
#include <unordered_map>

#include "transport/server_context.hpp"

namespace troupe::transport {

namespace net = boost::asio;

namespace {

constexpr std::string_view disconnect_kind = "disconnect";
constexpr std::string_view closed_kind = "closed";

template <class... Fields>
std::string pack(const Fields&... fields) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, std::make_tuple(fields...));
  return {buffer.data(), buffer.size()};
}

} // namespace

class cluster_control::impl : public std::enable_shared_from_this<impl> {
public:
  impl(actors::cluster_hub& hub, session_registry& sessions, const net::any_io_executor& executor)
      : hub_(hub), sessions_(sessions), strand_(net::make_strand(executor)) {}

  void control(std::string_view kind, std::string_view body) {
    try {
      auto handle = msgpack::unpack(body.data(), body.size());
      if (kind == disconnect_kind) {
        // [request id, asking node, user, code, reason, reconnect]
        auto [id, origin, user, code, reason, reconnect] =
            handle.get()
                .as<std::tuple<std::uint64_t, std::string, std::string, std::uint16_t, std::string,
                               bool>>();
        const std::size_t closed = sessions_.close_user(user, code, reason, reconnect);
        hub_.reply_control(origin, closed_kind, pack(id, static_cast<std::uint64_t>(closed)));
      } else if (kind == closed_kind) {
        auto [id, closed] = handle.get().as<std::tuple<std::uint64_t, std::uint64_t>>();
        net::post(strand_, [self = shared_from_this(), id = id, closed = closed] {
          self->answered(id, closed);
        });
      }
    } catch (const std::exception& e) {
      std::cerr << "troupe: cluster: a " << kind << " request was not understood: " << e.what()
                << std::endl;
    }
  }

  void disconnect(const std::string& user, std::uint16_t code, const std::string& reason,
                  bool reconnect, actors::room_requests::callback<actors::disconnected> done) {
    net::post(strand_, [self = shared_from_this(), user, code, reason, reconnect,
                        done = std::move(done)]() mutable {
      const std::uint64_t id = ++self->next_id_;
      auto& request = self->pending_[id];
      request.done = std::move(done);
      request.timer = std::make_unique<net::steady_timer>(self->strand_, answer_bound);
      request.timer->async_wait([weak = self->weak_from_this(), id](boost::system::error_code ec) {
        if (ec) return;
        if (auto me = weak.lock()) me->finish(id); // the nodes that answered in time
      });
      self->hub_.broadcast_control(
          disconnect_kind, pack(id, self->hub_.incarnation(), user, code, reason, reconnect),
          [weak = self->weak_from_this(), id](std::error_code ec, std::size_t receivers) {
            auto me = weak.lock();
            if (!me) return;
            net::post(me->strand_, [me, id, ec, receivers] { me->published(id, ec, receivers); });
          });
    });
  }

private:
  struct request {
    actors::room_requests::callback<actors::disconnected> done;
    std::unique_ptr<net::steady_timer> timer;
    std::size_t expected = 0; ///< nodes that received it; 0 until PUBLISH answered
    bool counted = false;
    std::size_t answered = 0;
    std::size_t closed = 0;
  };

  void published(std::uint64_t id, std::error_code ec, std::size_t receivers) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    if (ec) {
      auto done = std::move(it->second.done);
      pending_.erase(it);
      return done(actors::request_error{"unavailable", "Redis is unreachable: " + ec.message()});
    }
    it->second.expected = receivers;
    it->second.counted = true;
    if (it->second.answered >= receivers) finish(id);
  }

  void answered(std::uint64_t id, std::uint64_t closed) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return; // answered after the bound: not counted
    ++it->second.answered;
    it->second.closed += closed;
    if (it->second.counted && it->second.answered >= it->second.expected) finish(id);
  }

  void finish(std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    auto request = std::move(it->second);
    pending_.erase(it);
    request.timer->cancel();
    request.done(actors::disconnected{request.closed});
  }

  actors::cluster_hub& hub_;
  session_registry& sessions_;
  net::strand<net::any_io_executor> strand_;
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, request> pending_;
};

cluster_control::cluster_control(actors::cluster_hub& hub, session_registry& sessions,
                                 const net::any_io_executor& executor)
    : impl_(std::make_shared<impl>(hub, sessions, executor)) {
  hub.on_control([weak = std::weak_ptr<impl>(impl_)](std::string_view kind, std::string_view body) {
    if (auto self = weak.lock()) self->control(kind, body);
  });
}

cluster_control::~cluster_control() = default;

actors::room_requests::user_closer cluster_control::closer() {
  return
      [impl = impl_](const std::string& user, std::uint16_t code, const std::string& reason,
                     bool reconnect, actors::room_requests::callback<actors::disconnected> done) {
        impl->disconnect(user, code, reason, reconnect, std::move(done));
      };
}

} // namespace troupe::transport
