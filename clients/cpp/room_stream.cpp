#include "clients/cpp/room_stream.hpp"

namespace troupe::client {

std::optional<Since> RoomStream::begin_subscribe() {
  phase_ = Phase::subscribing;
  held_.clear();
  if (have_position_ && !rebuilding_)
    pending_since_ = Since{last_, epoch_};
  else
    pending_since_.reset();
  return pending_since_;
}

void RoomStream::deliver_next(const Message& m) {
  last_ = m.seq;
  sink_.deliver(m);
}

void RoomStream::drain() {
  while (!held_.empty()) {
    auto it = held_.begin();
    if (it->first <= last_) {
      held_.erase(it);
    } else if (it->first == last_ + 1) {
      Message m = std::move(it->second);
      held_.erase(it);
      deliver_next(m);
    } else {
      break;
    }
  }
}

void RoomStream::on_subscribed(SubscribedEvent ev) {
  if (phase_ != Phase::subscribing) return;  // stale
  const bool asked_since = pending_since_.has_value();
  pending_since_.reset();
  if (ev.recovered && asked_since && have_position_) {
    ev.kind = SubscribeKind::recovered;
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
      phase_ = Phase::live;
      sink_.subscribed(ev);
      return;
    }
    // "Recovered" but with a hole: fill it like any other gap.
    phase_ = Phase::fetching;
    sink_.subscribed(ev);
    sink_.fetch_history(room_, last_);
    return;
  }
  ev.kind = (asked_since || rebuilding_) ? SubscribeKind::rebuilt : SubscribeKind::initial;
  rebuilding_ = false;
  held_.clear();
  last_ = ev.seq;
  epoch_ = ev.epoch;
  have_position_ = true;
  phase_ = Phase::live;
  sink_.subscribed(ev);
}

void RoomStream::on_push(Message m) {
  if (phase_ != Phase::live && phase_ != Phase::fetching) return;  // recovery covers it
  if (m.seq <= last_) return;                                      // already delivered
  if (phase_ == Phase::live && m.seq == last_ + 1) {
    deliver_next(m);
    return;
  }
  held_.emplace(m.seq, std::move(m));
  if (phase_ == Phase::live) {
    phase_ = Phase::fetching;
    sink_.fetch_history(room_, last_);
    return;
  }
  drain();
}

void RoomStream::on_history(const HistoryReply& h) {
  if (phase_ != Phase::fetching) return;  // stale
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
    phase_ = Phase::live;
    return;
  }
  if (hole || !progressed) return rebuild();  // the kept history no longer reaches back
  sink_.fetch_history(room_, last_);          // a page limit: ask for the rest
}

void RoomStream::on_history_failed() {
  if (phase_ != Phase::fetching) return;
  // Let the server decide: resubscribe from our position.
  phase_ = Phase::subscribing;
  held_.clear();
  pending_since_ = Since{last_, epoch_};
  sink_.resubscribe(room_, pending_since_);
}

void RoomStream::rebuild() {
  phase_ = Phase::subscribing;
  held_.clear();
  rebuilding_ = true;
  pending_since_.reset();
  sink_.resubscribe(room_, std::nullopt);
}

void RoomStream::on_connection_lost() {
  phase_ = Phase::idle;
  held_.clear();
  pending_since_.reset();
}

}  // namespace troupe::client
