#include "core/rate_limiter.hpp"

#include <algorithm>

namespace troupe::core {

rate_limiter::rate_limiter(double rate, clock::duration abuse_after, clock::duration calm,
                           clock::time_point now)
    : rate_(rate), tokens_(2 * rate), refilled_(now),
      abuse_after_(std::chrono::duration_cast<bound>(abuse_after)),
      calm_(std::chrono::duration_cast<bound>(calm)) {}

rate_limiter::verdict rate_limiter::take(clock::time_point now) noexcept {
  if (rate_ <= 0) return verdict::allowed;
  if (now > refilled_) {
    const std::chrono::duration<double> elapsed = now - refilled_;
    tokens_ = std::min(2 * rate_, tokens_ + elapsed.count() * rate_);
    refilled_ = now;
  }
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return verdict::allowed;
  }
  // A flood is refused again and again while the bucket refills between refusals; a
  // client that stops for `calm` starts afresh.
  if (!refusing_ || now - last_refused_ > calm_) {
    refusing_ = true;
    refused_since_ = now;
  }
  last_refused_ = now;
  return now - refused_since_ >= abuse_after_ ? verdict::abusive : verdict::refused;
}

} // namespace troupe::core
