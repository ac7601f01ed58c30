// Exponential backoff with jitter for reconnects: the n-th delay is drawn uniformly from
// [base/2, base] where base = min(max, initial * factor^n) ("equal jitter"), so a crowd of
// clients cut at once does not come back at once, and none waits longer than `max`.
#pragma once

#include <chrono>
#include <random>

namespace troupe::client {

struct backoff_options {
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{10'000};
  double factor = 2.0;
};

class backoff {
public:
  explicit backoff(backoff_options o, unsigned seed = std::random_device{}());

  std::chrono::milliseconds next(); // the next delay; counts an attempt
  void reset() { attempt_ = 0; }
  unsigned attempt() const { return attempt_; }

private:
  backoff_options o_;
  unsigned attempt_ = 0;
  std::mt19937 rng_;
};

} // namespace troupe::client
