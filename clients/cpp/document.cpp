// document: opening, the connection, operations. Cursors and presence: document_cursors.cpp.
#include "clients/cpp/document.hpp"

#include <random>

#include <boost/asio/post.hpp>

#include "clients/cpp/decode.hpp"
#include "clients/cpp/document_registry.hpp"
#include "clients/cpp/map_view.hpp"
#include "clients/cpp/map_writer.hpp"

namespace troupe::client {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

const char* to_string(open_kind k) {
  switch (k) {
  case open_kind::initial:
    return "initial";
  case open_kind::recovered:
    return "recovered";
  case open_kind::rebuilt:
    return "rebuilt";
  }
  return "?";
}

namespace {

std::string random_prefix() {
  std::random_device rd;
  const std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  static const char* hex = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 0; i < 16; ++i)
    s[static_cast<std::size_t>(i)] = hex[(v >> (4 * i)) & 0xf];
  return s;
}

bool retryable(const std::string& code) {
  return code == "rate_limited" || code == "unavailable" || code == "internal";
}

} // namespace

// --- document ----------------------------------------------------------------------------------

document::document(std::shared_ptr<registry> core, connection& client, std::string room,
                   document_handlers h)
    : core_(std::move(core)), client_(client), room_(std::move(room)), h_(std::move(h)),
      st_(random_prefix(), core_->opts.keep_ops), view_(room_, *this),
      timers_(std::make_unique<timers>(client.executor())) {}

document::~document() {
  if (phase_ != phase_kind::closed) {
    // The handle was dropped without close(): tell the engine, hear nothing.
    client_.request("close", [&](map_writer& w) { w.str("room", room_); }, {});
  }
  unregister();
}

void document::unregister() {
  std::lock_guard<std::mutex> l(core_->m);
  auto it = core_->docs.find(room_);
  if (it == core_->docs.end()) return;
  auto d = it->second.lock();
  if (!d || d.get() == this) core_->docs.erase(it);
}

std::string document::text() const {
  lock_type l(mu_);
  return st_.text();
}

std::size_t document::length() const {
  lock_type l(mu_);
  return st_.length();
}

std::uint64_t document::rev() const {
  lock_type l(mu_);
  return st_.rev();
}

bool document::live() const {
  lock_type l(mu_);
  return phase_ == phase_kind::open;
}

bool document::pending() const {
  lock_type l(mu_);
  return st_.pending();
}

void document::read(const std::function<void(const ot::rope&)>& fn) const {
  lock_type l(mu_);
  fn(st_.local());
}

void document::inspect(const std::function<void(const document_state&)>& fn) const {
  lock_type l(mu_);
  fn(st_);
}

// --- opening -----------------------------------------------------------------------------------

void document::start_open(std::function<void(result<document_opened>)> done) {
  first_done_ = std::move(done);
  self_ = [&] {
    std::lock_guard<std::mutex> l(core_->m);
    return core_->client_id;
  }();
  if (phase_ == phase_kind::idle) send_open(false);
}

void document::send_open(bool with_since) {
  phase_ = phase_kind::opening;
  const auto token = ++open_token_;
  const bool since = with_since && st_.opened();
  const auto rev = st_.rev();
  const auto epoch = st_.epoch();
  std::weak_ptr<document> w = weak_from_this();
  client_.request(
      "open",
      [&](map_writer& mw) {
        mw.str("room", room_);
        if (since) {
          auto& pk = mw.begin("since");
          pk.pack_map(2);
          pk.pack(std::string_view("rev"));
          pk.pack_uint64(rev);
          pk.pack(std::string_view("epoch"));
          pk.pack(epoch);
        }
      },
      [w, token](result<reply> r) {
        if (auto d = w.lock()) {
          lock_type l(d->mu_);
          d->on_opened_reply(token, std::move(r));
        }
      });
}

