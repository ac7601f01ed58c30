#include "clients/cpp/document_state.hpp"

#include <algorithm>
#include <utility>

#include <msgpack.hpp>

#include "clients/cpp/map_view.hpp"

namespace troupe::client {

document_state::document_state(std::string key_prefix, std::size_t keep_ops)
    : prefix_(std::move(key_prefix)), keep_(keep_ops) {}

std::string document_state::next_key() { return prefix_ + "-" + std::to_string(++counter_); }

// --- the server's side -------------------------------------------------------------------

void document_state::reset_to(std::uint64_t rev, std::string epoch, std::string_view text) {
  opened_ = true;
  rev_ = rev;
  epoch_ = std::move(epoch);
  server_ = ot::rope(text);
  local_ = server_;
  inflight_.reset();
  buffer_.reset();
  sent_ = false;
  refused_ = false;
  log_.clear();
  // Positions refer to a text we no longer hold: the next presence snapshot places them again.
  cursors_.clear();
  parked_.clear();
}

bool document_state::open_text(std::uint64_t rev, std::string epoch, std::string_view text,
                               bool* kept) {
  const bool same = opened_ && !refused_ && epoch == epoch_ && rev == rev_ &&
                    server_.size_bytes() == text.size() && server_.to_string() == text;
  if (kept) *kept = same;
  if (same) {
    sent_ = false; // nothing was lost: send the in-flight operation again (same key)
    return false;
  }
  const bool dropped = pending();
  reset_to(rev, std::move(epoch), text);
  return dropped;
}

bool document_state::open_recovered(
    std::uint64_t rev, const std::string& epoch, const std::vector<doc_op>& ops,
    const std::function<void(const doc_op&, const ot::operation&)>& applied) {
  if (!opened_ || refused_ || epoch != epoch_ || rev < rev_) return false;
  for (const auto& op : ops) {
    if (op.rev <= rev_) continue; // the reply may start earlier than we need
    if (op.rev != rev_ + 1 || op.rev > rev) return false;
    auto r = remote(op);
    if (r.outcome == outcome_kind::applied) {
      if (applied) applied(op, r.local);
    } else if (r.outcome != outcome_kind::acked) {
      return false;
    }
  }
  if (rev_ != rev) return false;
  sent_ = false; // whatever is in flight now goes out again on this connection (same key)
  return true;
}

document_state::applied document_state::remote(const doc_op& in) {
  applied out;
  if (!opened_ || in.rev <= rev_) return out; // stale
  if (in.rev != rev_ + 1) {
    out.outcome = outcome_kind::hole;
    return out;
  }
  if (inflight_ && !in.key.empty() && in.key == inflight_->key) {
    // Our own operation, accepted (seen through another connection, or a recovered open).
    out.outcome = ack(in.key, in.rev);
    return out;
  }
  if (!ot::fits(in.op, server_.size())) {
    out.outcome = outcome_kind::mismatch;
    return out;
  }
  // The server accepted `in` before ours: ours keep their inserts first at a tie (left),
  // and it goes behind them (right), as the server will do with ours.
  ot::operation incoming = in.op;
  if (inflight_) {
    auto a = ot::transform(inflight_->op, incoming, ot::side::left);
    incoming = ot::transform(incoming, inflight_->op, ot::side::right);
    inflight_->op = std::move(a);
  }
  if (buffer_) {
    auto c = ot::transform(*buffer_, incoming, ot::side::left);
    incoming = ot::transform(incoming, *buffer_, ot::side::right);
    buffer_ = std::move(c);
  }
  advance(in.op);
  ot::apply(local_, incoming);
  out.outcome = outcome_kind::applied;
  out.local = std::move(incoming);
  return out;
}

document_state::outcome_kind document_state::ack(const std::string& key, std::uint64_t rev) {
  if (!inflight_ || key != inflight_->key) return outcome_kind::stale;
  if (rev > rev_ + 1) return outcome_kind::hole;  // operations before ours never reached us
  if (rev <= rev_) return outcome_kind::mismatch; // that revision went to another operation
  auto op = std::move(inflight_->op);
  inflight_.reset();
  sent_ = false;
  advance(op);
  promote_buffer();
  return outcome_kind::acked;
}

void document_state::promote_buffer() {
  if (!buffer_) return;
  if (buffer_->empty()) { // edits that cancelled out: nothing to send
    buffer_.reset();
    return;
  }
  inflight_ = in_flight_op{std::move(*buffer_), next_key(), rev_};
  buffer_.reset();
  sent_ = false;
}

void document_state::advance(const ot::operation& op) {
  ot::apply(server_, op);
  ++rev_;
  if (keep_ > 0) {
    log_.push_back(op);
    while (log_.size() > keep_)
      log_.pop_front();
  }
  for (auto& [client, c] : cursors_) {
    c.at.pos = ot::transform_position(c.at.pos, op);
    if (c.at.anchor) c.at.anchor = ot::transform_position(*c.at.anchor, op);
    c.at.rev = rev_;
  }
  // Parked cursors whose revision has come.
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (it->second.at.rev <= rev_) {
      auto s = std::move(it->second);
      auto client = it->first;
      it = parked_.erase(it);
      place(client, std::move(s));
    } else {
      ++it;
    }
  }
}

