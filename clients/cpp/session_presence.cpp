// session: presence views, the kept presence state (pset) and typing.
#include "clients/cpp/session.hpp"

#include "clients/cpp/decode.hpp"
#include "clients/cpp/map_writer.hpp"
#include "clients/cpp/ws_connection.hpp"

namespace troupe::client {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

void session::presence_changed(const presence_event& ev) {
  auto it = rooms_.find(ev.room);
  if (it != rooms_.end() && it->second->handlers.on_presence) it->second->handlers.on_presence(ev);
}

void session::typing_changed(const typing_event& ev) {
  auto it = rooms_.find(ev.room);
  if (it != rooms_.end() && it->second->handlers.on_typing) it->second->handlers.on_typing(ev);
}

void session::fetch_presence(const std::string& room) {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !connected_) return;
  const auto id = new_id();
  map_writer w("presence");
  w.u64("id", id).str("room", room);
  std::weak_ptr<session> weak = weak_from_this();
  const auto token = it->second->token;
  send_internal("presence", id, w.finish(), [weak, room, token](result<reply> r) {
    auto s = weak.lock();
    if (!s) return;
    auto it = s->rooms_.find(room);
    if (it == s->rooms_.end() || it->second->token != token) return;
    auto& view = it->second->presence;
    if (!r.ok()) {
      const auto& code = r.error().code;
      if (code == errc::disconnected || code == errc::closed)
        return; // the resubscription rebuilds it
      if (code == errc::timeout) return s->fail_connection("no `presence` reply in time");
      return view.on_fetch_failed();
    }
    auto p = parse_presence(r.value());
    if (!p) {
      s->report_error({errc::protocol, "malformed presence reply"});
      return view.on_fetch_failed();
    }
    std::vector<presence_entry> members;
    members.reserve(p->members.size());
    for (const auto& [client, e] : p->members.by_client())
      members.push_back(e);
    view.on_fetched(p->pseq, std::move(members));
  });
}

namespace {
bool same_state(const value& a, const value& b) {
  if (a.is_nil() || b.is_nil()) return a.is_nil() == b.is_nil();
  return a.encode() == b.encode();
}
} // namespace

void session::set_presence_state(const std::string& room, value state,
                                 std::function<void(result<nothing>)> done) {
  if (state_ == connection_state::closed) {
    if (done) done(error{errc::closed, "the client is closed"});
    return;
  }
  auto it = rooms_.find(room);
  if (it == rooms_.end()) {
    // Not ours to remember: send it, the engine answers (not_subscribed, forbidden, …).
    const auto id = new_id();
    map_writer w("pset");
    w.u64("id", id).str("room", room).value("state", state);
    send_request(
        id, w.finish(),
        [done = std::move(done)](result<reply> r) {
          if (!done) return;
          if (r.ok()) return done(nothing{});
          done(r.error());
        },
        false);
    return;
  }
  subscription& r = *it->second;
  r.wanted_state = std::move(state);
  if (done) r.pset_waiters.push_back(std::move(done));
  if (connected_ && conn_ && r.presence.phase() != presence_view::phase_kind::idle) send_pset(r);
  // else: sent when the subscription is live (sync_state)
}

void session::send_pset(subscription& room) {
  if (!room.wanted_state || !connected_ || !conn_) return;
  const auto id = new_id();
  const std::string name = room.stream.room();
  map_writer w("pset");
  w.u64("id", id).str("room", name).value("state", *room.wanted_state);
  auto waiters = std::move(room.pset_waiters);
  room.pset_waiters.clear();
  ++room.psets_in_flight;
  std::weak_ptr<session> weak = weak_from_this();
  const auto token = room.token;
  send_internal("pset", id, w.finish(),
                [weak, name, token, sent = *room.wanted_state,
                 waiters = std::move(waiters)](result<reply> r) mutable {
                  auto s = weak.lock();
                  if (!s) return;
                  auto it = s->rooms_.find(name);
                  subscription* room = (it != s->rooms_.end() && it->second->token == token)
                                           ? it->second.get()
                                           : nullptr;
                  if (room && room->psets_in_flight > 0) --room->psets_in_flight;
                  if (r.ok()) {
                    if (room) {
                      room->acked_state = sent;
                      if (room->psets_in_flight == 0 && room->pset_stale) {
                        room->pset_stale = false; // a resubscription came between: set it again
                        s->send_pset(*room);
                      }
                    }
                    for (auto& w : waiters)
                      if (w) w(nothing{});
                    return;
                  }
                  const auto& code = r.error().code;
                  if (room && code == errc::disconnected) {
                    // Set again once resubscribed on the next connection; the callers wait for
                    // that.
                    room->pset_waiters.insert(room->pset_waiters.begin(),
                                              std::make_move_iterator(waiters.begin()),
                                              std::make_move_iterator(waiters.end()));
                    return;
                  }
                  if (room && code != errc::timeout && code != errc::closed && room->wanted_state &&
                      same_state(*room->wanted_state, sent)) {
                    room->wanted_state =
                        room->acked_state; // refused (too_large, …): keep the last good one
                  }
                  for (auto& w : waiters)
                    if (w) w(r.error());
                });
}

void session::sync_state(subscription& room) {
  if (!room.wanted_state) return;
  if (room.psets_in_flight > 0) {
    room.pset_stale = true; // it may have reached the old subscription: send again after it
    return;
  }
  const auto* self = room.presence.self();
  if (self && same_state(self->state, *room.wanted_state)) {
    auto waiters = std::move(room.pset_waiters);
    room.pset_waiters.clear();
    for (auto& w : waiters)
      if (w) w(nothing{});
    return;
  }
  send_pset(room);
}

void session::fail_room_waiters(subscription& room, const error& e) {
  auto waiters = std::move(room.pset_waiters);
  room.pset_waiters.clear();
  for (auto& w : waiters)
    if (w) w(e);
}

void session::typing(const std::string& room, bool on) {
  if (!(connected_ && conn_)) return; // ephemeral: nothing to send later
  auto it = rooms_.find(room);
  if (it != rooms_.end()) {
    subscription& r = *it->second;
    const auto now = clock::now();
    if (on) {
      if (r.typing_on && now - r.typing_sent < opts_.typing_refresh) return; // still fresh
      r.typing_on = true;
      r.typing_sent = now;
    } else {
      if (!r.typing_on) return;
      r.typing_on = false;
    }
  }
  map_writer w("typing");
  w.str("room", room).boolean("on", on);
  conn_->send(w.finish());
}

void session::with_presence(const std::string& room,
                            const std::function<void(const presence_view*)>& fn) {
  auto it = rooms_.find(room);
  fn(it == rooms_.end() ? nullptr : &it->second->presence);
}

void session::drop_next_pdiffs(const std::string& room, unsigned n) {
  auto it = rooms_.find(room);
  if (it != rooms_.end()) it->second->drop_pdiffs += n;
}

std::optional<log_position> session::position(const std::string& room) const {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !it->second->stream.has_position()) return std::nullopt;
  return log_position{it->second->stream.last_seq(), it->second->stream.epoch()};
}

} // namespace troupe::client
