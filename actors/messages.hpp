#pragma once
// The messages between actors. Frames for clients never travel as messages: rooms put
// them straight into each member's outbox (transport::frame_sink).

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <memory>
#include <string>

#include "protocol/messages.hpp"
#include "transport/frame_sink.hpp"

namespace troupe::actors {

using sink_ptr = std::shared_ptr<transport::frame_sink>;

/// Who sends a request to a room: enough to answer, and to list as a member.
struct peer_ref {
  std::string client;
  std::string user;
  sink_ptr sink;
};

struct room_sub {
  peer_ref from;
  protocol::sub_request request;
};
struct room_unsub {
  peer_ref from;
  protocol::unsub_request request;
};
struct room_pub {
  peer_ref from;
  protocol::pub_request request;
};
struct room_history {
  peer_ref from;
  protocol::history_request request;
};
/// The connection is gone: it leaves without a reply.
struct room_leave {
  std::string client;
};

// Directory <-> connections and rooms.
using acquire_atom = caf::atom_constant<caf::atom("acquire")>;
using acquired_atom = caf::atom_constant<caf::atom("acquired")>;
using stopped_atom = caf::atom_constant<caf::atom("stopped")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using evict_atom = caf::atom_constant<caf::atom("evict")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;

} // namespace troupe::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_sub)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_unsub)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_pub)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_history)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_leave)
