#pragma once
// The presence actor of a room in a cluster (`--redis`): one list per room across every
// node, kept in Redis with one `pseq`; entries are tagged with the node's incarnation, so the
// entries of a node that died are swept by the others (sweep_dead_node). Takes the same
// messages as the single-node presence actor (actors/presence.hpp).

#include <boost/asio/any_io_executor.hpp>
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <functional>
#include <functional>
#include <string>

#include "actors/presence.hpp"

namespace troupe::actors {

class backend;
class cluster_hub;

/// With `app_backend` it emits the webhook events, once for the cluster: presence.lua
/// computes them atomically with the batch, and the node that ran it emits them.
caf::actor spawn_cluster_presence(caf::actor_system& system, boost::asio::any_io_executor strand,
                                  std::string room, const presence_settings& settings,
                                  cluster_hub& hub, backend* app_backend = nullptr);

/// Removes every presence entry of the node `incarnation`, which stopped beating, and tells
/// each room's members (one diff per room, a new pseq). Idempotent: several nodes may sweep
/// the same dead node. Called by the engine from cluster_hub::on_dead_node, and for its own
/// incarnation as it stops (the last word of a clean shutdown). `done`, if given, runs once
/// Redis answered or could not be reached, on the hub's command strand. With `app_backend`
/// it emits the webhook events the sweep caused (member_removed, room_vacated).
void sweep_dead_node(cluster_hub& hub, const std::string& incarnation,
                     std::function<void()> done = {}, backend* app_backend = nullptr);

} // namespace troupe::actors