void document::on_opened_reply(std::uint64_t token, result<reply> r) {
  if (token != open_token_ || phase_ != phase_kind::opening) return; // superseded
  if (!r.ok()) {
    const auto& e = r.error();
    if (e.code == errc::disconnected) {
      phase_ = phase_kind::idle; // opened again on the next `connected`
      return;
    }
    if (e.code == errc::timeout) return send_open(true);
    if (st_.opened() && retryable(e.code)) {
      phase_ = phase_kind::idle;
      report(e);
      return schedule_retry();
    }
    return fail_open(e); // refused (forbidden, unavailable at first, …) or the client closed
  }

  const reply& rep = r.value();
  const auto m = rep.map();
  const auto rev = m.u64("rev");
  const auto epoch = m.id_string("epoch");
  const bool recovered = m.boolean("recovered").value_or(false);
  const auto* ops_obj = m.get("ops");
  const auto text = m.str("text");
  if (!rev || !epoch || (recovered ? !ops_obj || ops_obj->type != msgpack::type::ARRAY : !text)) {
    report({errc::protocol, "malformed opened reply"});
    if (!st_.opened()) return fail_open({errc::protocol, "malformed opened reply"});
    phase_ = phase_kind::idle;
    return schedule_retry();
  }

  document_opened ev;
  ev.room = room_;
  ev.rev = *rev;
  ev.epoch = *epoch;
  if (recovered) {
    std::vector<doc_op> ops;
    ops.reserve(ops_obj->via.array.size);
    for (std::uint32_t i = 0; i < ops_obj->via.array.size; ++i) {
      auto op = parse_doc_op(ops_obj->via.array.ptr[i]);
      if (!op) {
        report({errc::protocol, "malformed operation in an opened reply"});
        return send_open(false);
      }
      ops.push_back(std::move(*op));
    }
    std::size_t missed = 0;
    const bool ok =
        st_.open_recovered(*rev, *epoch, ops, [&](const doc_op& op, const ot::operation& local) {
          ++missed;
          on_remote_applied(op, local);
        });
    if (!ok) return send_open(false); // it does not continue what we hold: start from the text
    ev.kind = open_kind::recovered;
    ev.missed = missed;
  } else {
    const bool first = !st_.opened();
    bool kept = false;
    ev.dropped_local = st_.open_text(*rev, *epoch, *text, &kept);
    ev.kind = first ? open_kind::initial : kept ? open_kind::recovered : open_kind::rebuilt;
    if (!kept && cursor_) cursor_.reset(); // it pointed into a text that is gone
  }
  phase_ = phase_kind::open;
  connected_ = true;
  failed_key_.clear();
  cursor_sent_.reset(); // publish again on this (re)opening
  cursor_dirty_ = cursor_.has_value();

  std::vector<presence_entry> members;
  if (const auto* mem = m.get("members")) {
    if (auto parsed = parse_presence_entries(*mem))
      members = std::move(*parsed);
    else
      report({errc::protocol, "malformed members in an opened reply"});
  }
  view_.on_subscribed(m.u64("pseq").value_or(0), std::move(members), self_);

  if (h_.on_opened) h_.on_opened(ev);
  if (first_done_) {
    auto done = std::move(first_done_);
    first_done_ = nullptr;
    done(ev);
  }
  if (phase_ != phase_kind::open) return; // a callback closed it
  flush();
  flush_cursor();
  check_cursors();
  check_synced();
}

void document::fail_open(const error& e) {
  phase_ = phase_kind::closed;
  unregister();
  if (first_done_) {
    auto done = std::move(first_done_);
    first_done_ = nullptr;
    done(e);
  } else {
    report(e);
  }
}

// --- the connection ----------------------------------------------------------------------------

void document::on_connected(const std::string& client_id) {
  self_ = client_id;
  connected_ = true;
  if (phase_ == phase_kind::idle) send_open(true);
  // (opening: an `open` queued while disconnected goes out now.)
}

void document::on_connection_lost() {
  ++gen_;
  connected_ = false;
  if (phase_ == phase_kind::open) phase_ = phase_kind::idle;
  st_.connection_lost();
  view_.on_connection_lost();
  cursor_sent_.reset();
  // (A first `open` still waiting fails through its request when the client closes.)
}

void document::schedule_retry() {
  if (retry_armed_) return;
  retry_armed_ = true;
  timers_->retry.expires_after(core_->opts.retry);
  std::weak_ptr<document> w = weak_from_this();
  timers_->retry.async_wait([w](boost::system::error_code ec) {
    auto d = w.lock();
    if (!d) return;
    lock_type l(d->mu_);
    d->retry_armed_ = false;
    if (ec) return;
    if (d->phase_ == phase_kind::open)
      d->flush();
    else if (d->phase_ == phase_kind::idle && d->connected_)
      d->send_open(true);
  });
}

// --- operations --------------------------------------------------------------------------------

bool document::edit(const ot::operation& op) {
  lock_type l(mu_);
  if (phase_ == phase_kind::closed || !st_.edit(op)) return false;
  applied_edit();
  return true;
}

bool document::insert(std::size_t pos, std::string_view utf8) {
  // Through parse(): the text is checked to be UTF-8 before it reaches the rope.
  auto p = ot::parse({static_cast<std::int64_t>(pos), std::string(utf8)});
  if (!p.op) return false;
  return edit(*p.op);
}

bool document::remove(std::size_t pos, std::size_t n) {
  ot::operation op;
  op.retain(pos).remove(n);
  return edit(op);
}

bool document::edit_with(const std::function<ot::operation(const ot::rope&)>& make) {
  lock_type l(mu_);
  if (phase_ == phase_kind::closed || !st_.opened()) return false;
  return edit(make(st_.local()));
}

void document::applied_edit() {
  flush();
  check_cursors();
  check_synced();
}

void document::flush() {
  if (phase_ != phase_kind::open) return;
  auto s = st_.take_submit();
  if (!s) return;
  std::weak_ptr<document> w = weak_from_this();
  client_.request(
      "op",
      [&](map_writer& mw) {
        mw.str("room", room_).u64("rev", s->rev);
        mw.operation("op", s->op);
        mw.str("key", s->key);
      },
      [w, key = s->key, gen = gen_](result<reply> r) {
        if (auto d = w.lock()) {
          lock_type l(d->mu_);
          d->on_op_reply(key, gen, std::move(r));
        }
      });
}

