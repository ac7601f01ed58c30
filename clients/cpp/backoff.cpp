#include "clients/cpp/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::client {

backoff::backoff(backoff_options o, unsigned seed) : o_(o), rng_(seed) {
  if (o_.initial.count() < 1) o_.initial = std::chrono::milliseconds(1);
  if (o_.max < o_.initial) o_.max = o_.initial;
  if (o_.factor < 1.0) o_.factor = 1.0;
}

std::chrono::milliseconds backoff::next() {
  const double cap = static_cast<double>(o_.max.count());
  const double exp = std::min(static_cast<double>(attempt_), 62.0);
  const double base =
      std::min(cap, static_cast<double>(o_.initial.count()) * std::pow(o_.factor, exp));
  ++attempt_;
  std::uniform_real_distribution<double> d(base / 2, base);
  return std::chrono::milliseconds(std::max<long long>(1, static_cast<long long>(d(rng_))));
}

} // namespace troupe::client
