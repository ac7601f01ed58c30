#include "latency.hpp"

#include <algorithm>
#include <cmath>

namespace bench {

Latency::Summary Latency::summarize_range(std::size_t from, std::size_t to) const {
  Latency part;
  to = std::min(to, ns_.size());
  if (from < to)
    part.ns_.assign(ns_.begin() + static_cast<std::ptrdiff_t>(from),
                    ns_.begin() + static_cast<std::ptrdiff_t>(to));
  return part.summarize();
}

Latency::Summary Latency::summarize() {
  Summary s;
  s.samples = ns_.size();
  if (ns_.empty()) return s;
  std::sort(ns_.begin(), ns_.end());
  auto at = [&](double q) {
    // Nearest rank: the smallest sample with at least q of all samples at or below it.
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(ns_.size())));
    return static_cast<double>(ns_[std::clamp<std::size_t>(rank, 1, ns_.size()) - 1]) / 1e3;
  };
  s.p50_us = at(0.50);
  s.p90_us = at(0.90);
  s.p99_us = at(0.99);
  s.p999_us = at(0.999);
  s.max_us = static_cast<double>(ns_.back()) / 1e3;
  long double sum = 0;
  for (auto v : ns_)
    sum += v;
  s.mean_us = static_cast<double>(sum / ns_.size() / 1e3);
  return s;
}

} // namespace bench
