#pragma once
// A connection's request budget: a token bucket of `rate` requests per second with a
// burst of twice that, one token per request (per map, not per frame). It also tells a
// client that is briefly over budget from one that keeps flooding. Plain class, one owner.

#include <chrono>
#include <cstdint>

namespace troupe::core {

class rate_limiter {
public:
  using clock = std::chrono::steady_clock;

  enum class verdict : std::uint8_t {
    allowed,
    refused, ///< over budget: answer rate_limited, do not carry it out
    abusive, ///< refused, and over budget for `abuse_after` without calming down
  };

  /// `rate` requests per second (0 or less: no limit). A run of refusals ends after
  /// `calm` without one; a run that lasts `abuse_after` is abuse.
  explicit rate_limiter(double rate, clock::duration abuse_after = std::chrono::seconds(3),
                        clock::duration calm = std::chrono::seconds(1),
                        clock::time_point now = clock::now());

  bool enabled() const noexcept { return rate_ > 0; }

  /// Takes one request's token.
  verdict take(clock::time_point now) noexcept;

private:
  // One per connection: kept small (the burst is twice the rate; the bounds in ms).
  using bound = std::chrono::duration<std::int32_t, std::milli>;
  double rate_;
  double tokens_;
  clock::time_point refilled_;
  bound abuse_after_;
  bound calm_;
  clock::time_point refused_since_{}; ///< start of the current run of refusals
  clock::time_point last_refused_{};
  bool refusing_ = false;
};

} // namespace troupe::core
