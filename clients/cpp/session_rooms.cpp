// session: the subscribed rooms' streams (sub, unsub, history, resubscription).
#include "clients/cpp/session.hpp"

#include "clients/cpp/decode.hpp"
#include "clients/cpp/map_writer.hpp"
#include "clients/cpp/ws_connection.hpp"

namespace troupe::client {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

void session::subscribe(std::string room, room_handlers handlers,
                        std::function<void(result<subscribed_event>)> done) {
  if (rooms_.count(room)) {
    if (done) done(error{errc::already_subscribed, room});
    return;
  }
  if (state_ == connection_state::closed) {
    if (done) done(error{errc::closed, "the client is closed"});
    return;
  }
  auto r = std::make_unique<subscription>(room, static_cast<room_stream::sink&>(*this),
                                          static_cast<presence_view::sink&>(*this));
  r->handlers = std::move(handlers);
  r->first_done = std::move(done);
  r->token = ++room_tokens_;
  auto& ref = *r;
  rooms_.emplace(room, std::move(r));
  if (connected_ && conn_) send_sub(ref, ref.stream.begin_subscribe());
}

void session::unsubscribe(std::string room, std::function<void(result<nothing>)> done) {
  auto it = rooms_.find(room);
  if (it == rooms_.end()) {
    if (done) done(nothing{});
    return;
  }
  fail_room_waiters(*it->second, error{errc::closed, "unsubscribed"});
  if (it->second->first_done) {
    auto fd = std::move(it->second->first_done);
    fd(error{errc::closed, "unsubscribed before the subscription completed"});
  }
  rooms_.erase(it);
  if (!(connected_ && conn_)) {
    if (done) done(nothing{});
    return;
  }
  const auto id = new_id();
  map_writer w("unsub");
  w.u64("id", id).str("room", room);
  send_internal("unsub", id, w.finish(), [done = std::move(done)](result<reply> r) {
    if (!done) return;
    if (r.ok())
      done(nothing{});
    else if (r.error().code == errc::disconnected)
      done(nothing{}); // the subscription ended with the connection anyway
    else
      done(r.error());
  });
}

void session::send_sub(subscription& room, const std::optional<log_position>& since) {
  const auto id = new_id();
  room.sub_id = id;
  const std::string name = room.stream.room();
  map_writer w("sub");
  w.u64("id", id).str("room", name);
  if (since) {
    auto& pk = w.begin("since");
    pk.pack_map(2);
    pk.pack(std::string_view("seq"));
    pk.pack_uint64(since->seq);
    pk.pack(std::string_view("epoch"));
    pk.pack(since->epoch);
  }
  std::weak_ptr<session> weak = weak_from_this();
  const auto token = room.token;
  send_internal("sub", id, w.finish(), [weak, name, token, id](result<reply> r) {
    auto s = weak.lock();
    if (!s) return;
    auto it = s->rooms_.find(name);
    if (it == s->rooms_.end() || it->second->token != token || it->second->sub_id != id) return;
    subscription& room = *it->second;
    std::optional<subscribed_event> ev;
    error err;
    if (r.ok()) {
      ev = parse_subscribed(r.value());
      if (!ev) err = error{errc::protocol, "malformed subscribed reply"};
    } else {
      err = r.error();
      if (err.code == errc::disconnected || err.code == errc::closed) return;
      if (err.code == errc::timeout) return s->fail_connection("no `subscribed` reply in time");
    }
    if (ev) {
      // The reply is for the room we asked about, whatever it says.
      ev->room = name;
      for (auto& m : ev->msgs)
        m.room = name;
      // Presence first, so that the view is complete when on_subscribed / done are called.
      std::vector<presence_entry> members;
      if (!ev->members.is_nil()) {
        auto parsed = parse_presence_entries(ev->members.object());
        if (parsed)
          members = std::move(*parsed);
        else
          s->report_error({errc::protocol, "malformed members in a subscribed reply"});
      }
      room.typing_on = false; // the engine forgot it with the old subscription
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

void session::deliver(const message& m) {
  auto it = rooms_.find(m.room);
  if (it != rooms_.end() && it->second->handlers.on_message) it->second->handlers.on_message(m);
}

void session::subscribed(const subscribed_event& ev) {
  auto it = rooms_.find(ev.room);
  if (it == rooms_.end()) return;
  subscription& room = *it->second;
  if (room.handlers.on_subscribed) room.handlers.on_subscribed(ev);
  if (room.first_done) {
    auto done = std::move(room.first_done);
    room.first_done = nullptr;
    done(ev);
  }
}

void session::fetch_history(const std::string& room, std::uint64_t since) {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !connected_) return;
  const auto id = new_id();
  map_writer w("history");
  w.u64("id", id).str("room", room).u64("since", since);
  std::weak_ptr<session> weak = weak_from_this();
  const auto token = it->second->token;
  send_internal("history", id, w.finish(), [weak, room, token](result<reply> r) {
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
    for (auto& m : h->msgs)
      m.room = room;
    stream.on_history(*h);
  });
}

void session::resubscribe(const std::string& room, const std::optional<log_position>& since) {
  auto it = rooms_.find(room);
  if (it == rooms_.end() || !connected_) return;
  const auto id = new_id();
  map_writer w("unsub");
  w.u64("id", id).str("room", room);
  send_internal("unsub", id, w.finish(), [](result<reply>) {});
  send_sub(*it->second, since);
}

} // namespace troupe::client
