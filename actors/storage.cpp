#include "actors/storage.hpp"

#include <boost/asio/post.hpp>
#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <iostream>
#include <vector>

#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/metrics.hpp"
#include "store/store.hpp"

namespace troupe::actors {

namespace {

class storage : public std::enable_shared_from_this<storage> {
public:
  storage(companion* self, boost::asio::any_io_executor executor, store::room_store& store,
          const storage_settings& settings, core::metrics& metrics)
      : self_(self), executor_(std::move(executor)), store_(store), settings_(settings),
        metrics_(metrics) {}

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
    store_.expire_messages(now > age_ms ? now - age_ms : 0);
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
    std::uint64_t writes = 0;
    for (auto& request : requests) {
      writes += request.writes.messages.size() + request.writes.operations.size();
      batches.push_back(std::move(request.writes));
    }
    const std::string error = store_.commit(batches);
    if (error.empty()) {
      core::metrics::add(metrics_.store_commits);
      core::metrics::add(metrics_.store_writes, writes);
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
