#include "clients/cpp/session.hpp"

#include "clients/cpp/decode.hpp"
#include "clients/cpp/map_writer.hpp"
#include "clients/cpp/ws_connection.hpp"

namespace troupe::client {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

Session::Session(net::any_io_executor ex, Options opts)
    : strand_(net::make_strand(ex)),
      opts_(std::move(opts)),
      url_(Url::parse(opts_.url)),
      backoff_(opts_.backoff),
      reconnect_timer_(strand_),
      sweep_timer_(strand_) {}

Session::~Session() = default;

// --- life of the connection ------------------------------------------------------------

void Session::start() {
  if (state_ == State::connecting || state_ == State::connected || state_ == State::disconnected)
    return;
  closing_ = false;
  hold_reconnect_ = false;
  refusal_.reset();
  if (!url_) {
    refusal_ = Error{errc::refused, "bad url (expected ws://host:port/path): " + opts_.url};
    fail_requests(requests_.take_all(), *refusal_);
    StateEvent ev;
    ev.state = State::closed;
    ev.reason = refusal_->reason;
    set_state(std::move(ev));
    return;
  }
  connect_attempt();
}

void Session::connect_attempt() {
  ++gen_;
  connected_ = false;
  disconnect_note_.reset();
  StateEvent ev;
  ev.state = State::connecting;
  ev.attempt = backoff_.attempt();
  set_state(std::move(ev));
  if (closing_ || state_ != State::connecting) return;  // a listener closed us

  WsConnection::Config cfg{opts_.connect_timeout, opts_.max_batch, opts_.max_incoming,
                           opts_.receive_buffer};
  std::weak_ptr<Session> w = weak_from_this();
  const auto gen = gen_;
  WsConnection::Callbacks cb;
  cb.on_open = [w, gen] {
    if (auto s = w.lock()) s->on_open(gen);
  };
  cb.on_frame = [w, gen](std::string_view bytes) {
    if (auto s = w.lock()) s->on_frame(gen, bytes);
  };
  cb.on_closed = [w, gen](const CloseInfo& info) {
    if (auto s = w.lock()) s->on_closed(gen, info);
  };
  conn_ = std::make_shared<WsConnection>(strand_, *url_, cfg, std::move(cb));
  conn_->start();
}

void Session::on_open(std::uint64_t gen) {
  if (gen != gen_ || !conn_) return;
  const auto id = new_id();
  MapWriter w("connect");
  w.u64("id", id);
  if (!opts_.token.empty()) w.str("token", opts_.token);
  if (!opts_.user.empty()) w.str("user", opts_.user);
  if (!opts_.name.empty()) w.str("name", opts_.name);
  std::weak_ptr<Session> weak = weak_from_this();
  RequestTable::Entry e;
  e.handler = [weak, gen](Result<Reply> r) {
    if (auto s = weak.lock()) s->on_connected(gen, std::move(r));
  };
  e.deadline = Clock::now() + opts_.connect_timeout;
  e.sent = true;
  requests_.add(id, std::move(e));
  conn_->send(w.finish());
  arm_sweep();
}

void Session::on_connected(std::uint64_t gen, Result<Reply> r) {
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
  info_ = info ? std::move(*info) : ConnectedInfo{};
  connected_ = true;
  backoff_.reset();
  auto idle = opts_.idle_timeout;
  if (idle.count() <= 0 && info_.ping.count() > 0)
    idle = std::chrono::duration_cast<std::chrono::milliseconds>(2 * info_.ping + std::chrono::seconds(5));
  conn_->set_idle_timeout(idle);

  StateEvent ev;
  ev.state = State::connected;
  ev.info = info_;
  set_state(std::move(ev));
  if (gen != gen_ || !connected_) return;

  for (auto& [name, room] : rooms_) send_sub(*room, room->stream.begin_subscribe());
  requests_.send_unsent([this](std::string f) {
    if (conn_) conn_->send(std::move(f));
  });
}

void Session::on_frame(std::uint64_t gen, std::string_view bytes) {
  if (gen != gen_) return;
  std::vector<Reply> maps;
  const bool ok = split_frame(bytes, maps);
  for (const auto& r : maps) {
    if (gen != gen_) return;  // a handler ended this connection
    dispatch(r);
  }
  if (!ok) report_error({errc::protocol, "a frame from the server holds something that is not MessagePack"});
}

void Session::dispatch(const Reply& r) {
  const auto m = r.map();
  if (!m.is_map()) return report_error({errc::protocol, "a frame item from the server is not a map"});
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
    return;  // a late reply to a request that already failed
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
      Room& room = *it->second;
      if (room.drop_pdiffs > 0)
        --room.drop_pdiffs;  // test hook: as if it never arrived
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
    DisconnectNote n;
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

bool Session::should_reconnect(std::uint16_t code) const {
  switch (code) {
    case 1002:  // protocol error
    case 1003:  // text frame
    case 1008:  // policy
    case 1009:  // too large
    case 4400:  // bad protocol
    case 4403:  // token refused or expired
      return false;
    default:
      return true;  // 4500 slow consumer, 4503 shutdown, 4408, 4429, a cut, …
  }
}

void Session::on_closed(std::uint64_t gen, const CloseInfo& info) {
  if (gen != gen_) return;
  conn_.reset();
  connected_ = false;
  ++gen_;  // handlers of this connection are stale from now on

  std::uint16_t code = info.code;
  std::string reason = info.reason;
  std::optional<bool> server_says;
  if (disconnect_note_) {
    if (code == 0) code = disconnect_note_->code;
    if (reason.empty() || info.code == 0) reason = disconnect_note_->reason.empty() ? reason : disconnect_note_->reason;
    server_says = disconnect_note_->reconnect;
  }
  disconnect_note_.reset();

  for (auto& [name, room] : rooms_) {
    room->stream.on_connection_lost();
    room->presence.on_connection_lost();
    room->typing_on = false;
  }
  fail_requests(requests_.take_lost(), Error{errc::disconnected, reason});

  bool again = opts_.auto_reconnect && !closing_ && !refusal_ &&
               (server_says ? *server_says : should_reconnect(code));
  if (!again) {
    Error why = refusal_ ? *refusal_
                         : Error{closing_ ? errc::closed : errc::refused,
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
    StateEvent ev;
    ev.state = State::closed;
    ev.close_code = code;
    ev.reason = refusal_ ? refusal_->code + (refusal_->reason.empty() ? "" : ": " + refusal_->reason)
                         : reason;
    set_state(std::move(ev));
    return;
  }

  StateEvent ev;
  ev.state = State::disconnected;
  ev.close_code = code;
  ev.reason = reason;
  if (!hold_reconnect_) {
    const auto delay = backoff_.next();
    ev.retry_in = delay;
    reconnect_timer_.expires_after(delay);
    std::weak_ptr<Session> w = weak_from_this();
    const auto g = gen_;
    reconnect_timer_.async_wait([w, g](boost::system::error_code ec) {
      auto s = w.lock();
      if (ec || !s || g != s->gen_ || s->state_ != State::disconnected || s->closing_) return;
      s->connect_attempt();
    });
  }
  ev.attempt = backoff_.attempt();
  set_state(std::move(ev));
}

void Session::fail_connection(const std::string& why) {
  if (conn_) conn_->drop(why);
}

void Session::close() {
  closing_ = true;
  hold_reconnect_ = false;
  reconnect_timer_.cancel();
  if (conn_) {
    conn_->close(1000, "bye");  // on_closed follows
    return;
  }
  ++gen_;
  fail_requests(requests_.take_all(), Error{errc::closed, "the client was closed"});
  for (auto& [name, room] : rooms_) {
    room->stream.on_connection_lost();
    room->presence.on_connection_lost();
    room->typing_on = false;
    fail_room_waiters(*room, Error{errc::closed, "the client was closed"});
    if (room->first_done) {
      auto done = std::move(room->first_done);
      room->first_done = nullptr;
      done(Error{errc::closed, "the client was closed"});
    }
  }
  if (state_ != State::closed && state_ != State::idle) {
    StateEvent ev;
    ev.state = State::closed;
    ev.reason = "closed by the client";
    set_state(std::move(ev));
  }
}

void Session::drop_connection(bool reconnect) {
  hold_reconnect_ = !reconnect;
  if (conn_) conn_->drop("connection dropped (test hook)");
}

void Session::reconnect_now() {
  hold_reconnect_ = false;
  if (state_ != State::disconnected) return;
  reconnect_timer_.cancel();
  connect_attempt();
}

// --- requests ----------------------------------------------------------------------------

void Session::send_request(std::uint64_t id, std::string frame, ReplyHandler handler, bool resend) {
  if (state_ == State::closed) {
    if (handler) handler(Error{errc::closed, "the client is closed"});
    return;
  }
  RequestTable::Entry e;
  e.handler = std::move(handler);
  e.deadline = Clock::now() + opts_.request_timeout;
  e.resend = resend;
  if (connected_ && conn_) {
    e.sent = true;
    if (resend) e.frame = frame;
    conn_->send(std::move(frame));
  } else {
    e.frame = std::move(frame);
  }
  requests_.add(id, std::move(e));
  arm_sweep();
}

void Session::send_oneway(std::string frame) {
  if (connected_ && conn_) conn_->send(std::move(frame));
}

void Session::send_internal(std::string, std::uint64_t id, std::string frame, ReplyHandler h) {
  RequestTable::Entry e;
  e.handler = std::move(h);
  e.deadline = Clock::now() + opts_.request_timeout;
  e.sent = true;
  requests_.add(id, std::move(e));
  if (conn_) conn_->send(std::move(frame));
  arm_sweep();
}

void Session::fail_requests(std::vector<RequestTable::Entry> entries, const Error& e) {
  for (auto& entry : entries)
    if (entry.handler) entry.handler(e);
}

void Session::arm_sweep() {
  if (sweep_armed_ || requests_.empty()) return;
  const auto deadline = requests_.earliest_deadline();
  if (!deadline) return;
  sweep_armed_ = true;
  sweep_timer_.expires_at(*deadline + std::chrono::milliseconds(1));
  std::weak_ptr<Session> w = weak_from_this();
  sweep_timer_.async_wait([w](boost::system::error_code) {
    if (auto s = w.lock()) {
      s->sweep_armed_ = false;
      s->sweep();
      s->arm_sweep();
    }
  });
}

void Session::sweep() {
  fail_requests(requests_.take_expired(Clock::now()),
                Error{errc::timeout, "no reply within the request timeout"});
}

// --- rooms -------------------------------------------------------------------------------

void Session::subscribe(std::string room, RoomHandlers handlers,
                        std::function<void(Result<SubscribedEvent>)> done) {
  if (rooms_.count(room)) {
    if (done) done(Error{errc::already_subscribed, room});
    return;
  }
  if (state_ == State::closed) {
    if (done) done(Error{errc::closed, "the client is closed"});
    return;
  }
  auto r = std::make_unique<Room>(room, static_cast<RoomStream::Sink&>(*this),
                                  static_cast<PresenceView::Sink&>(*this));
  r->handlers = std::move(handlers);
  r->first_done = std::move(done);
  r->token = ++room_tokens_;
  auto& ref = *r;
  rooms_.emplace(room, std::move(r));
  if (connected_ && conn_) send_sub(ref, ref.stream.begin_subscribe());
}

void Session::unsubscribe(std::string room, std::function<void(Result<Done>)> done) {
  auto it = rooms_.find(room);
  if (it == rooms_.end()) {
    if (done) done(Done{});
    return;
  }
  fail_room_waiters(*it->second, Error{errc::closed, "unsubscribed"});
  if (it->second->first_done) {
    auto fd = std::move(it->second->first_done);
    fd(Error{errc::closed, "unsubscribed before the subscription completed"});
  }
  rooms_.erase(it);
  if (!(connected_ && conn_)) {
    if (done) done(Done{});
    return;
  }
  const auto id = new_id();
  MapWriter w("unsub");
  w.u64("id", id).str("room", room);
  send_internal("unsub", id, w.finish(), [done = std::move(done)](Result<Reply> r) {
    if (!done) return;
    if (r.ok())
      done(Done{});
    else if (r.error().code == errc::disconnected)
      done(Done{});  // the subscription ended with the connection anyway
    else
      done(r.error());
  });
}

void Session::send_sub(Room& room, const std::optional<Since>& since) {
  const auto id = new_id();
  room.sub_id = id;
  const std::string name = room.stream.room();
  MapWriter w("sub");
  w.u64("id", id).str("room", name);
  if (since) {
    auto& pk = w.begin("since");
    pk.pack_map(2);
    pk.pack(std::string_view("seq"));
    pk.pack_uint64(since->seq);
    pk.pack(std::string_view("epoch"));
    pk.pack(since->epoch);
  }
  std::weak_ptr<Session> weak = weak_from_this();
  const auto token = room.token;
  send_internal("sub", id, w.finish(), [weak, name, token, id](Result<Reply> r) {
    auto s = weak.lock();
    if (!s) return;
    auto it = s->rooms_.find(name);
    if (it == s->rooms_.end() || it->second->token != token || it->second->sub_id != id) return;
    Room& room = *it->second;
    std::optional<SubscribedEvent> ev;
    Error err;
    if (r.ok()) {
      ev = parse_subscribed(r.value());
      if (!ev) err = Error{errc::protocol, "malformed subscribed reply"};
    } else {
      err = r.error();
      if (err.code == errc::disconnected || err.code == errc::closed) return;
      if (err.code == errc::timeout) return s->fail_connection("no `subscribed` reply in time");
    }
    if (ev) {
      // The reply is for the room we asked about, whatever it says.
      ev->room = name;
      for (auto& m : ev->msgs) m.room = name;
      // Presence first, so that the view is complete when on_subscribed / done are called.
      std::vector<PresenceEntry> members;
      if (!ev->members.is_nil()) {
        auto parsed = parse_presence_entries(ev->members.object());
        if (parsed)
          members = std::move(*parsed);
        else
          s->report_error({errc::protocol, "malformed members in a subscribed reply"});
      }
      room.typing_on = false;  // the engine forgot it with the old subscription
      room.presence.on_subscribed(ev->pseq, std::move(members), s->info_.client);
      s->sync_state(room);
      room.stream.on_subscribed(std::move(*ev));
      return;
    }
    // Refused: the room is no longer subscribed.
    auto node = s->rooms_.extract(it);
    auto& gone = *node.mapped();
    s->fail_room_waiters(gone, err);
    if (gone.first_done)
      gone.first_done(err);
    else if (gone.handlers.on_error)
      gone.handlers.on_error(err);
  });
}

void Session::deliver(const Message& m) {
  auto it = rooms_.find(m.room);
  if (it != rooms_.end() && it->second->handlers.on_message) it->second->handlers.on_message(m);
}

void Session::subscribed(const SubscribedEvent& ev) {
  auto it = rooms_.find(ev.room);
  if (it == rooms_.end()) return;
  Room& room = *it->second;
  if (room.handlers.on_subscribed) room.handlers.on_subscribed(ev);
  if (room.first_done) {
    auto done = std::move(room.first_done);
    room.first_done = nullptr;
    done(ev);
  }
}

void Session::fetch_history(const std::string& room, std::uint64_t since) {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !connected_) return;
  const auto id = new_id();
  MapWriter w("history");
  w.u64("id", id).str("room", room).u64("since", since);
  std::weak_ptr<Session> weak = weak_from_this();
  const auto token = it->second->token;
  send_internal("history", id, w.finish(), [weak, room, token](Result<Reply> r) {
    auto s = weak.lock();
    if (!s) return;
    auto it = s->rooms_.find(room);
    if (it == s->rooms_.end() || it->second->token != token) return;
    auto& stream = it->second->stream;
    if (!r.ok()) {
      const auto& code = r.error().code;
      if (code == errc::disconnected || code == errc::closed) return;
      if (code == errc::timeout) return s->fail_connection("no `history` reply in time");
      return stream.on_history_failed();
    }
    auto h = parse_history(r.value());
    if (!h) return stream.on_history_failed();
    h->room = room;
    for (auto& m : h->msgs) m.room = room;
    stream.on_history(*h);
  });
}

void Session::resubscribe(const std::string& room, const std::optional<Since>& since) {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !connected_) return;
  const auto id = new_id();
  MapWriter w("unsub");
  w.u64("id", id).str("room", room);
  send_internal("unsub", id, w.finish(), [](Result<Reply>) {});
  send_sub(*it->second, since);
}

// --- presence ----------------------------------------------------------------------------

void Session::presence_changed(const PresenceEvent& ev) {
  auto it = rooms_.find(ev.room);
  if (it != rooms_.end() && it->second->handlers.on_presence) it->second->handlers.on_presence(ev);
}

void Session::typing_changed(const TypingEvent& ev) {
  auto it = rooms_.find(ev.room);
  if (it != rooms_.end() && it->second->handlers.on_typing) it->second->handlers.on_typing(ev);
}

void Session::fetch_presence(const std::string& room) {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !connected_) return;
  const auto id = new_id();
  MapWriter w("presence");
  w.u64("id", id).str("room", room);
  std::weak_ptr<Session> weak = weak_from_this();
  const auto token = it->second->token;
  send_internal("presence", id, w.finish(), [weak, room, token](Result<Reply> r) {
    auto s = weak.lock();
    if (!s) return;
    auto it = s->rooms_.find(room);
    if (it == s->rooms_.end() || it->second->token != token) return;
    auto& view = it->second->presence;
    if (!r.ok()) {
      const auto& code = r.error().code;
      if (code == errc::disconnected || code == errc::closed) return;  // the resubscription rebuilds it
      if (code == errc::timeout) return s->fail_connection("no `presence` reply in time");
      return view.on_fetch_failed();
    }
    auto p = parse_presence(r.value());
    if (!p) {
      s->report_error({errc::protocol, "malformed presence reply"});
      return view.on_fetch_failed();
    }
    std::vector<PresenceEntry> members;
    members.reserve(p->members.size());
    for (const auto& [client, e] : p->members.by_client()) members.push_back(e);
    view.on_fetched(p->pseq, std::move(members));
  });
}

