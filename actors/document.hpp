#pragma once
// The document actor of a room: the single sequencer of its text. It owns the document
// (text, rev, epoch, the log of recent operations and their keys) and the list of its
// holders, transforms each late operation over everything accepted since its revision,
// acknowledges the author and pushes the operation as applied to every other holder.
// Opening joins the room's presence, which completes the `opened` reply.

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <string>

namespace troupe::store {
class room_store;
} // namespace troupe::store
namespace troupe::core {
struct metrics;
} // namespace troupe::core

namespace troupe::actors {

struct document_settings {
  std::size_t log = 1000;            ///< operations kept (--doc-log)
  std::size_t snapshot_every = 1000; ///< revisions between stored snapshots (--doc-snapshot)
};

/// Spawns the document actor of room `name` on `strand`, loading its document from
/// `store`; one that cannot be loaded is reported and every request gets `unavailable`.
/// `storage` is the storage actor (none for the memory store): an operation is acknowledged
/// and pushed once it has committed it. Messages: doc_open, doc_op, doc_close and
/// room_leave from connections; (joined_atom, client) from `presence`; store_done from
/// `storage`; stop_atom: hands the document back to the store, answers
/// (stopped_atom, name) and ends.
caf::actor spawn_document(caf::actor_system& system, boost::asio::any_io_executor strand,
                          std::string name, const document_settings& settings, caf::actor presence,
                          caf::actor storage, store::room_store& store, core::metrics& metrics);

} // namespace troupe::actors
