#include "actors/cluster_message_log.hpp"

#include "actors/cluster_hub.hpp"
#include "store/memory_store.hpp"

namespace troupe::actors {

// STUB (work in progress, issue 14): the node-local log; the cluster's comes next.
caf::actor spawn_cluster_message_log(caf::actor_system& system,
                                     boost::asio::any_io_executor strand, std::string name,
                                     const message_log_settings& settings, caf::actor presence,
                                     cluster_hub&, core::metrics& metrics) {
  static store::memory_store store;
  return spawn_message_log(system, std::move(strand), std::move(name), settings,
                           std::move(presence), caf::actor(), store, metrics);
}

} // namespace troupe::actors
