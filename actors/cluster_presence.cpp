#include "actors/cluster_presence.hpp"

#include "actors/cluster_hub.hpp"

namespace troupe::actors {

// STUB (work in progress, issue 14): the node-local presence actor; the cluster's comes next.
caf::actor spawn_cluster_presence(caf::actor_system& system, boost::asio::any_io_executor strand,
                                  std::string room, const presence_settings& settings,
                                  cluster_hub&) {
  return spawn_presence(system, std::move(strand), std::move(room), settings);
}

void sweep_dead_node(cluster_hub&, const std::string&) {}

} // namespace troupe::actors
