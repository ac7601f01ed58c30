#pragma once
// The directory finds or starts the actor of a room by name. Connections acquire a room
// once and then talk to it directly; a room no one holds for `room_idle` hands its log to
// the store and ends, freeing its memory while its seq, epoch and history live on. A room's
// actors load their state from the store as they start, on the directory's strand.

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <caf/fwd.hpp>

#include <chrono>

#include "actors/document.hpp"
#include "actors/presence.hpp"
#include "actors/message_log.hpp"

namespace troupe::actors {

class backend;
class cluster_hub;

struct directory_settings {
  message_log_settings room;
  presence_settings presence;
  document_settings document;
  std::chrono::milliseconds room_idle{std::chrono::seconds(60)};
  /// Set (`--redis`): rooms are the cluster's actors, which keep their state in Redis; the
  /// store and the storage actor are not used.
  cluster_hub* cluster = nullptr;
  /// Set (`--backend`): rooms' presence emits the webhook events there.
  backend* app_backend = nullptr;
};

/// Messages it takes:
///  - (acquire_atom, room name, room_reply): answered through the room_reply with the room's
///    actors, held for the requester until it sends (release_atom, room name).
///  - (stop_atom): every room hands its log and document to the store; then the directory
///    ends.
///  `storage` is the storage actor rooms write through (none for the memory store).
caf::actor spawn_directory(caf::actor_system& system, boost::asio::io_context& io,
                           directory_settings settings, store::room_store& store,
                           caf::actor storage, core::metrics& metrics);

} // namespace troupe::actors
