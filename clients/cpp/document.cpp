#include "clients/cpp/document.hpp"

#include <future>
#include <map>
#include <random>
#include <variant>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "clients/cpp/map_view.hpp"
#include "clients/cpp/map_writer.hpp"

namespace troupe::client {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;
using Lock = std::lock_guard<std::recursive_mutex>;

const char* to_string(OpenKind k) {
  switch (k) {
    case OpenKind::initial: return "initial";
    case OpenKind::recovered: return "recovered";
    case OpenKind::rebuilt: return "rebuilt";
  }
  return "?";
}

// The registry's shared part: the documents by room, for the push handlers and the state
// listener (which outlive nothing: they hold it weakly).
struct Document::Core {
  explicit Core(Documents::Options o) : opts(o) {}

  std::shared_ptr<Document> find(const std::string& room) {
    std::lock_guard<std::mutex> l(m);
    auto it = docs.find(room);
    return it == docs.end() ? nullptr : it->second.lock();
  }
  std::vector<std::shared_ptr<Document>> all() {
    std::lock_guard<std::mutex> l(m);
    std::vector<std::shared_ptr<Document>> out;
    for (auto& [room, w] : docs)
      if (auto d = w.lock()) out.push_back(std::move(d));
    return out;
  }

  const Documents::Options opts;
  std::mutex m;
  std::map<std::string, std::weak_ptr<Document>> docs;
  std::string client_id;  // this connection's, from the last `connected`
};

struct Document::Timers {
  explicit Timers(const net::any_io_executor& ex) : retry(ex), cursor(ex) {}
  net::steady_timer retry;
  net::steady_timer cursor;
};

namespace {

std::string random_prefix() {
  std::random_device rd;
  const std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  static const char* hex = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 0; i < 16; ++i) s[static_cast<std::size_t>(i)] = hex[(v >> (4 * i)) & 0xf];
  return s;
}

std::optional<ot::operation> parse_op(const msgpack::object& o) {
  if (o.type != msgpack::type::ARRAY) return std::nullopt;
  std::vector<ot::wire_component> wire;
  wire.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    const auto& c = o.via.array.ptr[i];
    switch (c.type) {
      case msgpack::type::POSITIVE_INTEGER:
        if (c.via.u64 > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
        wire.emplace_back(static_cast<std::int64_t>(c.via.u64));
        break;
      case msgpack::type::NEGATIVE_INTEGER:
        wire.emplace_back(c.via.i64);
        break;
      case msgpack::type::STR:
        wire.emplace_back(std::string(c.via.str.ptr, c.via.str.size));
        break;
      default:
        return std::nullopt;
    }
  }
  auto r = ot::parse(wire);
  return std::move(r.op);
}

// `{rev, op, user, key}`: a push or an item of a recovered `opened`.
std::optional<DocOp> parse_doc_op(const msgpack::object& o) {
  MapView m(o);
  if (!m.is_map()) return std::nullopt;
  auto rev = m.u64("rev");
  const auto* op = m.get("op");
  if (!rev || !op) return std::nullopt;
  auto parsed = parse_op(*op);
  if (!parsed) return std::nullopt;
  DocOp d;
  d.rev = *rev;
  d.op = std::move(*parsed);
  d.user = m.id_string("user").value_or("");
  d.key = std::string(m.str("key").value_or(""));
  return d;
}

bool same_cursors(const std::vector<RemoteCursor>& a, const std::vector<RemoteCursor>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].client != b[i].client || a[i].user != b[i].user || a[i].pos != b[i].pos || a[i].anchor != b[i].anchor)
      return false;
  return true;
}

bool retryable(const std::string& code) {
  return code == "rate_limited" || code == "unavailable" || code == "internal";
}

}  // namespace

// --- Document ----------------------------------------------------------------------------------

Document::Document(std::shared_ptr<Core> core, Client& client, std::string room, DocumentHandlers h)
    : core_(std::move(core)),
      client_(client),
      room_(std::move(room)),
      h_(std::move(h)),
      st_(random_prefix(), core_->opts.keep_ops),
      view_(room_, *this),
      timers_(std::make_unique<Timers>(client.executor())) {}