namespace {
bool same_state(const Value& a, const Value& b) {
  if (a.is_nil() || b.is_nil()) return a.is_nil() == b.is_nil();
  return a.encode() == b.encode();
}
}  // namespace

void Session::set_presence_state(const std::string& room, Value state, std::function<void(Result<Done>)> done) {
  if (state_ == State::closed) {
    if (done) done(Error{errc::closed, "the client is closed"});
    return;
  }
  auto it = rooms_.find(room);
  if (it == rooms_.end()) {
    // Not ours to remember: send it, the engine answers (not_subscribed, forbidden, …).
    const auto id = new_id();
    MapWriter w("pset");
    w.u64("id", id).str("room", room).value("state", state);
    send_request(id, w.finish(), [done = std::move(done)](Result<Reply> r) {
      if (!done) return;
      if (r.ok()) return done(Done{});
      done(r.error());
    }, false);
    return;
  }
  Room& r = *it->second;
  r.wanted_state = std::move(state);
  if (done) r.pset_waiters.push_back(std::move(done));
  if (connected_ && conn_ && r.presence.phase() != PresenceView::Phase::idle)
    send_pset(r);
  // else: sent when the subscription is live (sync_state)
}

void Session::send_pset(Room& room) {
  if (!room.wanted_state || !connected_ || !conn_) return;
  const auto id = new_id();
  const std::string name = room.stream.room();
  MapWriter w("pset");
  w.u64("id", id).str("room", name).value("state", *room.wanted_state);
  auto waiters = std::move(room.pset_waiters);
  room.pset_waiters.clear();
  ++room.psets_in_flight;
  std::weak_ptr<Session> weak = weak_from_this();
  const auto token = room.token;
  send_internal("pset", id, w.finish(),
                [weak, name, token, sent = *room.wanted_state, waiters = std::move(waiters)](Result<Reply> r) mutable {
    auto s = weak.lock();
    if (!s) return;
    auto it = s->rooms_.find(name);
    Room* room = (it != s->rooms_.end() && it->second->token == token) ? it->second.get() : nullptr;
    if (room && room->psets_in_flight > 0) --room->psets_in_flight;
    if (r.ok()) {
      if (room) {
        room->acked_state = sent;
        if (room->psets_in_flight == 0 && room->pset_stale) {
          room->pset_stale = false;  // a resubscription came between: set it again
          s->send_pset(*room);
        }
      }
      for (auto& w : waiters)
        if (w) w(Done{});
      return;
    }
    const auto& code = r.error().code;
    if (room && code == errc::disconnected) {
      // Set again once resubscribed on the next connection; the callers wait for that.
      room->pset_waiters.insert(room->pset_waiters.begin(), std::make_move_iterator(waiters.begin()),
                                std::make_move_iterator(waiters.end()));
      return;
    }
    if (room && code != errc::timeout && code != errc::closed && room->wanted_state &&
        same_state(*room->wanted_state, sent)) {
      room->wanted_state = room->acked_state;  // refused (too_large, …): keep the last good one
    }
    for (auto& w : waiters)
      if (w) w(r.error());
  });
}

