#pragma once
// Publish-to-deliver latencies of one measurement (all of its windows), kept exactly: a
// few million int64 at most, so percentiles need no histogram approximation.
#include <algorithm>
#include <cstdint>
#include <vector>

namespace bench {

class Latency {
public:
  void clear() { ns_.clear(); }
  void reserve(std::size_t n) { ns_.reserve(n); }
  void record(std::int64_t ns) { ns_.push_back(ns); }
  void truncate(std::size_t n) { ns_.resize(std::min(n, ns_.size())); }
  std::size_t count() const { return ns_.size(); }

  struct Summary {
    double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
    std::size_t samples = 0;
  };
  Summary summarize(); // sorts in place
  // Of the samples [from, to) only, without disturbing the rest (copies them).
  Summary summarize_range(std::size_t from, std::size_t to) const;

private:
  std::vector<std::int64_t> ns_;
};

} // namespace bench
