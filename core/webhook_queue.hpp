#pragma once
// The webhook events on their way to the backend (`--backend`): ids, batches, retries with
// backoff, and the bound. Pure logic with an injected clock and randomness; the sender
// (transport/webhook_sender) drives it with timers and HTTP. Single writer: the caller
// serialises calls.
//
// Order: one batch is in flight at a time and a failed batch is retried before anything
// queued after it, so every room's events reach the backend in the order they were queued
// (and so do all rooms' events together). A dead backend therefore holds the queue back:
// the queue grows to its bound, and what arrives beyond the bound is dropped and counted.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace troupe::core {

struct webhook_event {
  std::string id; ///< unique: the queue's prefix and a counter
  std::int64_t time_ms = 0;
  std::string name;
  std::string room;
  std::string user;   ///< empty: none
  std::string client; ///< empty: none
  std::string data;   ///< MessagePack; empty: none
};

struct webhook_queue_settings {
  std::size_t capacity = 100'000; ///< events queued or in flight; more are dropped
  std::size_t batch_max = 100;
  std::chrono::milliseconds batch_delay{250}; ///< the longest the first event waits for others
  std::chrono::milliseconds retry_base{1000}; ///< the first retry's wait; doubled per retry
  std::chrono::milliseconds retry_cap{60'000};
  double jitter = 0.25;                ///< each wait is ± this fraction
  std::chrono::seconds retry_for{600}; ///< a batch failing this long after its first try is dropped
};

class webhook_queue {
public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  /// `id_prefix` makes ids unique across nodes and restarts (e.g. random bytes in hex);
  /// `random` returns a value in [0, 1) for the jitter.
  webhook_queue(webhook_queue_settings settings, std::string id_prefix,
                std::function<double()> random);

  /// Queues an event (its id and time_ms are set here). False: the queue is full and the
  /// event is dropped (counted in dropped()).
  bool push(webhook_event event, time_point now, std::int64_t wall_ms);

  /// The batch to send now, if one is due and none is in flight. The events stay queued
  /// (and counted) until succeeded().
  std::optional<std::vector<webhook_event>> take(time_point now);

  /// When take() may next return a batch: none while a batch is in flight or nothing is
  /// queued.
  std::optional<time_point> next_due() const;

  /// The batch in flight was accepted (2xx): its events leave the queue.
  void succeeded();
  /// The batch in flight failed: retried after the backoff with the same ids, or dropped
  /// (counted) once it has failed for `retry_for`. Returns the wait before the retry (none:
  /// dropped).
  std::optional<std::chrono::milliseconds> failed(time_point now);

  bool in_flight() const { return in_flight_; }
  std::size_t size() const { return events_.size(); }
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t sent() const { return sent_; }
  std::uint64_t retries() const { return retries_; }

private:
  std::size_t batch_size() const;

  webhook_queue_settings settings_;
  std::string prefix_;
  std::function<double()> random_;
  std::uint64_t counter_ = 0;
  // Events in order, each with the time it was queued; the first batch_size() of them are
  // the batch in flight or waiting for its retry.
  std::deque<std::pair<webhook_event, time_point>> events_;
  bool in_flight_ = false;
  std::size_t batch_ = 0;               ///< events in the current batch (in flight or retrying)
  unsigned attempts_ = 0;               ///< failed attempts of the current batch
  std::optional<time_point> first_try_; ///< of the current batch
  std::optional<time_point> retry_at_;  ///< set while the current batch waits to be retried
  std::uint64_t dropped_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t retries_ = 0;
};

} // namespace troupe::core
