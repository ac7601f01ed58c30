#include "core/commit_watch.hpp"

#include <cstdio>

namespace troupe::core {

void commit_watch::begin(const contents& what) noexcept {
  logs_.store(what.logs, std::memory_order_relaxed);
  messages_.store(what.messages, std::memory_order_relaxed);
  documents_.store(what.documents, std::memory_order_relaxed);
  operations_.store(what.operations, std::memory_order_relaxed);
  started_ms_.store(now_ms(), std::memory_order_release);
}

bool commit_watch::end(std::chrono::microseconds took) noexcept {
  started_ms_.store(0, std::memory_order_relaxed);
  const double seconds = static_cast<double>(took.count()) / 1e6;
  std::size_t i = 0;
  while (i < bucket_bounds.size() && seconds > bucket_bounds[i])
    ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(took.count()), std::memory_order_relaxed);
  const bool was_slow = took > std::chrono::microseconds(bound());
  if (was_slow) slow_.fetch_add(1, std::memory_order_relaxed);
  return was_slow;
}

std::chrono::milliseconds commit_watch::age() const noexcept {
  const std::int64_t started = started_ms_.load(std::memory_order_acquire);
  if (started == 0) return std::chrono::milliseconds(0);
  const std::int64_t now = now_ms();
  return std::chrono::milliseconds(now > started ? now - started : 0);
}

commit_watch::contents commit_watch::running() const noexcept {
  (void)started_ms_.load(std::memory_order_acquire);
  return {logs_.load(std::memory_order_relaxed), messages_.load(std::memory_order_relaxed),
          documents_.load(std::memory_order_relaxed), operations_.load(std::memory_order_relaxed)};
}

std::string commit_watch::refuse_write(std::uint64_t writes) {
  const auto running_for = age();
  if (running_for <= bound()) return {};
  refused_.fetch_add(writes, std::memory_order_relaxed);
  return "the store is stalled: a commit has run for " +
         seconds_text(std::chrono::duration_cast<std::chrono::microseconds>(running_for)) +
         " (--store-stall " +
         seconds_text(std::chrono::duration_cast<std::chrono::microseconds>(bound())) +
         "); nothing was written, retry later with the same key";
}

std::string commit_watch::seconds_text(std::chrono::microseconds d) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f s", static_cast<double>(d.count()) / 1e6);
  return text;
}

std::string commit_watch::describe(const contents& what) {
  auto plural = [](std::uint32_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  };
  return plural(what.logs, "room's log", "rooms' logs") + " (" +
         plural(what.messages, "message", "messages") + "), " +
         plural(what.documents, "document", "documents") + " (" +
         plural(what.operations, "operation", "operations") + ")";
}

} // namespace troupe::core