Document::~Document() {
  if (phase_ != Phase::closed) {
    // The handle was dropped without close(): tell the engine, hear nothing.
    client_.request("close", [&](MapWriter& w) { w.str("room", room_); }, {});
  }
  unregister();
}

void Document::unregister() {
  std::lock_guard<std::mutex> l(core_->m);
  auto it = core_->docs.find(room_);
  if (it == core_->docs.end()) return;
  auto d = it->second.lock();
  if (!d || d.get() == this) core_->docs.erase(it);
}

std::string Document::text() const {
  Lock l(mu_);
  return st_.text();
}

std::size_t Document::length() const {
  Lock l(mu_);
  return st_.length();
}

std::uint64_t Document::rev() const {
  Lock l(mu_);
  return st_.rev();
}

bool Document::live() const {
  Lock l(mu_);
  return phase_ == Phase::open;
}

bool Document::pending() const {
  Lock l(mu_);
  return st_.pending();
}

void Document::read(const std::function<void(const ot::rope&)>& fn) const {
  Lock l(mu_);
  fn(st_.local());
}

void Document::inspect(const std::function<void(const DocumentState&)>& fn) const {
  Lock l(mu_);
  fn(st_);
}

// --- opening -----------------------------------------------------------------------------------

void Document::start_open(std::function<void(Result<DocumentOpened>)> done) {
  first_done_ = std::move(done);
  self_ = [&] {
    std::lock_guard<std::mutex> l(core_->m);
    return core_->client_id;
  }();
  if (phase_ == Phase::idle) send_open(false);
}