void document::on_op_reply(const std::string& key, std::uint64_t gen, result<reply> r) {
  if (phase_ == phase_kind::closed) return;
  const auto* inflight = st_.inflight_key();
  if (!inflight || *inflight != key) return; // settled already (e.g. by a recovered open)
  using outcome = document_state::outcome_kind;
  if (r.ok()) {
    const auto rev = r.value().map().u64("rev");
    if (!rev) {
      report({errc::protocol, "malformed ack"});
      return;
    }
    switch (st_.ack(key, *rev)) {
    case outcome::acked:
      own_op_acked();
      break;
    case outcome::hole: // operations before ours have not reached us: fetch them
      if (phase_ == phase_kind::open) send_open(true);
      break;
    case outcome::mismatch:
      report({errc::protocol,
              "ack for revision " + std::to_string(*rev) + ", which went to another operation"});
      if (phase_ == phase_kind::open) send_open(false);
      break;
    default:
      break;
    }
    return;
  }
  const auto& e = r.error();
  // Lost with the connection, or sent on an earlier one: it goes out again after the reopen.
  if (gen != gen_ || e.code == errc::disconnected || e.code == errc::closed) return;
  if (e.code == errc::timeout) {
    st_.resend(); // same key: the engine applies it once
    return flush();
  }
  if (retryable(e.code)) {
    st_.resend();
    return schedule_retry();
  }
  report(e);
  if (e.code == "conflict" && key != failed_key_) {
    // Its base revision is older than the engine's log. Ours has moved on since it was sent
    // (transformed over what arrived): reopen with since and send it again; if the log does
    // not reach back to us either, the reopen rebuilds from the text.
    failed_key_ = key;
    st_.resend();
    if (phase_ == phase_kind::open) send_open(true);
    return;
  }
  // Refused for good (bad_request, forbidden, a second conflict): drop what is pending.
  st_.refused();
  if (phase_ == phase_kind::open) send_open(false);
}

void document::on_op_push(const reply& r) {
  if (phase_ != phase_kind::open) return; // before the reply of a (re)open: it covers this
  auto op = parse_doc_op(r.object());
  if (!op) {
    report({errc::protocol, "malformed op push"});
    return send_open(true);
  }
  auto res = st_.remote(*op);
  using outcome = document_state::outcome_kind;
  switch (res.outcome) {
  case outcome::applied:
    on_remote_applied(*op, res.local);
    arm_cursor_refresh();
    check_cursors();
    break;
  case outcome::acked: // our own, seen through this connection before its ack
    own_op_acked();
    break;
  case outcome::hole:
    send_open(true);
    break;
  case outcome::mismatch:
    report({errc::protocol, "operation " + std::to_string(op->rev) + " does not fit the document"});
    send_open(false);
    break;
  case outcome::stale:
    break;
  }
}

void document::own_op_acked() {
  flush();
  flush_cursor();
  arm_cursor_refresh();
  check_cursors();
  check_synced();
}

void document::on_remote_applied(const doc_op& op, const ot::operation& local) {
  if (cursor_) {
    // Our cursor, not yet published, follows the text it points into.
    cursor_->pos = ot::transform_position(cursor_->pos, local);
    if (cursor_->anchor) cursor_->anchor = ot::transform_position(*cursor_->anchor, local);
  }
  if (h_.on_change) h_.on_change(document_change{room_, op.rev, op.user, local});
}

void document::check_synced() {
  const bool pending = st_.pending();
  if (pending) {
    was_pending_ = true;
    return;
  }
  auto waiters = std::move(synced_waiters_);
  synced_waiters_.clear();
  for (auto& w : waiters)
    if (w) w();
  if (was_pending_) {
    was_pending_ = false;
    if (h_.on_synced) h_.on_synced();
  }
}

void document::when_synced(std::function<void()> fn) {
  if (!fn) return;
  lock_type l(mu_);
  if (st_.pending()) {
    synced_waiters_.push_back(std::move(fn));
    return;
  }
  net::post(client_.executor(), std::move(fn));
}

void document::close(std::function<void(result<nothing>)> done) {
  lock_type l(mu_);
  if (phase_ == phase_kind::closed) {
    if (done) net::post(client_.executor(), [done = std::move(done)] { done(nothing{}); });
    return;
  }
  phase_ = phase_kind::closed;
  unregister();
  timers_->retry.cancel();
  timers_->cursor.cancel();
  if (first_done_) {
    auto fd = std::move(first_done_);
    first_done_ = nullptr;
    fd(error{errc::closed, "closed before it was opened"});
  }
  client_.request(
      "close", [&](map_writer& w) { w.str("room", room_); },
      [done = std::move(done)](result<reply> r) {
        if (!done) return;
        if (r.ok() || r.error().code == errc::disconnected) return done(nothing{});
        done(r.error());
      });
}

void document::report(const error& e) {
  if (h_.on_error) h_.on_error(e);
}

} // namespace troupe::client
