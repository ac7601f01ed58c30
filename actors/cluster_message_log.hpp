#pragma once
// The message log actor of a room in a cluster (`--redis`): Redis holds the room's log and
// sequences it (cluster/scripts/publish.lua: one script per publish, its reply the ack).
// This actor subscribes to the room's channel while the room has local subscribers and
// delivers to them in seq order with no hole and no duplicate (core::ordered_delivery):
// a gap is read back from the room's stream before anything later goes out. Takes the same
// messages as the single-node message log (actors/message_log.hpp).

#include <boost/asio/any_io_executor.hpp>
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <string>

#include "actors/message_log.hpp"

namespace troupe::core {
struct metrics;
} // namespace troupe::core

namespace troupe::actors {

class cluster_hub;

caf::actor spawn_cluster_message_log(caf::actor_system& system, boost::asio::any_io_executor strand,
                                     std::string name, const message_log_settings& settings,
                                     caf::actor presence, cluster_hub& hub, core::metrics& metrics);

} // namespace troupe::actors