void Session::sync_state(Room& room) {
  if (!room.wanted_state) return;
  if (room.psets_in_flight > 0) {
    room.pset_stale = true;  // it may have reached the old subscription: send again after it
    return;
  }
  const auto* self = room.presence.self();
  if (self && same_state(self->state, *room.wanted_state)) {
    auto waiters = std::move(room.pset_waiters);
    room.pset_waiters.clear();
    for (auto& w : waiters)
      if (w) w(Done{});
    return;
  }
  send_pset(room);
}

void Session::fail_room_waiters(Room& room, const Error& e) {
  auto waiters = std::move(room.pset_waiters);
  room.pset_waiters.clear();
  for (auto& w : waiters)
    if (w) w(e);
}

void Session::typing(const std::string& room, bool on) {
  if (!(connected_ && conn_)) return;  // ephemeral: nothing to send later
  auto it = rooms_.find(room);
  if (it != rooms_.end()) {
    Room& r = *it->second;
    const auto now = Clock::now();
    if (on) {
      if (r.typing_on && now - r.typing_sent < opts_.typing_refresh) return;  // still fresh
      r.typing_on = true;
      r.typing_sent = now;
    } else {
      if (!r.typing_on) return;
      r.typing_on = false;
    }
  }
  MapWriter w("typing");
  w.str("room", room).boolean("on", on);
  conn_->send(w.finish());
}

