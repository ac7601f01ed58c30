#pragma once
// The messages between actors. Frames for clients never travel as messages: rooms put
// them straight into each member's outbox (actors::frame_sink).

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store/store.hpp"
#include "protocol/messages.hpp"
#include "actors/frame_sink.hpp"

namespace troupe::actors {

using sink_ptr = std::shared_ptr<actors::frame_sink>;

/// Who sends a request to a room: enough to answer, and to list as a member.
struct peer_ref {
  std::string client;
  std::string user;
  std::string name; ///< shown in presence; may be empty
  sink_ptr sink;
  std::string info; ///< the token's `info` as MessagePack, shown in presence; may be empty
};

/// The actors of one room, as the directory hands them out.
struct room_handles {
  caf::actor log;      ///< messages: sub, unsub, pub, history
  caf::actor presence; ///< presence, pset, typing
  caf::actor document; ///< open, op, close
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
struct doc_open {
  peer_ref from;
  protocol::open_request request;
};
/// Consecutive operations of one frame for one document: sequenced in order, answered with
/// one frame of acks, pushed to the other holders in one frame.
struct doc_op {
  peer_ref from;
  std::vector<protocol::op_request> requests;
};
struct doc_close {
  peer_ref from;
  protocol::close_request request;
};
/// The connection is gone: it leaves without a reply. `abrupt`: it vanished without a
/// clean close, so presence keeps it listed for the grace period.
struct room_leave {
  std::string client;
  bool abrupt = false;
};

// Room <-> presence list -------------------------------------------------------------------

/// What holds a connection in a room's presence: a subscription, an open document, or both.
enum class presence_hold : std::uint8_t { subscription = 1, document = 2 };

/// The room's log (on `sub`) or document (on `open`) admits a connection to presence; the
/// presence actor completes the reply with `pseq` and `members` (it owns both), sends it, and
/// answers (joined_atom, client) so that the sender releases the pushes it held back.
struct presence_join {
  peer_ref who;
  presence_hold hold = presence_hold::subscription;
  std::string reply_head; ///< the reply but its last two fields (protocol::encode_*_head)
};

struct presence_leave {
  std::string client;
  presence_hold hold = presence_hold::subscription;
  bool abrupt = false;
};

// Connections -> presence list ---------------------------------------------------------------
struct presence_get {
  peer_ref from;
  protocol::presence_request request;
};
struct presence_set {
  peer_ref from;
  protocol::pset_request request;
};
struct presence_typing {
  peer_ref from;
  protocol::typing_request request;
};

// Rooms and documents <-> the storage actor.

/// One actor's writes, to be made durable; answered with store_done once they are (or are
/// not). An actor has at most one request in flight.
struct store_request {
  store::room_writes writes;
};
struct store_done {
  std::string error; ///< empty: committed
};

// Directory <-> connections and rooms.

/// Where the directory answers an acquire: called on the directory's strand with the room's
/// actors. Requesters are no actors (a connection's mailbox would cost every idle one), so
/// the answer is a callback: it sends what it has to send (sending is safe from any
/// thread), or carries the handles over to the requester's own strand.
struct room_reply {
  std::function<void(const std::string& name, const room_handles& actors)> deliver;
};

using acquire_atom = caf::atom_constant<caf::atom("acquire")>;
using stopped_atom = caf::atom_constant<caf::atom("stopped")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using evict_atom = caf::atom_constant<caf::atom("evict")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using joined_atom = caf::atom_constant<caf::atom("joined")>;
using flush_atom = caf::atom_constant<caf::atom("flush")>;
using grace_atom = caf::atom_constant<caf::atom("grace")>;
using lapse_atom = caf::atom_constant<caf::atom("lapse")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;

} // namespace troupe::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_sub)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_unsub)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_pub)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_history)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_leave)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::doc_open)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::doc_op)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::doc_close)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::room_handles)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::presence_join)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::presence_leave)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::presence_get)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::presence_set)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::presence_typing)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::store_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(troupe::actors::store_done)
