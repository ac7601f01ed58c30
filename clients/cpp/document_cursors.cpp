// document: cursors (own and remote) and the presence view of its room.
#include "clients/cpp/document.hpp"

#include <boost/asio/post.hpp>

#include "clients/cpp/decode.hpp"
#include "clients/cpp/document_registry.hpp"
#include "clients/cpp/map_writer.hpp"

namespace troupe::client {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

bool same_cursors(const std::vector<remote_cursor>& a, const std::vector<remote_cursor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].client != b[i].client || a[i].user != b[i].user || a[i].pos != b[i].pos ||
        a[i].anchor != b[i].anchor)
      return false;
  return true;
}

} // namespace

// --- cursors and presence ------------------------------------------------------------------------

void document::set_cursor(std::size_t pos, std::optional<std::size_t> anchor) {
  lock_type l(mu_);
  cursor_ = wanted_cursor{pos, anchor};
  cursor_dirty_ = true;
  flush_cursor();
}

void document::flush_cursor() {
  if (phase_ != phase_kind::open || !cursor_ || !cursor_dirty_) return;
  auto c = st_.own_cursor(cursor_->pos, cursor_->anchor);
  if (!c) return; // local changes pending: positions are not the server's yet (after the ack)
  cursor_dirty_ = false;
  if (cursor_sent_ && cursor_sent_->rev == c->rev && cursor_sent_->pos == c->pos &&
      cursor_sent_->anchor == c->anchor)
    return;
  send_cursor(*c);
}

void document::send_cursor(const cursor_at& c) {
  auto state = st_.cursor_state(c.pos, c.anchor);
  if (!state) return;
  cursor_sent_ = c;
  std::weak_ptr<document> w = weak_from_this();
  client_.request(
      "pset", [&](map_writer& mw) { mw.str("room", room_).value("state", *state); },
      [w](result<reply> r) {
        if (r.ok()) return;
        const auto& code = r.error().code;
        if (code == errc::disconnected || code == errc::closed) return; // set again on reopen
        if (auto d = w.lock()) {
          lock_type l(d->mu_);
          d->report(r.error());
        }
      });
}

void document::arm_cursor_refresh() {
  // Others place our cursor through the operations since its revision; one published long
  // ago may be older than a late joiner's log, so it is published again now and then.
  if (cursor_timer_armed_ || !cursor_sent_ || cursor_sent_->rev == st_.rev()) return;
  cursor_timer_armed_ = true;
  timers_->cursor.expires_after(core_->opts.cursor_refresh);
  std::weak_ptr<document> w = weak_from_this();
  timers_->cursor.async_wait([w](boost::system::error_code ec) {
    auto d = w.lock();
    if (!d) return;
    lock_type l(d->mu_);
    d->cursor_timer_armed_ = false;
    if (ec || d->phase_ != phase_kind::open || !d->cursor_ || !d->cursor_sent_) return;
    auto c = d->st_.own_cursor(d->cursor_->pos, d->cursor_->anchor);
    if (!c) return; // pending: the ack re-arms it
    if (c->rev != d->cursor_sent_->rev) d->send_cursor(*c);
  });
}

std::vector<remote_cursor> document::remote_cursors() const {
  lock_type l(mu_);
  return st_.remote_cursors();
}

presence_snapshot document::presence() const {
  lock_type l(mu_);
  return view_.snapshot();
}

void document::check_cursors() {
  auto now = st_.remote_cursors();
  if (same_cursors(now, last_cursors_)) return;
  last_cursors_ = std::move(now);
  if (h_.on_cursors) h_.on_cursors(last_cursors_);
}

void document::presence_changed(const presence_event& ev) {
  for (const auto& e : ev.left)
    st_.remove_remote_cursor(e.client);
  auto place = [&](const presence_entry& e) {
    if (e.client != self_) st_.set_remote_cursor(e.client, e.user, parse_cursor(e.state));
  };
  for (const auto& e : ev.joined)
    place(e);
  for (const auto& e : ev.updated)
    place(e);
  if (ev.kind != presence_event_kind::diff && ev.view) {
    // A snapshot reports changes against the view before it; a rebuilt document forgot the
    // cursors of the entries that did not change.
    for (const auto& [client, e] : ev.view->list().by_client())
      if (!st_.has_remote_cursor(client)) place(e);
  }
  if (h_.on_presence) h_.on_presence(ev);
  check_cursors();
}

void document::fetch_presence(const std::string& room) {
  std::weak_ptr<document> w = weak_from_this();
  client_.request(
      "presence", [&](map_writer& mw) { mw.str("room", room); },
      [w](result<reply> r) {
        auto d = w.lock();
        if (!d) return;
        lock_type l(d->mu_);
        if (!r.ok()) {
          const auto& code = r.error().code;
          if (code == errc::disconnected || code == errc::closed) return; // the reopen rebuilds it
          return d->view_.on_fetch_failed();
        }
        auto p = parse_presence(r.value());
        if (!p) return d->view_.on_fetch_failed();
        std::vector<presence_entry> members;
        for (const auto& [client, e] : p->members.by_client())
          members.push_back(e);
        d->view_.on_fetched(p->pseq, std::move(members));
      },
      true);
}

void document::on_pdiff(presence_diff d) {
  if (phase_ == phase_kind::closed) return;
  view_.on_diff(std::move(d));
}

} // namespace troupe::client
