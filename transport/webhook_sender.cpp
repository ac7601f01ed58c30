#include "transport/webhook_sender.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>
#include <random>

namespace troupe::transport {

namespace {

// Unique across nodes and restarts: 64 random bits in hex, then the queue's counter.
std::string random_prefix() {
  std::random_device device;
  std::uint64_t bits = (static_cast<std::uint64_t>(device()) << 32) ^ device();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(bits));
  return buf;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string encode_batch(const std::vector<core::webhook_event>& batch) {
  nlohmann::json events = nlohmann::json::array();
  for (const auto& e : batch) {
    nlohmann::json event{{"id", e.id}, {"time_ms", e.time_ms}, {"name", e.name}, {"room", e.room}};
    if (!e.user.empty()) event["user"] = e.user;
    if (!e.client.empty()) event["client"] = e.client;
    if (!e.data.empty()) {
      auto data = nlohmann::json::from_msgpack(e.data, true, false);
      if (!data.is_discarded()) event["data"] = std::move(data);
    }
    events.push_back(std::move(event));
  }
  return nlohmann::json{{"events", std::move(events)}}.dump();
}

} // namespace

webhook_sender::webhook_sender(boost::asio::any_io_executor executor,
                               core::webhook_queue_settings settings, post_fn post,
                               core::metrics& metrics)
    : strand_(boost::asio::make_strand(executor)), timer_(strand_), post_(std::move(post)),
      metrics_(metrics), batch_max_(settings.batch_max),
      queue_(settings, random_prefix(), [rng = std::mt19937_64(std::random_device{}())]() mutable {
        return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      }) {}

void webhook_sender::emit(actors::backend_event event) {
  const auto now = core::webhook_queue::clock::now();
  std::lock_guard lock(mutex_);
  if (stopped_) return;
  const bool was_idle = queue_.size() == 0;
  if (!queue_.push({{},
                    0,
                    std::move(event.name),
                    std::move(event.room),
                    std::move(event.user),
                    std::move(event.client),
                    std::move(event.data)},
                   now, wall_ms()))
    note_drop(1, "the queue is full");
  publish_metrics();
  // The strand is woken only when a wait starts (the first event) or a batch is full; a
  // timer or a reply wakes it otherwise.
  if (wake_posted_ || queue_.in_flight()) return;
  if (was_idle || queue_.size() == batch_max_) {
    wake_posted_ = true;
    boost::asio::post(strand_, [self = shared_from_this()] { self->pump(); });
  }
}

void webhook_sender::stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  boost::asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
}

void webhook_sender::pump() {
  std::optional<std::vector<core::webhook_event>> batch;
  {
    std::lock_guard lock(mutex_);
    wake_posted_ = false;
    if (stopped_) return;
    const auto now = core::webhook_queue::clock::now();
    batch = queue_.take(now);
    publish_metrics();
    if (!batch) {
      auto due = queue_.next_due();
      if (!due) return;
      timer_.expires_at(*due);
    }
  }
  if (batch) return send(std::move(*batch));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->pump();
  });
}

void webhook_sender::send(std::vector<core::webhook_event> batch) {
  post_("/events", encode_batch(batch),
        [self = shared_from_this()](int status, std::string body, std::error_code ec) {
          const bool ok = !ec && status >= 200 && status < 300;
          std::string why = ec ? ec.message() : "status " + std::to_string(status);
          boost::asio::post(self->strand_,
                            [self, ok, why = std::move(why)] { self->replied(ok, why); });
        });
}

void webhook_sender::replied(bool ok, const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    if (ok) {
      queue_.succeeded();
    } else {
      const auto before = queue_.dropped();
      auto wait = queue_.failed(core::webhook_queue::clock::now());
      if (!wait) {
        note_drop(queue_.dropped() - before, "a batch failed for too long");
      } else if (queue_.retries() == 0 || *wait >= std::chrono::seconds(8)) {
        // Logged at the first failure and then at long waits only: a dead backend is
        // reported, not flooded.
        std::cerr << "troupe: webhooks: POST /events failed (" << why << "), retry in "
                  << wait->count() << " ms" << std::endl;
      }
    }
    publish_metrics();
  }
  pump();
}

void webhook_sender::publish_metrics() {
  metrics_.webhook_events_sent.store(queue_.sent(), std::memory_order_relaxed);
  metrics_.webhook_batches_retried.store(queue_.retries(), std::memory_order_relaxed);
  metrics_.webhook_events_dropped.store(queue_.dropped(), std::memory_order_relaxed);
  metrics_.webhook_queue_length.store(static_cast<std::int64_t>(queue_.size()),
                                      std::memory_order_relaxed);
}

void webhook_sender::note_drop(std::uint64_t n, const char* why) {
  drops_unlogged_ += n;
  const auto now = core::webhook_queue::clock::now();
  if (now - last_drop_log_ < std::chrono::seconds(10)) return;
  last_drop_log_ = now;
  std::cerr << "troupe: webhooks: dropped " << drops_unlogged_ << " event(s): " << why << " ("
            << queue_.dropped() << " in all)" << std::endl;
  drops_unlogged_ = 0;
}

} // namespace troupe::transport
