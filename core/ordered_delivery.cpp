#include "core/ordered_delivery.hpp"

#include <algorithm>
#include <utility>

namespace troupe::core {

ordered_delivery::ordered_delivery(limits l) : limits_(l) {
  limits_.repair_batch = std::max<std::size_t>(limits_.repair_batch, 1);
}

delivery_actions ordered_delivery::seed(std::string epoch, std::uint64_t top) {
  delivery_actions out;
  if (epoch.empty() && top == 0 && !epoch_.empty()) {
    // A room with no log at the read, and messages of an epoch buffered since: the room's
    // first publishes raced the read. Adopt their epoch (if they were from a log lost just
    // before the read, the next message of the new epoch resets: loud, never a hole).
    epoch = epoch_;
  } else if (epoch != epoch_) {
    // Buffered messages of another epoch: seqs that mean nothing against this read.
    buffer_.clear();
    known_top_ = 0;
  }
  seeded_ = true;
  epoch_ = std::move(epoch);
  next_ = top + 1;
  known_top_ = std::max(known_top_, top);
  in_flight_.reset();
  drain(out);
  request_repair(out);
  return out;
}

delivery_actions ordered_delivery::on_message(std::uint64_t seq, std::string_view epoch,
                                              protocol::frame_ptr payload) {
  delivery_actions out;
  if (seeded_ && !accept_epoch(epoch))
    reset(reset_reason::epoch_changed, out); // and the message waits for the next seed
  if (!seeded_) {
    if (epoch != epoch_) { // the newest epoch wins; seed() checks it against its read
      buffer_.clear();
      known_top_ = 0;
      epoch_ = epoch;
    }
    known_top_ = std::max(known_top_, seq);
    buffer(seq, std::move(payload), out);
    return out;
  }
  known_top_ = std::max(known_top_, seq);
  if (seq < next_) {
    ++out.dropped;
  } else if (seq == next_) {
    out.deliver.push_back({seq, std::move(payload)});
    ++next_;
    drain(out);
  } else {
    buffer(seq, std::move(payload), out);
  }
  request_repair(out);
  return out;
}

delivery_actions ordered_delivery::on_repair(std::uint64_t ticket, stream_read read) {
  delivery_actions out;
  if (!seeded_ || !in_flight_ || in_flight_->ticket != ticket)
    return out; // the answer to a read issued before a reset or a seed
  const repair_request asked = *in_flight_;
  in_flight_.reset();
  if (!accept_epoch(read.epoch)) {
    reset(reset_reason::epoch_changed, out);
    return out;
  }
  known_top_ = std::max(known_top_, read.top);
  // The read's entries join the buffer past its bound: there are at most repair_batch of
  // them, and those that do not drain now mean a hole, which resets below.
  for (auto& entry : read.entries) {
    if (entry.seq > asked.to) continue; // not asked for: a later read or pub/sub brings it in turn
    if (entry.seq < next_ || buffer_.contains(entry.seq))
      ++out.dropped;
    else
      buffer_.emplace(entry.seq, std::move(entry.payload));
  }
  drain(out);
  // The stream is append-only and trimmed from the front: every seq in [from, to] up to the
  // read's top is in it unless trimmed. So a next_ still missing there is gone for good.
  if (next_ <= std::min(asked.to, read.top)) {
    reset(reset_reason::history_lost, out);
    return out;
  }
  request_repair(out);
  return out;
}

delivery_actions ordered_delivery::on_top(std::string_view epoch, std::uint64_t top) {
  delivery_actions out;
  if (!seeded_) return out;
  if (!accept_epoch(epoch)) {
    reset(reset_reason::epoch_changed, out);
    return out;
  }
  known_top_ = std::max(known_top_, top);
  request_repair(out);
  return out;
}

void ordered_delivery::on_repair_failed(std::uint64_t ticket) {
  if (!in_flight_ || in_flight_->ticket != ticket) return;
  in_flight_.reset();
  resync_ = true; // whatever the read was for may be missing: read from next_ again
}

delivery_actions ordered_delivery::on_resubscribed() {
  delivery_actions out;
  // Kept across an unseeded wait too: the seed's read may predate the new subscription.
  resync_ = true;
  request_repair(out);
  return out;
}

bool ordered_delivery::accept_epoch(std::string_view epoch) {
  if (epoch == epoch_) return true;
  // Seeded from a room with no log yet (top 0, nothing delivered): its first epoch is ours.
  if (epoch_.empty() && next_ == 1) {
    epoch_ = epoch;
    return true;
  }
  return false;
}

void ordered_delivery::buffer(std::uint64_t seq, protocol::frame_ptr payload,
                              delivery_actions& out) {
  if (buffer_.contains(seq)) {
    ++out.dropped;
    return;
  }
  if (buffer_.size() >= limits_.reorder) {
    // Full: keep the lowest seqs. The one left out is at most known_top_, so a repair reads it.
    if (buffer_.empty() || seq > buffer_.rbegin()->first) return;
    buffer_.erase(std::prev(buffer_.end()));
  }
  buffer_.emplace(seq, std::move(payload));
}

void ordered_delivery::drain(delivery_actions& out) {
  while (!buffer_.empty() && buffer_.begin()->first <= next_) {
    auto node = buffer_.extract(buffer_.begin());
    if (node.key() < next_) {
      ++out.dropped; // at or below a seed's top
      continue;
    }
    out.deliver.push_back({node.key(), std::move(node.mapped())});
    ++next_;
  }
}

void ordered_delivery::request_repair(delivery_actions& out) {
  if (!seeded_ || in_flight_ || (next_ > known_top_ && !resync_)) return;
  std::uint64_t to = next_ + limits_.repair_batch - 1;
  if (!buffer_.empty()) // the hole ends below the lowest buffered seq
    to = std::min(to, buffer_.begin()->first - 1);
  in_flight_ = repair_request{++tickets_, next_, to};
  out.repair = in_flight_;
  resync_ = false; // this read is issued after the resubscription: its top covers it
}

void ordered_delivery::reset(reset_reason why, delivery_actions& out) {
  out.reset = why;
  out.repair.reset();
  seeded_ = false;
  epoch_.clear();
  next_ = 1;
  known_top_ = 0;
  buffer_.clear();
  in_flight_.reset();
  resync_ = false;
}

} // namespace troupe::core