void Session::with_presence(const std::string& room, const std::function<void(const PresenceView*)>& fn) {
  auto it = rooms_.find(room);
  fn(it == rooms_.end() ? nullptr : &it->second->presence);
}

void Session::drop_next_pdiffs(const std::string& room, unsigned n) {
  auto it = rooms_.find(room);
  if (it != rooms_.end()) it->second->drop_pdiffs += n;
}

std::optional<Since> Session::position(const std::string& room) const {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !it->second->stream.has_position()) return std::nullopt;
  return Since{it->second->stream.last_seq(), it->second->stream.epoch()};
}

// --- listeners ---------------------------------------------------------------------------

void Session::add_state_listener(std::function<void(const StateEvent&)> fn) {
  if (fn) state_listeners_.push_back(std::move(fn));
}

void Session::add_push_handler(std::string type, std::function<void(const Reply&)> fn) {
  push_handlers_[std::move(type)] = std::move(fn);
}

void Session::set_error_handler(std::function<void(const Error&)> fn) { error_handler_ = std::move(fn); }

void Session::clear_handlers() {
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

void Session::set_state(StateEvent ev) {
  state_ = ev.state;
  for (std::size_t i = 0; i < state_listeners_.size(); ++i) state_listeners_[i](ev);
}

void Session::report_error(const Error& e) {
  if (error_handler_) error_handler_(e);
}

}  // namespace troupe::client
