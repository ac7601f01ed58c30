#include "actors/storage.hpp"

#include <boost/asio/post.hpp>
#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/metrics.hpp"
#include "store/store.hpp"

namespace troupe::actors {

namespace {

/// Logs a commit that runs past the bound while it still runs: the storage thread is inside
/// the commit then and cannot. It wakes a few times per bound and only reads atomics, so it
/// costs nothing per commit.
class stall_watchdog {
public:
  explicit stall_watchdog(core::commit_watch& watch) : watch_(watch) {
    thread_ = std::thread([this] { run(); });
  }
  ~stall_watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  stall_watchdog(const stall_watchdog&) = delete;
  stall_watchdog& operator=(const stall_watchdog&) = delete;

private:
  void run() {
    const auto period = std::clamp<std::chrono::milliseconds>(
        watch_.bound() / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
    std::int64_t reported = 0; // the start of the commit last reported
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, period, [this] { return stop_; })) {
      const std::int64_t started = watch_.started_ms();
      const auto age = watch_.age();
      if (started == 0 || started == reported || age <= watch_.bound()) continue;
      reported = started;
      std::cerr << "troupe: store: a commit has run for "
                << core::commit_watch::seconds_text(
                       std::chrono::duration_cast<std::chrono::microseconds>(age))
                << " and has not ended (--store-stall "
                << core::commit_watch::seconds_text(
                       std::chrono::duration_cast<std::chrono::microseconds>(watch_.bound()))
                << "); it holds " << core::commit_watch::describe(watch_.running())
                << "; new writes get unavailable until it ends" << std::endl;
    }
  }

  core::commit_watch& watch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

class storage : public std::enable_shared_from_this<storage> {
public:
  storage(companion* self, boost::asio::any_io_executor executor, store::room_store& store,
          const storage_settings& settings, core::metrics& metrics)
      : self_(self), executor_(std::move(executor)), store_(store), settings_(settings),
        metrics_(metrics), watchdog_(metrics.commits) {}

  /// Gathers the request; the commit runs once the mailbox has handed over everything that
  /// arrived before it (the flush is posted behind those messages).
  void write(store_request& request) {
    pending_.push_back(
        {caf::actor_cast<caf::actor>(self_->current_sender()), std::move(request.writes)});
    if (!flush_posted_) {
      flush_posted_ = true;
      boost::asio::post(executor_, [self = shared_from_this()] { self->flush(); });
    }
  }

  void sweep() {
    const auto age_ms = static_cast<std::uint64_t>(settings_.history_age.count()) * 1000;
    const auto now = core::now_ms();
    // A transaction of its own on the one writer: watched like a commit, so that a sweep
    // stalled on the disk shows and bounds new writes the same way.
    auto& watch = metrics_.commits;
    watch.begin({});
    const auto started = std::chrono::steady_clock::now();
    store_.expire_messages(now > age_ms ? now - age_ms : 0);
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    if (watch.end(took))
      std::cerr << "troupe: store: deleting messages older than --history-age took "
                << core::commit_watch::seconds_text(took) << " (--store-stall "
                << core::commit_watch::seconds_text(
                       std::chrono::duration_cast<std::chrono::microseconds>(watch.bound()))
                << ")" << std::endl;
    schedule_sweep();
  }

  void schedule_sweep() {
    if (settings_.history_age.count() > 0)
      self_->delayed_send(
          self_, std::min<std::chrono::seconds>(settings_.history_age, std::chrono::seconds(60)),
          sweep_atom::value);
  }

private:
  struct request {
    caf::actor from;
    store::room_writes writes;
  };

  void flush() {
    flush_posted_ = false;
    auto requests = std::move(pending_);
    pending_.clear();
    std::vector<store::room_writes> batches;
    batches.reserve(requests.size());
    core::commit_watch::contents what;
    for (auto& request : requests) {
      const auto& w = request.writes;
      if (!w.messages.empty()) {
        ++what.logs;
        what.messages += static_cast<std::uint32_t>(w.messages.size());
      }
      if (w.writes_document()) {
        ++what.documents;
        what.operations += static_cast<std::uint32_t>(w.operation_count());
      }
      batches.push_back(std::move(request.writes));
    }
    auto& watch = metrics_.commits;
    const std::uint64_t refused_before = watch.refused();
    watch.begin(what);
    const auto started = std::chrono::steady_clock::now();
    const std::string error = store_.commit(batches);
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    if (watch.end(took))
      std::cerr << "troupe: store: a commit took " << core::commit_watch::seconds_text(took)
                << " (--store-stall "
                << core::commit_watch::seconds_text(
                       std::chrono::duration_cast<std::chrono::microseconds>(watch.bound()))
                << "): it held " << core::commit_watch::describe(what) << "; "
                << (watch.refused() - refused_before)
                << " writes were refused with unavailable meanwhile"
                << (error.empty() ? "" : "; it failed") << std::endl;
    if (error.empty()) {
      core::metrics::add(metrics_.store_commits);
      core::metrics::add(metrics_.store_writes, what.messages + what.operations);
    } else {
      core::metrics::add(metrics_.store_failures);
      std::cerr << "troupe: store: " << error << std::endl;
    }
    for (auto& request : requests)
      self_->send(request.from, store_done{error});
  }

  companion* self_;
  boost::asio::any_io_executor executor_;
  store::room_store& store_;
  storage_settings settings_;
  core::metrics& metrics_;
  std::vector<request> pending_;
  bool flush_posted_ = false;
  stall_watchdog watchdog_; // last: stopped first
};

} // namespace

caf::actor spawn_storage(caf::actor_system& system, boost::asio::any_io_executor executor,
                         store::room_store& store, const storage_settings& settings,
                         core::metrics& metrics) {
  return spawn_on_strand(system, executor, [&](companion* self) {
    auto state = std::make_shared<storage>(self, executor, store, settings, metrics);
    state->schedule_sweep();
    return caf::behavior{
        [state](store_request& request) { state->write(request); },
        [state](sweep_atom) { state->sweep(); },
        [self](stop_atom) { self->quit(); },
    };
  });
}

} // namespace troupe::actors
