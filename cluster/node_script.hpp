#pragma once
// The cluster's node-level keys and channels: liveness (cluster/scripts/heartbeat.lua) and
// the control channel that carries cluster-wide requests. Arguments and decoding only.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/publish_script.hpp"
#include "cluster/redis_types.hpp"

namespace troupe::cluster {

namespace scripts {
std::string_view heartbeat_text() noexcept;
std::string_view heartbeat_sha1() noexcept;
} // namespace scripts

const redis_script& heartbeat_script();

/// tr:nodes: incarnation -> ms of its last beat.
inline constexpr std::string_view nodes_key = "tr:nodes";
/// Every node subscribes to it: requests for the whole cluster.
inline constexpr std::string_view control_channel = "tr:ctl";
/// Where the node `incarnation` hears the answers to its requests.
std::string node_channel(std::string_view incarnation);

script_call heartbeat_call(std::string_view incarnation, std::uint64_t timeout_ms);
struct heartbeat_result {
  std::size_t live = 0;
  std::vector<std::string> dead; ///< incarnations that stopped beating, not yet swept
};
heartbeat_result decode_heartbeat(const redis_reply& reply);

/// A control message: [kind, body] packed with MessagePack.
std::string encode_control(std::string_view kind, std::string_view body);
struct control_message {
  std::string_view kind;
  std::string_view body; ///< views into the payload
};
/// Throws bad_reply for anything but [kind, body].
control_message decode_control(std::string_view payload);

} // namespace troupe::cluster
