#include "core/webhook_queue.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::core {

webhook_queue::webhook_queue(webhook_queue_settings settings, std::string id_prefix,
                             std::function<double()> random)
    : settings_(settings), prefix_(std::move(id_prefix)), random_(std::move(random)) {}

bool webhook_queue::push(webhook_event event, time_point now, std::int64_t wall_ms) {
  if (events_.size() >= settings_.capacity) {
    ++dropped_;
    return false;
  }
  event.id = prefix_ + "-" + std::to_string(++counter_);
  event.time_ms = wall_ms;
  events_.emplace_back(std::move(event), now);
  return true;
}

std::size_t webhook_queue::batch_size() const {
  return std::min(events_.size(), settings_.batch_max);
}

std::optional<webhook_queue::time_point> webhook_queue::next_due() const {
  if (in_flight_ || events_.empty()) return std::nullopt;
  if (retry_at_) return *retry_at_;
  // A full batch goes at once; otherwise the first event waits up to batch_delay for others.
  if (events_.size() >= settings_.batch_max) return time_point::min();
  return events_.front().second + settings_.batch_delay;
}

std::optional<std::vector<webhook_event>> webhook_queue::take(time_point now) {
  auto due = next_due();
  if (!due || *due > now) return std::nullopt;
  if (!retry_at_) {
    // A new batch; a retried one keeps its events (and ids) exactly.
    batch_ = batch_size();
    attempts_ = 0;
    first_try_ = now;
  } else {
    ++retries_;
  }
  retry_at_.reset();
  in_flight_ = true;
  std::vector<webhook_event> batch;
  batch.reserve(batch_);
  for (std::size_t i = 0; i < batch_; ++i)
    batch.push_back(events_[i].first);
  return batch;
}

void webhook_queue::succeeded() {
  if (!in_flight_) return;
  in_flight_ = false;
  sent_ += batch_;
  events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(batch_));
  batch_ = 0;
  first_try_.reset();
}

std::optional<std::chrono::milliseconds> webhook_queue::failed(time_point now) {
  if (!in_flight_) return std::nullopt;
  in_flight_ = false;
  if (first_try_ && now - *first_try_ >= settings_.retry_for) {
    // Given up: counted as dropped, so the loss is never silent.
    dropped_ += batch_;
    events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(batch_));
    batch_ = 0;
    first_try_.reset();
    return std::nullopt;
  }
  ++attempts_;
  // The n-th retry waits 2^(n-1) base, capped, ± jitter.
  double wait = static_cast<double>(settings_.retry_base.count()) *
                std::pow(2.0, static_cast<double>(std::min(attempts_ - 1, 30u)));
  wait = std::min(wait, static_cast<double>(settings_.retry_cap.count()));
  wait *= 1.0 + settings_.jitter * (2.0 * random_() - 1.0);
  auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(std::max(wait, 0.0)));
  retry_at_ = now + delay;
  return delay;
}

} // namespace troupe::core
