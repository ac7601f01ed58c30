#include "clients/cpp/connection.hpp"

#include <mutex>

#include <boost/asio/post.hpp>

#include "clients/cpp/decode.hpp"
#include "clients/cpp/session.hpp"

namespace troupe::client {

namespace net = boost::asio;

// User callbacks run under this lock, and not at all once the `connection` is destroyed.
// Recursive: a callback may destroy its own `connection`.
struct connection::guard {
  std::recursive_mutex m;
  bool alive = true;
};

template <class... A>
std::function<void(A...)> connection::guarded(std::function<void(A...)> fn) const {
  if (!fn) return {};
  return [g = guard_, fn = std::move(fn)](A... a) {
    std::lock_guard<std::recursive_mutex> lock(g->m);
    if (g->alive) fn(std::forward<A>(a)...);
  };
}

template <class F>
void connection::post(F&& f) {
  net::post(s_->strand(), std::forward<F>(f));
}

connection::connection(net::any_io_executor ex, connection_options opts)
    : s_(std::make_shared<session>(std::move(ex), std::move(opts))),
      guard_(std::make_shared<guard>()) {}

connection::~connection() {
  {
    std::lock_guard<std::recursive_mutex> lock(guard_->m);
    guard_->alive = false;
  }
  post([s = s_] {
    s->clear_handlers();
    s->close();
  });
}

void connection::start() {
  post([s = s_] { s->start(); });
}

void connection::close() {
  post([s = s_] { s->close(); });
}

void connection::subscribe(std::string room, room_handlers h,
                           std::function<void(result<subscribed_event>)> done) {
  room_handlers g;
  g.on_message = guarded(std::move(h.on_message));
  g.on_subscribed = guarded(std::move(h.on_subscribed));
  g.on_error = guarded(std::move(h.on_error));
  g.on_presence = guarded(std::move(h.on_presence));
  g.on_typing = guarded(std::move(h.on_typing));
  post([s = s_, room = std::move(room), g = std::move(g),
        done = guarded(std::move(done))]() mutable {
    s->subscribe(std::move(room), std::move(g), std::move(done));
  });
}

void connection::unsubscribe(std::string room, std::function<void(result<nothing>)> done) {
  post([s = s_, room = std::move(room), done = guarded(std::move(done))]() mutable {
    s->unsubscribe(std::move(room), std::move(done));
  });
}

namespace {
std::function<void(result<reply>)> as_ack(std::function<void(result<ack>)> done) {
  if (!done) return [](result<reply>) {};
  return [done = std::move(done)](result<reply> r) {
    if (!r.ok()) return done(r.error());
    auto ack = parse_ack(r.value());
    if (!ack) return done(error{errc::protocol, "malformed ack"});
    done(std::move(*ack));
  };
}
} // namespace

void connection::publish(std::string room, const value& data,
                         std::function<void(result<ack>)> done) {
  const auto id = s_->new_id();
  map_writer w("pub");
  w.u64("id", id).str("room", room).value("data", data);
  post([s = s_, id, f = w.finish(), h = as_ack(guarded(std::move(done)))]() mutable {
    s->send_request(id, std::move(f), std::move(h), false);
  });
}

void connection::publish(std::string room, const value& data, std::string key,
                         std::function<void(result<ack>)> done) {
  const auto id = s_->new_id();
  map_writer w("pub");
  w.u64("id", id).str("room", room).value("data", data).str("key", key);
  post([s = s_, id, f = w.finish(), h = as_ack(guarded(std::move(done)))]() mutable {
    s->send_request(id, std::move(f), std::move(h), true);
  });
}

void connection::history(std::string room, std::uint64_t since,
                         std::function<void(result<history_reply>)> done, std::uint32_t limit) {
  const auto id = s_->new_id();
  map_writer w("history");
  w.u64("id", id).str("room", room).u64("since", since);
  if (limit) w.u64("limit", limit);
  auto g = guarded(std::move(done));
  std::function<void(result<reply>)> h = [g, room](result<reply> r) {
    if (!g) return;
    if (!r.ok()) return g(r.error());
    auto hist = parse_history(r.value());
    if (!hist) return g(error{errc::protocol, "malformed history reply"});
    hist->room = room;
    for (auto& m : hist->msgs)
      m.room = room;
    g(std::move(*hist));
  };
  post([s = s_, id, f = w.finish(), h = std::move(h)]() mutable {
    s->send_request(id, std::move(f), std::move(h), true); // reading is idempotent
  });
}

void connection::ping(std::function<void(result<nothing>)> done) {
  const auto id = s_->new_id();
  map_writer w("ping");
  w.u64("id", id);
  auto g = guarded(std::move(done));
  std::function<void(result<reply>)> h = [g](result<reply> r) {
    if (!g) return;
    if (!r.ok()) return g(r.error());
    if (r.value().type() != "pong") return g(error{errc::protocol, "expected pong"});
    g(nothing{});
  };
  post([s = s_, id, f = w.finish(), h = std::move(h)]() mutable {
    s->send_request(id, std::move(f), std::move(h), true);
  });
}

void connection::rpc(std::string method, const value& data,
                     std::function<void(result<value>)> done) {
  const auto id = s_->new_id();
  map_writer w("rpc");
  w.u64("id", id).str("method", method).value("data", data);
  auto g = guarded(std::move(done));
  std::function<void(result<reply>)> h = [g](result<reply> r) {
    if (!g) return;
    if (!r.ok()) return g(r.error());
    if (r.value().type() != "result") return g(error{errc::protocol, "expected result"});
    g(r.value().field("data"));
  };
  post([s = s_, id, f = w.finish(), h = std::move(h)]() mutable {
    s->send_request(id, std::move(f), std::move(h), false); // not idempotent
  });
}

void connection::set_state(std::string room, const value& state,
                           std::function<void(result<nothing>)> done) {
  post([s = s_, room = std::move(room), state, done = guarded(std::move(done))]() mutable {
    s->set_presence_state(room, std::move(state), std::move(done));
  });
}

void connection::typing(std::string room, bool on) {
  post([s = s_, room = std::move(room), on] { s->typing(room, on); });
}

void connection::presence(std::string room, std::function<void(result<presence_snapshot>)> done) {
  const auto id = s_->new_id();
  map_writer w("presence");
  w.u64("id", id).str("room", room);
  auto g = guarded(std::move(done));
  std::function<void(result<reply>)> h = [g, room](result<reply> r) {
    if (!g) return;
    if (!r.ok()) return g(r.error());
    auto p = parse_presence(r.value());
    if (!p) return g(error{errc::protocol, "malformed presence reply"});
    p->room = room;
    g(std::move(*p));
  };
  post([s = s_, id, f = w.finish(), h = std::move(h)]() mutable {
    s->send_request(id, std::move(f), std::move(h), true); // reading is idempotent
  });
}

void connection::with_presence(std::string room, std::function<void(const presence_view*)> fn) {
  post([s = s_, room = std::move(room), fn = guarded(std::move(fn))] {
    if (fn) s->with_presence(room, fn);
  });
}

void connection::on_state(std::function<void(const state_event&)> fn) {
  post([s = s_, fn = guarded(std::move(fn))]() mutable { s->add_state_listener(std::move(fn)); });
}

void connection::on_error(std::function<void(const error&)> fn) {
  post([s = s_, fn = guarded(std::move(fn))]() mutable { s->set_error_handler(std::move(fn)); });
}

void connection::request(std::string_view type, const std::function<void(map_writer&)>& fields,
                         std::function<void(result<reply>)> done, bool idempotent) {
  const auto id = s_->new_id();
  map_writer w(type);
  w.u64("id", id);
  if (fields) fields(w);
  auto g = guarded(std::move(done));
  if (!g) g = [](result<reply>) {};
  post([s = s_, id, f = w.finish(), g = std::move(g), idempotent]() mutable {
    s->send_request(id, std::move(f), std::move(g), idempotent);
  });
}

void connection::send(std::string_view type, const std::function<void(map_writer&)>& fields) {
  map_writer w(type);
  if (fields) fields(w);
  post([s = s_, f = w.finish()]() mutable { s->send_oneway(std::move(f)); });
}

void connection::on_push(std::string type, std::function<void(const reply&)> fn) {
  post([s = s_, type = std::move(type), fn = guarded(std::move(fn))]() mutable {
    s->add_push_handler(std::move(type), std::move(fn));
  });
}

void connection::drop_connection(bool reconnect) {
  post([s = s_, reconnect] { s->drop_connection(reconnect); });
}

void connection::reconnect_now() {
  post([s = s_] { s->reconnect_now(); });
}

void connection::drop_next_pdiffs(std::string room, unsigned n) {
  post([s = s_, room = std::move(room), n] { s->drop_next_pdiffs(room, n); });
}

net::any_io_executor connection::executor() const { return s_->strand(); }

const connection_options& connection::options() const { return s_->options(); }

} // namespace troupe::client
