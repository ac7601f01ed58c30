#pragma once
// The storage actor: the one writer of a durable store. Rooms and documents send it their
// writes (store_request) and hold their acks until it answers (store_done). It runs on a
// thread of its own, because a commit waits for the disk: everything that arrives while one
// commit runs goes into the next, one transaction for many rooms' messages and operations,
// which is what keeps durability cheap.

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <chrono>

namespace troupe::store {
class room_store;
} // namespace troupe::store
namespace troupe::core {
struct metrics;
} // namespace troupe::core

namespace troupe::actors {

struct storage_settings {
  std::chrono::seconds history_age{0}; ///< messages older than this are deleted; 0: never
};

/// Spawns the storage actor on `executor` (a thread where blocking is fine). Messages:
/// store_request from rooms and documents; stop_atom ends it.
caf::actor spawn_storage(caf::actor_system& system, boost::asio::any_io_executor executor,
                         store::room_store& store, const storage_settings& settings,
                         core::metrics& metrics);

} // namespace troupe::actors