void document_state::connection_lost() { sent_ = false; }

// --- the local side --------------------------------------------------------------------------

bool document_state::edit(const ot::operation& op) {
  if (!opened_ || !ot::fits(op, local_.size())) return false;
  if (op.empty()) return true;
  ot::apply(local_, op);
  if (!inflight_) {
    inflight_ = in_flight_op{op, next_key(), rev_};
    sent_ = false;
  } else if (buffer_) {
    buffer_ = ot::compose(*buffer_, op);
  } else {
    buffer_ = op;
  }
  return true;
}

std::optional<document_state::submit> document_state::take_submit() {
  if (!inflight_ || sent_ || refused_) return std::nullopt;
  sent_ = true;
  return submit{rev_, inflight_->op, inflight_->key};
}

// --- cursors -----------------------------------------------------------------------------------

std::size_t document_state::through_log(std::size_t pos, std::uint64_t from_rev) const {
  // log_ holds the operations of revs rev_ - size + 1 … rev_.
  const std::uint64_t first = rev_ - log_.size() + 1;
  if (from_rev + 1 < first) return std::min(pos, server_.size()); // too old: best effort
  for (std::size_t i = static_cast<std::size_t>(from_rev + 1 - first); i < log_.size(); ++i)
    pos = ot::transform_position(pos, log_[i]);
  return pos;
}

void document_state::place(const std::string& client, stored_cursor s) {
  if (s.at.rev > rev_) {
    // Until its revision arrives, the previous cursor (if any) stays on show.
    parked_[client] = std::move(s);
    return;
  }
  if (s.at.rev < rev_) {
    s.at.pos = through_log(s.at.pos, s.at.rev);
    if (s.at.anchor) s.at.anchor = through_log(*s.at.anchor, s.at.rev);
    s.at.rev = rev_;
  }
  // A cursor that does not fit the text (a confused peer) is kept inside it.
  const auto n = server_.size();
  s.at.pos = std::min(s.at.pos, n);
  if (s.at.anchor) s.at.anchor = std::min(*s.at.anchor, n);
  parked_.erase(client);
  cursors_[client] = std::move(s);
}

void document_state::set_remote_cursor(const std::string& client, const std::string& user,
                                       std::optional<cursor_at> c) {
  if (!c) return remove_remote_cursor(client);
  place(client, stored_cursor{user, *c});
}

void document_state::remove_remote_cursor(const std::string& client) {
  cursors_.erase(client);
  parked_.erase(client);
}

void document_state::clear_remote_cursors() {
  cursors_.clear();
  parked_.clear();
}

std::vector<remote_cursor> document_state::remote_cursors() const {
  std::vector<remote_cursor> out;
  out.reserve(cursors_.size());
  auto local = [this](std::size_t p) {
    if (inflight_) p = ot::transform_position(p, inflight_->op);
    if (buffer_) p = ot::transform_position(p, *buffer_);
    return p;
  };
  for (const auto& [client, c] : cursors_) {
    remote_cursor r;
    r.client = client;
    r.user = c.user;
    r.pos = local(c.at.pos);
    if (c.at.anchor) r.anchor = local(*c.at.anchor);
    out.push_back(std::move(r));
  }
  return out;
}

std::optional<cursor_at> document_state::own_cursor(std::size_t pos,
                                                    std::optional<std::size_t> anchor) const {
  if (!opened_ || pending()) return std::nullopt;
  const auto n = server_.size();
  cursor_at c;
  c.rev = rev_;
  c.pos = std::min(pos, n);
  if (anchor) c.anchor = std::min(*anchor, n);
  return c;
}

std::optional<value> document_state::cursor_state(std::size_t pos,
                                                  std::optional<std::size_t> anchor) const {
  auto c = own_cursor(pos, anchor);
  if (!c) return std::nullopt;
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(1);
  pk.pack(std::string_view("cursor"));
  pk.pack_map(c->anchor ? 3 : 2);
  pk.pack(std::string_view("rev"));
  pk.pack_uint64(c->rev);
  pk.pack(std::string_view("pos"));
  pk.pack_uint64(c->pos);
  if (c->anchor) {
    pk.pack(std::string_view("anchor"));
    pk.pack_uint64(*c->anchor);
  }
  return value::from_encoded(std::string_view(buf.data(), buf.size()));
}

std::optional<cursor_at> parse_cursor(const value& state) {
  if (state.type() != msgpack::type::MAP) return std::nullopt;
  const auto* cur = map_view(state.object()).get("cursor");
  if (!cur) return std::nullopt;
  map_view m(*cur);
  if (!m.is_map()) return std::nullopt;
  auto rev = m.u64("rev");
  auto pos = m.u64("pos");
  if (!rev || !pos) return std::nullopt;
  cursor_at c;
  c.rev = *rev;
  c.pos = static_cast<std::size_t>(*pos);
  if (auto a = m.u64("anchor")) c.anchor = static_cast<std::size_t>(*a);
  return c;
}

} // namespace troupe::client
