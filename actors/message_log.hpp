#pragma once
// The message log actor: the single writer of a room's sequence numbers. It owns the message log
// (epoch, top seq, history, idempotency keys) and the subscriber list, and puts every
// reply and push straight into the peers' outboxes: a `subscribed` reply is queued before
// the first push that follows it, so recovery meets the live stream with nothing skipped
// or repeated.

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <string>

namespace troupe::store {
class room_store;
} // namespace troupe::store
namespace troupe::core {
struct metrics;
} // namespace troupe::core

namespace troupe::actors {

struct message_log_settings {
  std::size_t history = 1000;               ///< messages kept
  std::chrono::milliseconds history_age{0}; ///< how long a message is kept at most; 0: no limit
};

/// Spawns the actor of room `name` on `strand`, loading its log from `store`. A log that
/// cannot be loaded is reported, and every request gets `unavailable`: the room never starts
/// empty over its real history. `presence` is the room's presence actor: subscribers join
/// it, and it completes their `subscribed` replies. `storage` is the storage actor (none for
/// the memory store): a message is acknowledged and pushed once it has committed it. On
/// `stop_atom` it hands the log back, answers (stopped_atom, name) and ends.
caf::actor spawn_message_log(caf::actor_system& system, boost::asio::any_io_executor strand,
                             std::string name, const message_log_settings& settings,
                             caf::actor presence, caf::actor storage, store::room_store& store,
                             core::metrics& metrics);

} // namespace troupe::actors
