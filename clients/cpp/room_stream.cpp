#include "clients/cpp/room_stream.hpp"

namespace troupe::client {

std::optional<log_position> room_stream::begin_subscribe() {
  phase_ = phase_kind::subscribing;
  held_.clear();
  if (have_position_ && !rebuilding_)
    pending_since_ = log_position{last_, epoch_};
  else
    pending_since_.reset();
  return pending_since_;
}

void room_stream::deliver_next(const message& m) {
  last_ = m.seq;
  sink_.deliver(m);
}

void room_stream::drain() {
  while (!held_.empty()) {
    auto it = held_.begin();
    if (it->first <= last_) {
      held_.erase(it);
    } else if (it->first == last_ + 1) {
      message m = std::move(it->second);
      held_.erase(it);
      deliver_next(m);
    } else {
      break;
    }
  }
}

void room_stream::on_subscribed(subscribed_event ev) {
  if (phase_ != phase_kind::subscribing) return; // stale
  const bool asked_since = pending_since_.has_value();
  pending_since_.reset();
  if (ev.recovered && asked_since && have_position_) {
    ev.kind = subscribe_kind::recovered;
    held_.clear();
    for (const auto& m : ev.msgs) {
      if (m.seq <= last_) continue;
      if (m.seq == last_ + 1)
        deliver_next(m);
      else
        held_.emplace(m.seq, m);
    }
    epoch_ = ev.epoch;
    rebuilding_ = false;
    if (held_.empty() && last_ >= ev.seq) {
      phase_ = phase_kind::live;
      sink_.subscribed(ev);
      return;
    }
    // "Recovered" but with a hole: fill it like any other gap.
    phase_ = phase_kind::fetching;
    sink_.subscribed(ev);
    sink_.fetch_history(room_, last_);
    return;
  }
  ev.kind = (asked_since || rebuilding_) ? subscribe_kind::rebuilt : subscribe_kind::initial;
  rebuilding_ = false;
  held_.clear();
  last_ = ev.seq;
  epoch_ = ev.epoch;
  have_position_ = true;
  phase_ = phase_kind::live;
  sink_.subscribed(ev);
}

void room_stream::on_push(message m) {
  if (phase_ != phase_kind::live && phase_ != phase_kind::fetching) return; // recovery covers it
  if (m.seq <= last_) return;                                               // already delivered
  if (phase_ == phase_kind::live && m.seq == last_ + 1) {
    deliver_next(m);
    return;
  }
  held_.emplace(m.seq, std::move(m));
  if (phase_ == phase_kind::live) {
    phase_ = phase_kind::fetching;
    sink_.fetch_history(room_, last_);
    return;
  }
  drain();
}

void room_stream::on_history(const history_reply& h) {
  if (phase_ != phase_kind::fetching) return; // stale
  if (h.epoch != epoch_) return rebuild();
  bool progressed = false;
  bool hole = false;
  for (const auto& m : h.msgs) {
    if (m.seq <= last_) continue;
    if (m.seq != last_ + 1) {
      hole = true;
      break;
    }
    held_.erase(m.seq);
    deliver_next(m);
    progressed = true;
  }
  drain();
  if (held_.empty()) {
    phase_ = phase_kind::live;
    return;
  }
  if (hole || !progressed) return rebuild(); // the kept history no longer reaches back
  sink_.fetch_history(room_, last_);         // a page limit: ask for the rest
}

void room_stream::on_history_failed() {
  if (phase_ != phase_kind::fetching) return;
  // Let the server decide: resubscribe from our position.
  phase_ = phase_kind::subscribing;
  held_.clear();
  pending_since_ = log_position{last_, epoch_};
  sink_.resubscribe(room_, pending_since_);
}

void room_stream::rebuild() {
  phase_ = phase_kind::subscribing;
  held_.clear();
  rebuilding_ = true;
  pending_since_.reset();
  sink_.resubscribe(room_, std::nullopt);
}

void room_stream::on_connection_lost() {
  phase_ = phase_kind::idle;
  held_.clear();
  pending_since_.reset();
}

} // namespace troupe::client
