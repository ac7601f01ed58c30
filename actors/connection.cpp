#include "actors/connection.hpp"

#include <boost/asio/post.hpp>
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <tuple>

#include "core/metrics.hpp"
#include "core/token.hpp"

namespace troupe::actors {

namespace {
template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

/// The contract's bound on one connection's backend calls in flight.
constexpr std::size_t max_rpcs_in_flight = 16;

/// The id to answer a decoded map with; 0 (no id) for typing and unreadable maps.
protocol::request_id id_of(const protocol::decoded& item) {
  return std::visit(overloaded{
                        [](const protocol::request& request) {
                          return std::visit(
                              [](const auto& r) -> protocol::request_id {
                                if constexpr (requires { r.id; })
                                  return r.id;
                                else
                                  return 0;
                              },
                              request);
                        },
                        [](const protocol::decode_error& error) { return error.id; },
                    },
                    item);
}
} // namespace

template <class Message, class Request>
void connection::forward(Request& request, caf::actor room_handles::*to) {
  const std::string name = request.room; // the action below takes `request` apart
  with_room(name, [this, name, to,
                   message = Message{me(), std::move(request)}](const room_handles& room) mutable {
    caf::anon_send(room.*to, std::move(message));
    // A one-off request (pub, history, …) on a room the connection does not hold: let it
    // go, or a connection touching many rooms would keep them all alive.
    release_if_unused(name);
  });
}

connection::connection(const connection_services& services, actors::peer& peer, sink_ptr sink)
    : services_(services), peer_(peer), sink_(std::move(sink)), budget_(services.rate) {}

template <class Handler>
auto connection::on_strand(Handler handler) {
  if (!alive_) alive_ = std::make_shared<connection*>(this);
  return [alive = alive_, strand = peer_.executor(), handler = std::move(handler)](auto&&... args) {
    boost::asio::post(strand,
                      [alive, handler, args = std::make_tuple(std::move(args)...)]() mutable {
                        if (auto* self = *alive)
                          std::apply([&](auto&... a) { handler(*self, a...); }, args);
                      });
  };
}

connection::~connection() {
  flush_ops(); // the `op`s of a read that also carried the end reach their document first
  if (alive_) *alive_ = nullptr; // on the strand, like everything posted back
  for (auto& [name, link] : rooms_) {
    if (link.subscribed && link.actors.log)
      caf::anon_send(link.actors.log, room_leave{client_, !clean_close_});
    if (link.opened && link.actors.document)
      caf::anon_send(link.actors.document, room_leave{client_, !clean_close_});
    // Also for an acquire still on its way: the directory answers it first, then counts
    // this release (both come from this thread, in order), so the hold is never leaked.
    caf::anon_send(services_.directory, release_atom::value, name);
  }
}

void connection::on_frame(std::string_view payload) {
  // Shared by every connection on this thread (handling never nests): an idle connection
  // keeps no decode buffer.
  thread_local std::vector<protocol::decoded> decoded;
  decoded.clear();
  protocol::decode_frame(payload, services_.limits, decoded);
  const auto now = budget_.enabled() ? core::rate_limiter::clock::now()
                                     : core::rate_limiter::clock::time_point{};
  for (auto& item : decoded) {
    if (closing_) break;
    if (!connected_) {
      auto* request = std::get_if<protocol::request>(&item);
      if (!request || !std::holds_alternative<protocol::connect_request>(*request)) {
        closing_ = true;
        peer_.close(4401, "the first message must be a valid connect", false);
        break;
      }
    }
    // Every map costs one token, whatever it is: a request over budget is not carried out.
    if (const auto verdict = budget_.take(now); verdict != core::rate_limiter::verdict::allowed) {
      fail(id_of(item), protocol::error_code::rate_limited, "over the request budget");
      if (verdict == core::rate_limiter::verdict::abusive) {
        flush_ops();
        close_now(4429, "rate limit abuse");
        break;
      }
      continue;
    }
    // Operations wait in pending_ops_ until something else comes, so everything reaches
    // each actor in the order the client sent it.
    auto* request = std::get_if<protocol::request>(&item);
    if (!request || !std::holds_alternative<protocol::op_request>(*request)) flush_ops();
    std::visit(
        overloaded{
            [this](protocol::request& request) {
              std::visit([this](auto& r) { handle(r); }, request);
            },
            [this](protocol::decode_error& error) { fail(error.id, error.code, error.reason); },
        },
        item);
  }
  if (!in_read_ || closing_) flush_ops();
  if (!replies_.empty()) sink_->send(replies_.finish());
  // A frame of many maps (a flood) must not pin its peak in the thread's vector.
  if (decoded.capacity() > 1024)
    std::vector<protocol::decoded>().swap(decoded);
  else
    decoded.clear();
}

void connection::end_read() {
  in_read_ = false;
  flush_ops();
  // What the flush answered itself (a stalled store refuses the operations).
  if (!replies_.empty()) sink_->send(replies_.finish());
}

void connection::fail(protocol::request_id id, protocol::error_code code, std::string_view reason) {
  auto& metrics = *services_.metrics;
  core::metrics::add(metrics.bad_requests);
  if (code == protocol::error_code::forbidden)
    core::metrics::add(metrics.forbidden);
  else if (code == protocol::error_code::rate_limited)
    core::metrics::add(metrics.rate_limited);
  protocol::encode_error(replies_, id, code, reason);
}

void connection::close_now(std::uint16_t code, std::string_view reason) {
  // The disconnect frame goes out after what was queued before it: the answers first.
  if (!replies_.empty()) sink_->send(replies_.finish());
  closing_ = true;
  peer_.close(code, reason, false);
}

bool connection::allowed(protocol::request_id id, const std::string& room, bool write) {
  if (write ? access_.may_write(room) : access_.may_read(room)) return true;
  // The same answer whether the room exists or not, before anything reaches it.
  fail(id, protocol::error_code::forbidden, "not allowed in this room");
  return false;
}

bool connection::room_available(protocol::request_id id, const std::string& room) {
  if (services_.max_rooms == 0) return true;
  auto holds = [](const auto& entry) { return entry.second.subscribed || entry.second.opened; };
  if (auto it = rooms_.find(room); it != rooms_.end() && holds(*it)) return true;
  if (static_cast<std::size_t>(std::count_if(rooms_.begin(), rooms_.end(), holds)) <
      services_.max_rooms)
    return true;
  fail(id, protocol::error_code::too_large,
       "too many rooms on this connection (at most " + std::to_string(services_.max_rooms) + ")");
  return false;
}

void connection::expire_at(std::int64_t exp) {
  using namespace std::chrono;
  const auto left = system_clock::time_point(seconds(exp)) - system_clock::now();
  expiry_ = std::make_unique<boost::asio::steady_timer>(peer_.executor());
  expiry_->expires_after(std::max(duration_cast<milliseconds>(left), milliseconds(0)));
  expiry_->async_wait(on_strand([](connection& self, boost::system::error_code ec) {
    if (!ec && !self.closing_) self.close_now(4403, "token expired");
  }));
}

void connection::handle(protocol::connect_request& request) {
  if (connected_) return fail(request.id, protocol::error_code::bad_request, "already connected");
  client_ = services_.node_id + "-" + std::to_string(services_.next_client->fetch_add(1));
  if (!services_.secret.empty()) {
    // Only the verified token counts: `user` and `name` fields are ignored.
    auto result = request.token ? core::verify_token(*request.token, services_.secret,
                                                     core::token_clock_now())
                                : core::token_result{std::nullopt, "a token is required"};
    if (!result) {
      fail(request.id, protocol::error_code::unauthorized, result.error);
      return close_now(4403, "token refused");
    }
    user_ = std::move(result.claims->user);
    name_ = std::move(result.claims->name);
    info_ = std::move(result.claims->info);
    access_ = std::move(result.claims->access);
    if (result.claims->expires) expire_at(*result.claims->expires);
  } else {
    // Open mode: the client may name itself, else an unverified token names it, else it
    // gets a generated id. Every room is open.
    std::optional<core::token_claims> claims;
    if (request.token) claims = core::read_token_unverified(*request.token).claims;
    if (request.user && !request.user->empty())
      user_ = *request.user;
    else
      user_ = claims ? claims->user : "anon-" + client_;
    if (request.name)
      name_ = *request.name;
    else if (claims)
      name_ = claims->name;
    if (claims) info_ = std::move(claims->info);
    access_ = core::room_access::everything();
  }
  access_.set_user(user_);
  connected_ = true;
  if (services_.on_connected)
    services_.on_connected(peer_, user_); // so the HTTP API can disconnect a user
  protocol::encode_connected(replies_, request.id, client_, user_, services_.ping_seconds);
}

void connection::handle(protocol::sub_request& request) {
  if (!allowed(request.id, request.room, false) || !room_available(request.id, request.room))
    return;
  rooms_[request.room].subscribed = true;
  forward<room_sub>(request, &room_handles::log);
}

void connection::handle(protocol::unsub_request& request) {
  auto it = rooms_.find(request.room);
  if (it == rooms_.end() || !it->second.subscribed)
    return fail(request.id, protocol::error_code::not_subscribed, "not subscribed to this room");
  it->second.subscribed = false;
  const std::string name = request.room;
  with_room(name, [this, name,
                   unsub = room_unsub{me(), std::move(request)}](const room_handles& room) mutable {
    caf::anon_send(room.log, std::move(unsub));
    release_if_unused(name);
  });
}

void connection::release_if_unused(const std::string& name) {
  auto it = rooms_.find(name);
  if (it != rooms_.end() && !it->second.subscribed && !it->second.opened &&
      it->second.waiting.empty()) {
    caf::anon_send(services_.directory, release_atom::value, name);
    rooms_.erase(it);
  }
}

void connection::handle(protocol::pub_request& request) {
  if (!allowed(request.id, request.room, true)) return;
  forward<room_pub>(request, &room_handles::log);
}

void connection::handle(protocol::history_request& request) {
  if (!allowed(request.id, request.room, false)) return;
  forward<room_history>(request, &room_handles::log);
}

void connection::handle(protocol::ping_request& request) {
  protocol::encode_pong(replies_, request.id);
}

void connection::handle(protocol::rpc_request& request) {
  auto* backend = services_.app_backend;
  if (!backend)
    return fail(request.id, protocol::error_code::not_found,
                "no backend: the engine runs without --backend");
  if (rpcs_in_flight_ >= max_rpcs_in_flight)
    return fail(request.id, protocol::error_code::rate_limited,
                "at most 16 RPCs in flight per connection");
  ++rpcs_in_flight_;
  // The call runs on the backend's own strand: nothing here waits for it, and its outcome
  // is dropped if the connection has gone by then.
  backend->rpc(client_, user_, std::move(request.method), std::move(request.data),
               on_strand([id = request.id](connection& self, rpc_outcome& outcome) {
                 self.on_rpc_done(id, outcome);
               }));
}

void connection::on_rpc_done(protocol::request_id id, rpc_outcome& outcome) {
  --rpcs_in_flight_;
  if (closing_) return;
  if (outcome.error)
    fail(id, *outcome.error, outcome.reason);
  else
    protocol::encode_result(replies_, id, outcome.data);
  sink_->send(replies_.finish()); // outside on_frame: nothing else is in replies_
}

void connection::handle(protocol::presence_request& request) {
  if (!allowed(request.id, request.room, false)) return;
  forward<presence_get>(request, &room_handles::presence);
}

void connection::handle(protocol::pset_request& request) {
  if (!allowed(request.id, request.room, true)) return;
  forward<presence_set>(request, &room_handles::presence);
}

void connection::handle(protocol::typing_request& request) {
  if (core::is_user_room(request.room)) return; // no one types into an inbox: dropped
  if (!allowed(0, request.room, true))          // typing has no id: the error carries none
    return;
  forward<presence_typing>(request, &room_handles::presence);
}

void connection::handle(protocol::open_request& request) {
  if (!allowed(request.id, request.room, false) || !room_available(request.id, request.room))
    return;
  rooms_[request.room].opened = true;
  forward<doc_open>(request, &room_handles::document);
}

void connection::handle(protocol::op_request& request) {
  if (!allowed(request.id, request.room, true)) return;
  if (!pending_ops_.empty() && pending_ops_.front().room != request.room) flush_ops();
  pending_ops_.push_back(std::move(request));
}

void connection::flush_ops() {
  if (pending_ops_.empty()) return;
  // A commit has run past --store-stall (a stalled disk): the operations are refused before
  // the document applies them, so nothing is lost; the client resubmits with the same key.
  if (const auto why = services_.metrics->commits.refuse_write(pending_ops_.size()); !why.empty()) {
    for (const auto& op : pending_ops_)
      fail(op.id, protocol::error_code::unavailable, why);
    pending_ops_.clear();
    return;
  }
  const std::string name = pending_ops_.front().room;
  with_room(name, [this, name, message = doc_op{me(), std::move(pending_ops_)}](
                      const room_handles& room) mutable {
    caf::anon_send(room.document, std::move(message));
    release_if_unused(name);
  });
  pending_ops_.clear();
}

void connection::handle(protocol::close_request& request) {
  auto it = rooms_.find(request.room);
  if (it == rooms_.end() || !it->second.opened)
    return fail(request.id, protocol::error_code::not_subscribed, "the document is not open");
  it->second.opened = false;
  const std::string name = request.room;
  with_room(name, [this, name,
                   close = doc_close{me(), std::move(request)}](const room_handles& room) mutable {
    caf::anon_send(room.document, std::move(close));
    release_if_unused(name);
  });
}

void connection::with_room(const std::string& name, room_action action) {
  auto& link = rooms_[name];
  if (link.actors.log) {
    action(link.actors);
    return;
  }
  link.waiting.push_back(std::move(action));
  if (link.waiting.size() == 1)
    caf::anon_send(
        services_.directory, acquire_atom::value, name,
        room_reply{on_strand([](connection& self, const std::string& name,
                                const room_handles& actors) { self.on_acquired(name, actors); })});
}

void connection::on_acquired(const std::string& name, const room_handles& actors) {
  auto it = rooms_.find(name);
  if (it == rooms_.end()) {
    caf::anon_send(services_.directory, release_atom::value, name);
    return;
  }
  it->second.actors = actors;
  // One at a time from the front: an action may erase the link (unsub), and later ones
  // must see that the link still has work waiting.
  while ((it = rooms_.find(name)) != rooms_.end() && !it->second.waiting.empty()) {
    auto action = std::move(it->second.waiting.front());
    it->second.waiting.erase(it->second.waiting.begin());
    action(actors);
  }
  // An idle member keeps no empty queue's buffer.
  if (it != rooms_.end()) std::vector<room_action>().swap(it->second.waiting);
}

} // namespace troupe::actors
