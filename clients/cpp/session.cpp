// session: the connection's life (connect, `connect` handshake, dispatch, close, reconnect)
// and the listeners. Requests, rooms and presence are in session_requests.cpp,
// session_rooms.cpp and session_presence.cpp.
#include "clients/cpp/session.hpp"

#include "clients/cpp/decode.hpp"
#include "clients/cpp/map_writer.hpp"
#include "clients/cpp/ws_connection.hpp"

namespace troupe::client {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

session::session(net::any_io_executor ex, connection_options opts)
    : strand_(net::make_strand(ex)), opts_(std::move(opts)), url_(parsed_url::parse(opts_.url)),
      backoff_(opts_.backoff), reconnect_timer_(strand_), sweep_timer_(strand_) {
  for (const auto& fallback : opts_.fallback_urls)
    if (auto parsed = parsed_url::parse(fallback)) fallbacks_.push_back(std::move(*parsed));
}

session::~session() = default;

// --- life of the connection ------------------------------------------------------------

void session::start() {
  if (state_ == connection_state::connecting || state_ == connection_state::connected ||
      state_ == connection_state::disconnected)
    return;
  closing_ = false;
  hold_reconnect_ = false;
  refusal_.reset();
  if (!url_) {
    refusal_ = error{errc::refused, "bad url (expected ws://host:port/path): " + opts_.url};
    fail_requests(requests_.take_all(), *refusal_);
    state_event ev;
    ev.state = connection_state::closed;
    ev.reason = refusal_->reason;
    set_state(std::move(ev));
    return;
  }
  connect_attempt();
}

void session::connect_attempt() {
  ++gen_;
  connected_ = false;
  disconnect_note_.reset();
  state_event ev;
  ev.state = connection_state::connecting;
  ev.attempt = backoff_.attempt();
  set_state(std::move(ev));
  if (closing_ || state_ != connection_state::connecting) return; // a listener closed us

  ws_connection::config cfg{opts_.connect_timeout, opts_.max_batch, opts_.max_incoming,
                            opts_.receive_buffer};
  std::weak_ptr<session> w = weak_from_this();
  const auto gen = gen_;
  ws_connection::callbacks cb;
  cb.on_open = [w, gen] {
    if (auto s = w.lock()) s->on_open(gen);
  };
  cb.on_frame = [w, gen](std::string_view bytes) {
    if (auto s = w.lock()) s->on_frame(gen, bytes);
  };
  cb.on_closed = [w, gen](const close_info& info) {
    if (auto s = w.lock()) s->on_closed(gen, info);
  };
  const auto& target = next_url_ == 0 ? *url_ : fallbacks_[next_url_ - 1];
  conn_ = std::make_shared<ws_connection>(strand_, target, cfg, std::move(cb));
  conn_->start();
}

void session::on_open(std::uint64_t gen) {
  if (gen != gen_ || !conn_) return;
  const auto id = new_id();
  map_writer w("connect");
  w.u64("id", id);
  if (!opts_.token.empty()) w.str("token", opts_.token);
  if (!opts_.user.empty()) w.str("user", opts_.user);
  if (!opts_.name.empty()) w.str("name", opts_.name);
  std::weak_ptr<session> weak = weak_from_this();
  request_table::entry e;
  e.handler = [weak, gen](result<reply> r) {
    if (auto s = weak.lock()) s->on_connected(gen, std::move(r));
  };
  e.deadline = clock::now() + opts_.connect_timeout;
  e.sent = true;
  requests_.add(id, std::move(e));
  conn_->send(w.finish());
  arm_sweep();
}

void session::on_connected(std::uint64_t gen, result<reply> r) {
  if (gen != gen_ || !conn_) return;
  if (!r.ok()) {
    const auto& code = r.error().code;
    if (code == errc::disconnected || code == errc::closed) return;
    if (code == errc::timeout) return fail_connection("no `connected` reply in time");
    // Refused (unauthorized, …): the server closes with 4403; do not come back.
    refusal_ = r.error();
    conn_->close(1000, "refused");
    return;
  }
  auto info = parse_connected(r.value());
  info_ = info ? std::move(*info) : connected_info{};
  connected_ = true;
  backoff_.reset();
  auto idle = opts_.idle_timeout;
  if (idle.count() <= 0 && info_.ping.count() > 0)
    idle = std::chrono::duration_cast<std::chrono::milliseconds>(2 * info_.ping +
                                                                 std::chrono::seconds(5));
  conn_->set_idle_timeout(idle);

  state_event ev;
  ev.state = connection_state::connected;
  ev.info = info_;
  set_state(std::move(ev));
  if (gen != gen_ || !connected_) return;

  for (auto& [name, room] : rooms_)
    send_sub(*room, room->stream.begin_subscribe());
  requests_.send_unsent([this](std::string f) {
    if (conn_) conn_->send(std::move(f));
  });
}

void session::on_frame(std::uint64_t gen, std::string_view bytes) {
  if (gen != gen_) return;
  std::vector<reply> maps;
  const bool ok = split_frame(bytes, maps);
  for (const auto& r : maps) {
    if (gen != gen_) return; // a handler ended this connection
    dispatch(r);
  }
  if (!ok)
    report_error(
        {errc::protocol, "a frame from the server holds something that is not MessagePack"});
}

void session::dispatch(const reply& r) {
  const auto m = r.map();
  if (!m.is_map())
    return report_error({errc::protocol, "a frame item from the server is not a map"});
  const auto t = m.str("t").value_or("");
  if (const auto* idv = m.get("id")) {
    if (idv->type == msgpack::type::POSITIVE_INTEGER) {
      if (auto e = requests_.take(idv->via.u64)) {
        if (t == "error")
          e->handler(parse_error(r));
        else
          e->handler(r);
        return;
      }
    }
    if (t == "error") report_error(parse_error(r));
    return; // a late reply to a request that already failed
  }
  if (t == "msg") {
    auto msg = parse_message(r, r.object());
    if (!msg) return report_error({errc::protocol, "malformed msg push"});
    auto it = rooms_.find(msg->room);
    if (it != rooms_.end()) it->second->stream.on_push(std::move(*msg));
    return;
  }
  if (t == "pdiff") {
    auto d = parse_pdiff(r);
    if (!d) return report_error({errc::protocol, "malformed pdiff push"});
    auto it = rooms_.find(d->room);
    if (it != rooms_.end()) {
      subscription& room = *it->second;
      if (room.drop_pdiffs > 0)
        --room.drop_pdiffs; // test hook: as if it never arrived
      else
        room.presence.on_diff(std::move(*d));
    }
  } else if (t == "typing") {
    auto ty = parse_typing(r);
    if (!ty) return report_error({errc::protocol, "malformed typing push"});
    auto it = rooms_.find(ty->room);
    if (it != rooms_.end()) it->second->presence.on_typing(*ty);
  }
  if (t == "disconnect") {
    disconnect_note n;
    n.code = static_cast<std::uint16_t>(m.u64("code").value_or(0));
    n.reason = std::string(m.str("reason").value_or(""));
    n.reconnect = m.boolean("reconnect");
    disconnect_note_ = std::move(n);
    return;
  }
  if (t == "error") return report_error(parse_error(r));
  auto h = push_handlers_.find(std::string(t));
  if (h != push_handlers_.end() && h->second) h->second(r);
}

bool session::should_reconnect(std::uint16_t code) const {
  switch (code) {
  case 1002: // protocol error
  case 1003: // text frame
  case 1008: // policy
  case 1009: // too large
  case 4400: // bad protocol
  case 4403: // token refused or expired
    return false;
  default:
    return true; // 4500 slow consumer, 4503 shutdown, 4408, 4429, a cut, …
  }
}

void session::on_closed(std::uint64_t gen, const close_info& info) {
  if (gen != gen_) return;
  conn_.reset();
  connected_ = false;
  ++gen_; // handlers of this connection are stale from now on

  std::uint16_t code = info.code;
  std::string reason = info.reason;
  std::optional<bool> server_says;
  if (disconnect_note_) {
    if (code == 0) code = disconnect_note_->code;
    if (reason.empty() || info.code == 0)
      reason = disconnect_note_->reason.empty() ? reason : disconnect_note_->reason;
    server_says = disconnect_note_->reconnect;
  }
  disconnect_note_.reset();

  for (auto& [name, room] : rooms_) {
    room->stream.on_connection_lost();
    room->presence.on_connection_lost();
    room->typing_on = false;
  }
  fail_requests(requests_.take_lost(), error{errc::disconnected, reason});

  bool again = opts_.auto_reconnect && !closing_ && !refusal_ &&
               (server_says ? *server_says : should_reconnect(code));
  if (!again) {
    error why = refusal_ ? *refusal_
                         : error{closing_ ? errc::closed : errc::refused,
                                 reason.empty() ? std::string("closed") : reason};
    fail_requests(requests_.take_all(), why);
    for (auto& [name, room] : rooms_) {
      fail_room_waiters(*room, why);
      if (room->first_done) {
        auto done = std::move(room->first_done);
        room->first_done = nullptr;
        done(why);
      }
    }
    state_event ev;
    ev.state = connection_state::closed;
    ev.close_code = code;
    ev.reason = refusal_
                    ? refusal_->code + (refusal_->reason.empty() ? "" : ": " + refusal_->reason)
                    : reason;
    set_state(std::move(ev));
    return;
  }

  state_event ev;
  ev.state = connection_state::disconnected;
  ev.close_code = code;
  ev.reason = reason;
  if (!fallbacks_.empty()) next_url_ = (next_url_ + 1) % (fallbacks_.size() + 1);
  if (!hold_reconnect_) {
    const auto delay = backoff_.next();
    ev.retry_in = delay;
    reconnect_timer_.expires_after(delay);
    std::weak_ptr<session> w = weak_from_this();
    const auto g = gen_;
    reconnect_timer_.async_wait([w, g](boost::system::error_code ec) {
      auto s = w.lock();
      if (ec || !s || g != s->gen_ || s->state_ != connection_state::disconnected || s->closing_)
        return;
      s->connect_attempt();
    });
  }
  ev.attempt = backoff_.attempt();
  set_state(std::move(ev));
}

void session::fail_connection(const std::string& why) {
  if (conn_) conn_->drop(why);
}

void session::close() {
  closing_ = true;
  hold_reconnect_ = false;
  reconnect_timer_.cancel();
  if (conn_) {
    conn_->close(1000, "bye"); // on_closed follows
    return;
  }
  ++gen_;
  fail_requests(requests_.take_all(), error{errc::closed, "the client was closed"});
  for (auto& [name, room] : rooms_) {
    room->stream.on_connection_lost();
    room->presence.on_connection_lost();
    room->typing_on = false;
    fail_room_waiters(*room, error{errc::closed, "the client was closed"});
    if (room->first_done) {
      auto done = std::move(room->first_done);
      room->first_done = nullptr;
      done(error{errc::closed, "the client was closed"});
    }
  }
  if (state_ != connection_state::closed && state_ != connection_state::idle) {
    state_event ev;
    ev.state = connection_state::closed;
    ev.reason = "closed by the client";
    set_state(std::move(ev));
  }
}

void session::drop_connection(bool reconnect) {
  hold_reconnect_ = !reconnect;
  if (conn_) conn_->drop("connection dropped (test hook)");
}

void session::reconnect_now() {
  hold_reconnect_ = false;
  if (state_ != connection_state::disconnected) return;
  reconnect_timer_.cancel();
  connect_attempt();
}

// --- listeners ---------------------------------------------------------------------------

void session::add_state_listener(std::function<void(const state_event&)> fn) {
  if (fn) state_listeners_.push_back(std::move(fn));
}

void session::add_push_handler(std::string type, std::function<void(const reply&)> fn) {
  push_handlers_[std::move(type)] = std::move(fn);
}

void session::set_error_handler(std::function<void(const error&)> fn) {
  error_handler_ = std::move(fn);
}

void session::clear_handlers() {
  state_listeners_.clear();
  push_handlers_.clear();
  error_handler_ = nullptr;
  for (auto& [name, room] : rooms_) {
    room->handlers = {};
    room->first_done = nullptr;
  }
  // The handlers of requests in flight belong to the user too: forget them unheard.
  requests_.take_all();
}

void session::set_state(state_event ev) {
  state_ = ev.state;
  for (std::size_t i = 0; i < state_listeners_.size(); ++i)
    state_listeners_[i](ev);
}

void session::report_error(const error& e) {
  if (error_handler_) error_handler_(e);
}

} // namespace troupe::client
