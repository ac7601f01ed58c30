#include "actors/directory.hpp"

#include <boost/asio/strand.hpp>
#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <unordered_map>
#include <vector>

#include "actors/cluster_document.hpp"
#include "actors/cluster_message_log.hpp"
#include "actors/cluster_presence.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/metrics.hpp"

namespace troupe::actors {

namespace {

class directory {
public:
  directory(companion* self, boost::asio::io_context& io, directory_settings settings,
            store::room_store& store, caf::actor storage, core::metrics& metrics)
      : self_(self), io_(io), settings_(settings), store_(store), storage_(std::move(storage)),
        metrics_(metrics) {}

  void acquire(const std::string& name, room_reply& requester) {
    if (shutting_down_) return; // the engine is closing every connection
    auto& entry = rooms_[name];
    if (entry.stopping) {
      // Served once the old actors have saved their state.
      entry.waiting.push_back(std::move(requester));
      return;
    }
    if (!entry.actors.log) start(name, entry);
    ++entry.holders;
    requester.deliver(name, entry.actors);
  }

  void release(const std::string& name) {
    auto it = rooms_.find(name);
    if (it == rooms_.end() || it->second.holders == 0) return;
    auto& entry = it->second;
    if (--entry.holders == 0)
      self_->delayed_send(self_, settings_.room_idle, evict_atom::value, name, ++entry.generation);
  }

  void evict(const std::string& name, std::uint64_t generation) {
    auto it = rooms_.find(name);
    if (it == rooms_.end()) return;
    auto& entry = it->second;
    if (entry.holders > 0 || entry.generation != generation || entry.stopping)
      return; // held again since the timer was set
    stop(entry);
  }

  /// Engine shutdown: every room hands its log to the store, then the directory ends.
  void stop_all() {
    shutting_down_ = true;
    for (auto& [name, entry] : rooms_) {
      entry.waiting.clear();
      if (!entry.stopping) stop(entry);
    }
    if (rooms_.empty()) self_->quit();
  }

  void stopped(const std::string& name) {
    auto it = rooms_.find(name);
    if (it == rooms_.end() || --it->second.stopping > 0)
      return; // the other of log and document has yet to hand its state over
    metrics_.rooms.fetch_sub(1, std::memory_order_relaxed);
    auto waiting = std::move(it->second.waiting);
    if (waiting.empty() || shutting_down_) {
      rooms_.erase(it);
      if (shutting_down_ && rooms_.empty()) self_->quit();
      return;
    }
    auto& entry = it->second;
    entry = {};
    start(name, entry);
    entry.holders = waiting.size();
    for (auto& requester : waiting)
      requester.deliver(name, entry.actors);
  }

private:
  struct entry {
    room_handles actors;
    std::size_t holders = 0;
    std::uint64_t generation = 0; // tells a stale eviction timer from the current one
    int stopping = 0;             // actors (log, document) still handing their state over
    std::vector<room_reply> waiting;
  };

  void start(const std::string& name, entry& entry) {
    auto& system = self_->home_system();
    if (settings_.cluster) {
      auto& hub = *settings_.cluster;
      entry.actors.presence =
          spawn_cluster_presence(system, boost::asio::make_strand(io_), name, settings_.presence,
                                 hub, settings_.app_backend);
      entry.actors.log =
          spawn_cluster_message_log(system, boost::asio::make_strand(io_), name, settings_.room,
                                    entry.actors.presence, hub, metrics_);
      entry.actors.document =
          spawn_cluster_document(system, boost::asio::make_strand(io_), name, settings_.document,
                                 entry.actors.presence, hub, metrics_);
      metrics_.rooms.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    entry.actors.presence = spawn_presence(system, boost::asio::make_strand(io_), name,
                                           settings_.presence, settings_.app_backend);
    entry.actors.log =
        spawn_message_log(system, boost::asio::make_strand(io_), name, settings_.room,
                          entry.actors.presence, storage_, store_, metrics_);
    entry.actors.document =
        spawn_document(system, boost::asio::make_strand(io_), name, settings_.document,
                       entry.actors.presence, storage_, store_, metrics_);
    metrics_.rooms.fetch_add(1, std::memory_order_relaxed);
  }

  /// The log and the document hand their state to the store and answer stopped_atom;
  /// presence just ends.
  void stop(entry& entry) {
    entry.stopping = 2;
    self_->send(entry.actors.log, stop_atom::value);
    self_->send(entry.actors.document, stop_atom::value);
    self_->send(entry.actors.presence, stop_atom::value);
  }

  companion* self_;
  boost::asio::io_context& io_;
  directory_settings settings_;
  store::room_store& store_;
  caf::actor storage_; ///< none for the memory store
  core::metrics& metrics_;
  std::unordered_map<std::string, entry> rooms_;
  bool shutting_down_ = false;
};

} // namespace

caf::actor spawn_directory(caf::actor_system& system, boost::asio::io_context& io,
                           directory_settings settings, store::room_store& store,
                           caf::actor storage, core::metrics& metrics) {
  return spawn_on_strand(system, boost::asio::make_strand(io), [&](companion* self) {
    auto state =
        std::make_shared<directory>(self, io, settings, store, std::move(storage), metrics);
    return caf::behavior{
        [state](acquire_atom, const std::string& name, room_reply& requester) {
          state->acquire(name, requester);
        },
        [state](stopped_atom, const std::string& name) { state->stopped(name); },
        [state](stop_atom) { state->stop_all(); },
        [state](release_atom, const std::string& name) { state->release(name); },
        [state](evict_atom, const std::string& name, std::uint64_t generation) {
          state->evict(name, generation);
        },
    };
  });
}

} // namespace troupe::actors
