#pragma once
// Counters for /metrics and /health. Relaxed atomics: each is bumped once per event (per
// publish, not per delivery) and read rarely.

#include <atomic>
#include <cstdint>

#include "core/commit_watch.hpp"

namespace troupe::core {

struct metrics {
  std::atomic<std::int64_t> connections{0};          ///< open WebSocket connections
  std::atomic<std::uint64_t> connections_total{0};   ///< accepted since start
  std::atomic<std::int64_t> rooms{0};                ///< room actors alive
  std::atomic<std::uint64_t> messages_published{0};  ///< sequenced messages
  std::atomic<std::uint64_t> deliveries{0};          ///< pushes queued to subscribers
  std::atomic<std::uint64_t> operations{0};          ///< document operations applied
  std::atomic<std::uint64_t> slow_consumers{0};      ///< connections cut with 4500
  std::atomic<std::uint64_t> bad_requests{0};        ///< maps answered with an error
  std::atomic<std::uint64_t> forbidden{0};           ///< ... of them `forbidden`
  std::atomic<std::uint64_t> rate_limited{0};        ///< ... of them `rate_limited`
  std::atomic<std::uint64_t> refused_upgrades{0};    ///< WebSocket upgrades refused (403, 503)
  std::atomic<std::uint64_t> api_requests{0};        ///< calls to /api, answered or refused
  std::atomic<std::uint64_t> store_commits{0};       ///< transactions committed
  std::atomic<std::uint64_t> store_writes{0};        ///< messages and operations committed
  std::atomic<std::uint64_t> store_failures{0};      ///< commits that failed (disk full, I/O)
  std::atomic<std::uint64_t> store_load_failures{0}; ///< rooms or documents refused: unreadable
  commit_watch commits; ///< the durable store's commits: durations, the one running, stalls
  std::atomic<std::uint64_t> webhook_events_sent{0}; ///< accepted by the backend (2xx)
  std::atomic<std::uint64_t> webhook_batches_retried{
      0};                                               ///< POST /events attempts that were retries
  std::atomic<std::uint64_t> webhook_events_dropped{0}; ///< queue full, or failing too long
  std::atomic<std::int64_t> webhook_queue_length{0};    ///< queued or in flight

  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
};

} // namespace troupe::core
