#pragma once
// The durable store's commits, watched: how long each took (a histogram), and the one
// running now, so that a stalled disk shows while it stalls and is bounded. The storage
// actor is the only writer (begin/end around each commit); rooms, connections, /metrics,
// /health and the storage actor's watchdog read it from any thread. Relaxed atomics, except
// that a commit's size is published before its start time (release/acquire), so whoever
// sees a commit running sees what it holds.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace troupe::core {

class commit_watch {
public:
  /// Upper bounds of the histogram's buckets, in seconds (Prometheus `le`); +Inf follows.
  static constexpr std::array<double, 12> bucket_bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,   0.25,   0.5,   1,    2.5,   10};

  /// What a commit holds: rooms' logs with their messages, documents with their operations.
  struct contents {
    std::uint32_t logs = 0;
    std::uint32_t messages = 0;
    std::uint32_t documents = 0;
    std::uint32_t operations = 0;
  };

  /// Milliseconds on the steady clock (never 0 in practice: the clock starts at boot).
  static std::int64_t now_ms() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  /// A commit running longer than this is slow: logged and counted, and while it runs past
  /// it new writes are refused with `unavailable` (--store-stall). Set once at start-up.
  void set_bound(std::chrono::milliseconds bound) noexcept {
    bound_ms_.store(bound.count(), std::memory_order_relaxed);
  }
  std::chrono::milliseconds bound() const noexcept {
    return std::chrono::milliseconds(bound_ms_.load(std::memory_order_relaxed));
  }

  /// The storage actor starts a commit holding `what`.
  void begin(const contents& what) noexcept;
  /// ... and it ended after `took`. Returns true when it was slow (over the bound).
  bool end(std::chrono::microseconds took) noexcept;

  /// How long the commit running now has run (0 when none runs).
  std::chrono::milliseconds age() const noexcept;
  /// When the commit running now started (now_ms()), 0 when none runs: tells commits apart.
  std::int64_t started_ms() const noexcept { return started_ms_.load(std::memory_order_acquire); }
  /// What the commit running now holds (meaningful while age() > 0).
  contents running() const noexcept;
  /// The commit running now has run past the bound.
  bool stalled() const noexcept { return age() > bound(); }
  /// Empty, or the reason `writes` writes are refused now: the store is stalled. Counts
  /// them as refused.
  std::string refuse_write(std::uint64_t writes = 1);

  // For /metrics.
  std::uint64_t bucket(std::size_t i) const noexcept {
    return buckets_[i].load(std::memory_order_relaxed);
  }
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum_seconds() const noexcept {
    return static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
  }
  std::uint64_t slow() const noexcept { return slow_.load(std::memory_order_relaxed); }
  std::uint64_t refused() const noexcept { return refused_.load(std::memory_order_relaxed); }

  /// "1.25 s": a duration for the log and for reasons.
  static std::string seconds_text(std::chrono::microseconds d);
  /// "2 rooms' logs (14 messages), 1 document (3 operations)".
  static std::string describe(const contents& what);

private:
  std::atomic<std::int64_t> bound_ms_{1000};
  std::atomic<std::int64_t> started_ms_{0}; ///< of the commit running now; 0: none
  std::atomic<std::uint32_t> logs_{0}, messages_{0}, documents_{0}, operations_{0};
  std::array<std::atomic<std::uint64_t>, bucket_bounds.size() + 1> buckets_{}; ///< not cumulative
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
  std::atomic<std::uint64_t> slow_{0};    ///< commits over the bound
  std::atomic<std::uint64_t> refused_{0}; ///< writes refused while stalled
};

} // namespace troupe::core