void Document::send_open(bool with_since) {
  phase_ = Phase::opening;
  const auto token = ++open_token_;
  const bool since = with_since && st_.opened();
  const auto rev = st_.rev();
  const auto epoch = st_.epoch();
  std::weak_ptr<Document> w = weak_from_this();
  client_.request(
      "open",
      [&](MapWriter& mw) {
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
      [w, token](Result<Reply> r) {
        if (auto d = w.lock()) {
          Lock l(d->mu_);
          d->on_opened_reply(token, std::move(r));
        }
      });
}

void Document::on_opened_reply(std::uint64_t token, Result<Reply> r) {
  if (token != open_token_ || phase_ != Phase::opening) return;  // superseded
  if (!r.ok()) {
    const auto& e = r.error();
    if (e.code == errc::disconnected) {
      phase_ = Phase::idle;  // opened again on the next `connected`
      return;
    }
    if (e.code == errc::timeout) return send_open(true);
    if (st_.opened() && retryable(e.code)) {
      phase_ = Phase::idle;
      report(e);
      return schedule_retry();
    }
    return fail_open(e);  // refused (forbidden, unavailable at first, …) or the client closed
  }

  const Reply& rep = r.value();
  const auto m = rep.map();
  const auto rev = m.u64("rev");
  const auto epoch = m.id_string("epoch");
  const bool recovered = m.boolean("recovered").value_or(false);
  const auto* ops_obj = m.get("ops");
  const auto text = m.str("text");
  if (!rev || !epoch || (recovered ? !ops_obj || ops_obj->type != msgpack::type::ARRAY : !text)) {
    report({errc::protocol, "malformed opened reply"});
    if (!st_.opened()) return fail_open({errc::protocol, "malformed opened reply"});
    phase_ = Phase::idle;
    return schedule_retry();
  }

  DocumentOpened ev;
  ev.room = room_;
  ev.rev = *rev;
  ev.epoch = *epoch;
  if (recovered) {
    std::vector<DocOp> ops;
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
    const bool ok = st_.open_recovered(*rev, *epoch, ops, [&](const DocOp& op, const ot::operation& local) {
      ++missed;
      on_remote_applied(op, local);
    });
    if (!ok) return send_open(false);  // it does not continue what we hold: start from the text
    ev.kind = OpenKind::recovered;
    ev.missed = missed;
  } else {
    const bool first = !st_.opened();
    bool kept = false;
    ev.dropped_local = st_.open_text(*rev, *epoch, *text, &kept);
    ev.kind = first ? OpenKind::initial : kept ? OpenKind::recovered : OpenKind::rebuilt;
    if (!kept && cursor_) cursor_.reset();  // it pointed into a text that is gone
  }
  phase_ = Phase::open;
  connected_ = true;
  failed_key_.clear();
  cursor_sent_.reset();  // publish again on this (re)opening
  cursor_dirty_ = cursor_.has_value();

  std::vector<PresenceEntry> members;
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
  if (phase_ != Phase::open) return;  // a callback closed it
  flush();
  flush_cursor();
  check_cursors();
  check_synced();
}

void Document::fail_open(const Error& e) {
  phase_ = Phase::closed;
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

void Document::on_connected(const std::string& client_id) {
  self_ = client_id;
  connected_ = true;
  if (phase_ == Phase::idle) send_open(true);
  // (opening: an `open` queued while disconnected goes out now.)
}

void Document::on_connection_lost() {
  ++gen_;
  connected_ = false;
  if (phase_ == Phase::open) phase_ = Phase::idle;
  st_.connection_lost();
  view_.on_connection_lost();
  cursor_sent_.reset();
  // (A first `open` still waiting fails through its request when the client closes.)
}

void Document::schedule_retry() {
  if (retry_armed_) return;
  retry_armed_ = true;
  timers_->retry.expires_after(core_->opts.retry);
  std::weak_ptr<Document> w = weak_from_this();
  timers_->retry.async_wait([w](boost::system::error_code ec) {
    auto d = w.lock();
    if (!d) return;
    Lock l(d->mu_);
    d->retry_armed_ = false;
    if (ec) return;
    if (d->phase_ == Phase::open)
      d->flush();
    else if (d->phase_ == Phase::idle && d->connected_)
      d->send_open(true);
  });
}

// --- operations --------------------------------------------------------------------------------

bool Document::edit(const ot::operation& op) {
  Lock l(mu_);
  if (phase_ == Phase::closed || !st_.edit(op)) return false;
  applied_edit();
  return true;
}

bool Document::insert(std::size_t pos, std::string_view utf8) {
  // Through parse(): the text is checked to be UTF-8 before it reaches the rope.
  auto p = ot::parse({static_cast<std::int64_t>(pos), std::string(utf8)});
  if (!p.op) return false;
  return edit(*p.op);
}

bool Document::remove(std::size_t pos, std::size_t n) {
  ot::operation op;
  op.retain(pos).remove(n);
  return edit(op);
}

bool Document::edit_with(const std::function<ot::operation(const ot::rope&)>& make) {
  Lock l(mu_);
  if (phase_ == Phase::closed || !st_.opened()) return false;
  return edit(make(st_.local()));
}

void Document::applied_edit() {
  flush();
  check_cursors();
  check_synced();
}

void Document::flush() {
  if (phase_ != Phase::open) return;
  auto s = st_.take_submit();
  if (!s) return;
  std::weak_ptr<Document> w = weak_from_this();
  client_.request(
      "op",
      [&](MapWriter& mw) {
        mw.str("room", room_).u64("rev", s->rev);
        mw.operation("op", s->op);
        mw.str("key", s->key);
      },
      [w, key = s->key, gen = gen_](Result<Reply> r) {
        if (auto d = w.lock()) {
          Lock l(d->mu_);
          d->on_op_reply(key, gen, std::move(r));
        }
      });
}

void Document::on_op_reply(const std::string& key, std::uint64_t gen, Result<Reply> r) {
  if (phase_ == Phase::closed) return;
  const auto* inflight = st_.inflight_key();
  if (!inflight || *inflight != key) return;  // settled already (e.g. by a recovered open)
  using O = DocumentState::Outcome;
  if (r.ok()) {
    const auto rev = r.value().map().u64("rev");
    if (!rev) {
      report({errc::protocol, "malformed ack"});
      return;
    }
    switch (st_.ack(key, *rev)) {
      case O::acked:
        flush();
        flush_cursor();
        arm_cursor_refresh();
        check_cursors();
        check_synced();
        break;
      case O::hole:  // operations before ours have not reached us: fetch them
        if (phase_ == Phase::open) send_open(true);
        break;
      case O::mismatch:
        report({errc::protocol, "ack for revision " + std::to_string(*rev) + ", which went to another operation"});
        if (phase_ == Phase::open) send_open(false);
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
    st_.resend();  // same key: the engine applies it once
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
    if (phase_ == Phase::open) send_open(true);
    return;
  }
  // Refused for good (bad_request, forbidden, a second conflict): drop what is pending.
  st_.refused();
  if (phase_ == Phase::open) send_open(false);
}

void Document::on_op_push(const Reply& r) {
  if (phase_ != Phase::open) return;  // before the reply of a (re)open: it covers this
  auto op = parse_doc_op(r.object());
  if (!op) {
    report({errc::protocol, "malformed op push"});
    return send_open(true);
  }
  auto res = st_.remote(*op);
  using O = DocumentState::Outcome;
  switch (res.outcome) {
    case O::applied:
      on_remote_applied(*op, res.local);
      arm_cursor_refresh();
      check_cursors();
      break;
    case O::acked:  // our own, seen through this connection before its ack
      flush();
      flush_cursor();
      arm_cursor_refresh();
      check_cursors();
      check_synced();
      break;
    case O::hole:
      send_open(true);
      break;
    case O::mismatch:
      report({errc::protocol, "operation " + std::to_string(op->rev) + " does not fit the document"});
      send_open(false);
      break;
    case O::stale:
      break;
  }
}

void Document::on_remote_applied(const DocOp& op, const ot::operation& local) {
  if (cursor_) {
    // Our cursor, not yet published, follows the text it points into.
    cursor_->pos = ot::transform_position(cursor_->pos, local);
    if (cursor_->anchor) cursor_->anchor = ot::transform_position(*cursor_->anchor, local);
  }
  if (h_.on_change) h_.on_change(DocumentChange{room_, op.rev, op.user, local});
}

void Document::check_synced() {
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

void Document::when_synced(std::function<void()> fn) {
  if (!fn) return;
  Lock l(mu_);
  if (st_.pending()) {
    synced_waiters_.push_back(std::move(fn));
    return;
  }
  net::post(client_.executor(), std::move(fn));
}

void Document::close(std::function<void(Result<Done>)> done) {
  Lock l(mu_);
  if (phase_ == Phase::closed) {
    if (done) net::post(client_.executor(), [done = std::move(done)] { done(Done{}); });
    return;
  }
  phase_ = Phase::closed;
  unregister();
  timers_->retry.cancel();
  timers_->cursor.cancel();
  if (first_done_) {
    auto fd = std::move(first_done_);
    first_done_ = nullptr;
    fd(Error{errc::closed, "closed before it was opened"});
  }
  client_.request("close", [&](MapWriter& w) { w.str("room", room_); },
                  [done = std::move(done)](Result<Reply> r) {
                    if (!done) return;
                    if (r.ok() || r.error().code == errc::disconnected) return done(Done{});
                    done(r.error());
                  });
}

void Document::report(const Error& e) {
  if (h_.on_error) h_.on_error(e);
}

// --- cursors and presence ------------------------------------------------------------------------

void Document::set_cursor(std::size_t pos, std::optional<std::size_t> anchor) {
  Lock l(mu_);
  cursor_ = WantedCursor{pos, anchor};
  cursor_dirty_ = true;
  flush_cursor();
}

void Document::flush_cursor() {
  if (phase_ != Phase::open || !cursor_ || !cursor_dirty_) return;
  auto c = st_.own_cursor(cursor_->pos, cursor_->anchor);
  if (!c) return;  // local changes pending: positions are not the server's yet (after the ack)
  cursor_dirty_ = false;
  if (cursor_sent_ && cursor_sent_->rev == c->rev && cursor_sent_->pos == c->pos &&
      cursor_sent_->anchor == c->anchor)
    return;
  send_cursor(*c);
}

void Document::send_cursor(const CursorAt& c) {
  auto state = st_.cursor_state(c.pos, c.anchor);
  if (!state) return;
  cursor_sent_ = c;
  std::weak_ptr<Document> w = weak_from_this();
  client_.request("pset", [&](MapWriter& mw) { mw.str("room", room_).value("state", *state); },
                  [w](Result<Reply> r) {
                    if (r.ok()) return;
                    const auto& code = r.error().code;
                    if (code == errc::disconnected || code == errc::closed) return;  // set again on reopen
                    if (auto d = w.lock()) {
                      Lock l(d->mu_);
                      d->report(r.error());
                    }
                  });
}

void Document::arm_cursor_refresh() {
  // Others place our cursor through the operations since its revision; one published long
  // ago may be older than a late joiner's log, so it is published again now and then.
  if (cursor_timer_armed_ || !cursor_sent_ || cursor_sent_->rev == st_.rev()) return;
  cursor_timer_armed_ = true;
  timers_->cursor.expires_after(core_->opts.cursor_refresh);
  std::weak_ptr<Document> w = weak_from_this();
  timers_->cursor.async_wait([w](boost::system::error_code ec) {
    auto d = w.lock();
    if (!d) return;
    Lock l(d->mu_);
    d->cursor_timer_armed_ = false;
    if (ec || d->phase_ != Phase::open || !d->cursor_ || !d->cursor_sent_) return;
    auto c = d->st_.own_cursor(d->cursor_->pos, d->cursor_->anchor);
    if (!c) return;  // pending: the ack re-arms it
    if (c->rev != d->cursor_sent_->rev) d->send_cursor(*c);
  });
}

std::vector<RemoteCursor> Document::remote_cursors() const {
  Lock l(mu_);
  return st_.remote_cursors();
}

PresenceSnapshot Document::presence() const {
  Lock l(mu_);
  return view_.snapshot();
}

void Document::check_cursors() {
  auto now = st_.remote_cursors();
  if (same_cursors(now, last_cursors_)) return;
  last_cursors_ = std::move(now);
  if (h_.on_cursors) h_.on_cursors(last_cursors_);
}

void Document::presence_changed(const PresenceEvent& ev) {
  for (const auto& e : ev.left) st_.remove_remote_cursor(e.client);
  auto place = [&](const PresenceEntry& e) {
    if (e.client != self_) st_.set_remote_cursor(e.client, e.user, parse_cursor(e.state));
  };
  for (const auto& e : ev.joined) place(e);
  for (const auto& e : ev.updated) place(e);
  if (ev.kind != PresenceEventKind::diff && ev.view) {
    // A snapshot reports changes against the view before it; a rebuilt document forgot the
    // cursors of the entries that did not change.
    for (const auto& [client, e] : ev.view->list().by_client())
      if (!st_.has_remote_cursor(client)) place(e);
  }
  if (h_.on_presence) h_.on_presence(ev);
  check_cursors();
}

void Document::fetch_presence(const std::string& room) {
  std::weak_ptr<Document> w = weak_from_this();
  client_.request("presence", [&](MapWriter& mw) { mw.str("room", room); },
                  [w](Result<Reply> r) {
                    auto d = w.lock();
                    if (!d) return;
                    Lock l(d->mu_);
                    if (!r.ok()) {
                      const auto& code = r.error().code;
                      if (code == errc::disconnected || code == errc::closed) return;  // the reopen rebuilds it
                      return d->view_.on_fetch_failed();
                    }
                    auto p = parse_presence(r.value());
                    if (!p) return d->view_.on_fetch_failed();
                    std::vector<PresenceEntry> members;
                    for (const auto& [client, e] : p->members.by_client()) members.push_back(e);
                    d->view_.on_fetched(p->pseq, std::move(members));
                  },
                  true);
}

void Document::on_pdiff(PresenceDiff d) {
  if (phase_ == Phase::closed) return;
  view_.on_diff(std::move(d));
}

// --- Documents -------------------------------------------------------------------------------------

Documents::Documents(Client& client) : Documents(client, Options{}) {}

Documents::Documents(Client& client, Options opts)
    : client_(client), core_(std::make_shared<Document::Core>(opts)) {
  std::weak_ptr<Document::Core> w = core_;
  client_.on_push("op", [w](const Reply& r) {
    auto core = w.lock();
    auto room = r.map().str("room");
    if (!core || !room) return;
    if (auto d = core->find(std::string(*room))) {
      Lock l(d->mu_);
      d->on_op_push(r);
    }
  });
  client_.on_push("pdiff", [w](const Reply& r) {
    auto core = w.lock();
    if (!core) return;
    auto diff = parse_pdiff(r);
    if (!diff) return;
    if (auto d = core->find(diff->room)) {
      Lock l(d->mu_);
      d->on_pdiff(std::move(*diff));
    }
  });
  client_.on_state([w](const StateEvent& ev) {
    auto core = w.lock();
    if (!core) return;
    if (ev.state == State::connected) {
      {
        std::lock_guard<std::mutex> l(core->m);
        core->client_id = ev.info.client;
      }
      for (auto& d : core->all()) {
        Lock l(d->mu_);
        d->on_connected(ev.info.client);
      }
    } else if (ev.state != State::idle) {
      for (auto& d : core->all()) {
        Lock l(d->mu_);
        d->on_connection_lost();
      }
    }
  });
}

Documents::~Documents() = default;

std::shared_ptr<Document> Documents::open(std::string room, DocumentHandlers handlers,
                                          std::function<void(Result<DocumentOpened>)> done) {
  std::shared_ptr<Document> doc(new Document(core_, client_, room, std::move(handlers)));
  bool taken = false;
  {
    std::lock_guard<std::mutex> l(core_->m);
    auto& slot = core_->docs[room];
    taken = !slot.expired();
    if (!taken) slot = doc;
  }
  Lock l(doc->mu_);
  if (taken) {
    doc->phase_ = Document::Phase::closed;
    if (done)
      net::post(client_.executor(), [done = std::move(done), room] { done(Error{"already_open", room}); });
    return doc;
  }
  doc->start_open(std::move(done));
  return doc;
}

// --- BlockingDocument --------------------------------------------------------------------------------

BlockingDocument::BlockingDocument(Documents& docs, std::string room) : docs_(docs), room_(std::move(room)) {}

BlockingDocument::~BlockingDocument() {
  if (doc_) doc_->close();
}

Document& BlockingDocument::doc() const {
  if (!doc_) throw ClientError(Error{errc::closed, "the document " + room_ + " was not opened"});
  return *doc_;
}

DocumentOpened BlockingDocument::open(Duration timeout) {
  auto s = s_;
  auto bump = [s](auto&& f) {
    std::lock_guard<std::mutex> l(s->m);
    f(*s);
    ++s->events;
    s->cv.notify_all();
  };
  DocumentHandlers h;
  h.on_change = [bump](const DocumentChange&) { bump([](Shared& x) { ++x.changes; }); };
  h.on_opened = [bump](const DocumentOpened& ev) { bump([&](Shared& x) { x.opened.push_back(ev); }); };
  h.on_cursors = [bump](const std::vector<RemoteCursor>&) { bump([](Shared&) {}); };
  h.on_presence = [bump](const PresenceEvent&) { bump([](Shared&) {}); };
  h.on_error = [bump](const Error& e) { bump([&](Shared& x) { x.errors.push_back(e); }); };
  h.on_synced = [bump] { bump([](Shared&) {}); };
  auto p = std::make_shared<std::promise<Result<DocumentOpened>>>();
  auto f = p->get_future();
  doc_ = docs_.open(room_, std::move(h), [p](Result<DocumentOpened> r) { p->set_value(std::move(r)); });
  if (f.wait_for(timeout) != std::future_status::ready)
    throw ClientError(Error{errc::timeout, "open " + room_ + ": no reply in time"});
  auto r = f.get();
  if (!r.ok()) throw ClientError(r.error());
  return r.value();
}

bool BlockingDocument::wait_until(const std::function<bool()>& ready, Duration timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard<std::mutex> l(s_->m);
      seen = s_->events;
    }
    if (ready()) return true;
    std::unique_lock<std::mutex> l(s_->m);
    // Woken by every callback; the slice catches changes no callback reports (local edits
    // by another thread, an ack with nothing else pending).
    const auto slice = std::min(deadline, Clock::now() + std::chrono::milliseconds(50));
    s_->cv.wait_until(l, slice, [&] { return s_->events != seen; });
    if (Clock::now() >= deadline) {
      l.unlock();
      return ready();
    }
  }
}

void BlockingDocument::wait_synced(Duration timeout) {
  auto p = std::make_shared<std::promise<void>>();
  auto f = p->get_future();
  doc().when_synced([p] { p->set_value(); });
  if (f.wait_for(timeout) != std::future_status::ready)
    throw ClientError(Error{errc::timeout, "document " + room_ + " not synced in time (rev " +
                                               std::to_string(doc().rev()) + ")"});
}

std::string BlockingDocument::wait_text(const std::function<bool(const std::string&)>& pred, Duration timeout) {
  std::string t;
  if (!wait_until([&] { return pred(t = doc().text()); }, timeout))
    throw ClientError(Error{errc::timeout, "document " + room_ + " text not as expected in time; last: " +
                                               t.substr(0, 200)});
  return t;
}

void BlockingDocument::wait_rev(std::uint64_t rev, Duration timeout) {
  auto& d = doc();
  if (!wait_until([&] { return d.live() && !d.pending() && d.rev() >= rev; }, timeout))
    throw ClientError(Error{errc::timeout, "document " + room_ + " did not reach rev " + std::to_string(rev) +
                                               " in time (at " + std::to_string(d.rev()) + ")"});
}

std::vector<RemoteCursor> BlockingDocument::wait_cursors(
    const std::function<bool(const std::vector<RemoteCursor>&)>& pred, Duration timeout) {
  std::vector<RemoteCursor> c;
  if (!wait_until([&] { return pred(c = doc().remote_cursors()); }, timeout)) {
    std::string desc;
    for (const auto& x : c)
      desc += " " + x.user + "/" + x.client + "@" + std::to_string(x.pos) +
              (x.anchor ? "-" + std::to_string(*x.anchor) : "");
    throw ClientError(Error{errc::timeout, "remote cursors of " + room_ + " not as expected in time; last:" + desc});
  }
  return c;
}

std::optional<DocumentOpened> BlockingDocument::next_opened(Duration timeout) {
  std::unique_lock<std::mutex> l(s_->m);
  if (!s_->cv.wait_for(l, timeout, [&] { return !s_->opened.empty(); })) return std::nullopt;
  auto ev = std::move(s_->opened.front());
  s_->opened.pop_front();
  return ev;
}

std::vector<Error> BlockingDocument::errors() {
  std::lock_guard<std::mutex> l(s_->m);
  return s_->errors;
}

std::optional<Error> BlockingDocument::wait_error(const std::string& code, Duration timeout) {
  std::unique_lock<std::mutex> l(s_->m);
  std::optional<Error> found;
  s_->cv.wait_for(l, timeout, [&] {
    for (const auto& e : s_->errors)
      if (e.code == code) {
        found = e;
        return true;
      }
    return false;
  });
  return found;
}

std::size_t BlockingDocument::changes() const {
  std::lock_guard<std::mutex> l(s_->m);
  return s_->changes;
}

void BlockingDocument::close(Duration timeout) {
  auto p = std::make_shared<std::promise<Result<Done>>>();
  auto f = p->get_future();
  doc().close([p](Result<Done> r) { p->set_value(std::move(r)); });
  if (f.wait_for(timeout) != std::future_status::ready)
    throw ClientError(Error{errc::timeout, "close " + room_ + ": no reply in time"});
  auto r = f.get();
  if (!r.ok()) throw ClientError(r.error());
}

}  // namespace troupe::client
