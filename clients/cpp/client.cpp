#include "clients/cpp/client.hpp"

#include <mutex>

#include <boost/asio/post.hpp>

#include "clients/cpp/decode.hpp"
#include "clients/cpp/session.hpp"

namespace troupe::client {

namespace net = boost::asio;

// User callbacks run under this lock, and not at all once the Client is destroyed.
// Recursive: a callback may destroy its own Client.
struct Client::Guard {
  std::recursive_mutex m;
  bool alive = true;
};

template <class... A>
std::function<void(A...)> Client::guarded(std::function<void(A...)> fn) const {
  if (!fn) return {};
  return [g = guard_, fn = std::move(fn)](A... a) {
    std::lock_guard<std::recursive_mutex> lock(g->m);
    if (g->alive) fn(std::forward<A>(a)...);
  };
}

template <class F>
void Client::post(F&& f) {
  net::post(s_->strand(), std::forward<F>(f));
}

Client::Client(net::any_io_executor ex, Options opts)
    : s_(std::make_shared<Session>(std::move(ex), std::move(opts))), guard_(std::make_shared<Guard>()) {}

Client::~Client() {
  {
    std::lock_guard<std::recursive_mutex> lock(guard_->m);
    guard_->alive = false;
  }
  post([s = s_] {
    s->clear_handlers();
    s->close();
  });
}

void Client::start() {
  post([s = s_] { s->start(); });
}

void Client::close() {
  post([s = s_] { s->close(); });
}

void Client::subscribe(std::string room, RoomHandlers h, std::function<void(Result<SubscribedEvent>)> done) {
  RoomHandlers g;
  g.on_message = guarded(std::move(h.on_message));
  g.on_subscribed = guarded(std::move(h.on_subscribed));
  g.on_error = guarded(std::move(h.on_error));
  g.on_presence = guarded(std::move(h.on_presence));
  g.on_typing = guarded(std::move(h.on_typing));
  post([s = s_, room = std::move(room), g = std::move(g), done = guarded(std::move(done))]() mutable {
    s->subscribe(std::move(room), std::move(g), std::move(done));
  });
}

void Client::unsubscribe(std::string room, std::function<void(Result<Done>)> done) {
  post([s = s_, room = std::move(room), done = guarded(std::move(done))]() mutable {
    s->unsubscribe(std::move(room), std::move(done));
  });
}

namespace {
std::function<void(Result<Reply>)> as_ack(std::function<void(Result<Ack>)> done) {
  if (!done) return [](Result<Reply>) {};
  return [done = std::move(done)](Result<Reply> r) {
    if (!r.ok()) return done(r.error());
    auto ack = parse_ack(r.value());
    if (!ack) return done(Error{errc::protocol, "malformed ack"});
    done(std::move(*ack));
  };
}
}  // namespace

void Client::publish(std::string room, const Value& data, std::function<void(Result<Ack>)> done) {
  const auto id = s_->new_id();
  MapWriter w("pub");
  w.u64("id", id).str("room", room).value("data", data);
  post([s = s_, id, f = w.finish(), h = as_ack(guarded(std::move(done)))]() mutable {
    s->send_request(id, std::move(f), std::move(h), false);
  });
}

void Client::publish(std::string room, const Value& data, std::string key,
                     std::function<void(Result<Ack>)> done) {
  const auto id = s_->new_id();
  MapWriter w("pub");
  w.u64("id", id).str("room", room).value("data", data).str("key", key);
  post([s = s_, id, f = w.finish(), h = as_ack(guarded(std::move(done)))]() mutable {
    s->send_request(id, std::move(f), std::move(h), true);
  });
}

void Client::history(std::string room, std::uint64_t since, std::function<void(Result<HistoryReply>)> done,
                     std::uint32_t limit) {
  const auto id = s_->new_id();
  MapWriter w("history");
  w.u64("id", id).str("room", room).u64("since", since);
  if (limit) w.u64("limit", limit);
  auto g = guarded(std::move(done));
  std::function<void(Result<Reply>)> h = [g, room](Result<Reply> r) {
    if (!g) return;
    if (!r.ok()) return g(r.error());
    auto hist = parse_history(r.value());
    if (!hist) return g(Error{errc::protocol, "malformed history reply"});
    hist->room = room;
    for (auto& m : hist->msgs) m.room = room;
    g(std::move(*hist));
  };
  post([s = s_, id, f = w.finish(), h = std::move(h)]() mutable {
    s->send_request(id, std::move(f), std::move(h), true);  // reading is idempotent
  });
}

void Client::ping(std::function<void(Result<Done>)> done) {
  const auto id = s_->new_id();
  MapWriter w("ping");
  w.u64("id", id);
  auto g = guarded(std::move(done));
  std::function<void(Result<Reply>)> h = [g](Result<Reply> r) {
    if (!g) return;
    if (!r.ok()) return g(r.error());
    if (r.value().type() != "pong") return g(Error{errc::protocol, "expected pong"});
    g(Done{});
  };
  post([s = s_, id, f = w.finish(), h = std::move(h)]() mutable {
    s->send_request(id, std::move(f), std::move(h), true);
  });
}

void Client::set_state(std::string room, const Value& state, std::function<void(Result<Done>)> done) {
  post([s = s_, room = std::move(room), state, done = guarded(std::move(done))]() mutable {
    s->set_presence_state(room, std::move(state), std::move(done));
  });
}

void Client::typing(std::string room, bool on) {
  post([s = s_, room = std::move(room), on] { s->typing(room, on); });
}

void Client::presence(std::string room, std::function<void(Result<PresenceSnapshot>)> done) {
  const auto id = s_->new_id();
  MapWriter w("presence");
  w.u64("id", id).str("room", room);
  auto g = guarded(std::move(done));
  std::function<void(Result<Reply>)> h = [g, room](Result<Reply> r) {
    if (!g) return;
    if (!r.ok()) return g(r.error());
    auto p = parse_presence(r.value());
    if (!p) return g(Error{errc::protocol, "malformed presence reply"});
    p->room = room;
    g(std::move(*p));
  };
  post([s = s_, id, f = w.finish(), h = std::move(h)]() mutable {
    s->send_request(id, std::move(f), std::move(h), true);  // reading is idempotent
  });
}

void Client::with_presence(std::string room, std::function<void(const PresenceView*)> fn) {
  post([s = s_, room = std::move(room), fn = guarded(std::move(fn))] {
    if (fn) s->with_presence(room, fn);
  });
}

void Client::on_state(std::function<void(const StateEvent&)> fn) {
  post([s = s_, fn = guarded(std::move(fn))]() mutable { s->add_state_listener(std::move(fn)); });
}

void Client::on_error(std::function<void(const Error&)> fn) {
  post([s = s_, fn = guarded(std::move(fn))]() mutable { s->set_error_handler(std::move(fn)); });
}

void Client::request(std::string_view type, const std::function<void(MapWriter&)>& fields,
                     std::function<void(Result<Reply>)> done, bool idempotent) {
  const auto id = s_->new_id();
  MapWriter w(type);
  w.u64("id", id);
  if (fields) fields(w);
  auto g = guarded(std::move(done));
  if (!g) g = [](Result<Reply>) {};
  post([s = s_, id, f = w.finish(), g = std::move(g), idempotent]() mutable {
    s->send_request(id, std::move(f), std::move(g), idempotent);
  });
}

void Client::send(std::string_view type, const std::function<void(MapWriter&)>& fields) {
  MapWriter w(type);
  if (fields) fields(w);
  post([s = s_, f = w.finish()]() mutable { s->send_oneway(std::move(f)); });
}

void Client::on_push(std::string type, std::function<void(const Reply&)> fn) {
  post([s = s_, type = std::move(type), fn = guarded(std::move(fn))]() mutable {
    s->add_push_handler(std::move(type), std::move(fn));
  });
}

void Client::drop_connection(bool reconnect) {
  post([s = s_, reconnect] { s->drop_connection(reconnect); });
}

void Client::reconnect_now() {
  post([s = s_] { s->reconnect_now(); });
}

void Client::drop_next_pdiffs(std::string room, unsigned n) {
  post([s = s_, room = std::move(room), n] { s->drop_next_pdiffs(room, n); });
}

net::any_io_executor Client::executor() const { return s_->strand(); }

const Options& Client::options() const { return s_->options(); }

}  // namespace troupe::client
