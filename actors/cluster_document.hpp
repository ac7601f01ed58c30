#pragma once
// The document actor of a room in a cluster (`--redis`): one `rev` per document across
// every node. Operations are committed in Redis with a revision check (optimistic: a stale
// rev is refused, the node transforms over what it missed and retries, bounded, then
// `unavailable`), deduplicated by key across nodes; the operation log is a stream, with
// snapshots for `open`. Takes the same messages as the single-node document actor
// (actors/document.hpp).

#include <boost/asio/any_io_executor.hpp>
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <string>

#include "actors/document.hpp"

namespace troupe::core {
struct metrics;
} // namespace troupe::core

namespace troupe::actors {

class cluster_hub;

caf::actor spawn_cluster_document(caf::actor_system& system, boost::asio::any_io_executor strand,
                                  std::string name, const document_settings& settings,
                                  caf::actor presence, cluster_hub& hub, core::metrics& metrics);

} // namespace troupe::actors
