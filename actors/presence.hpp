#pragma once
// The presence actor of a room: who is here (one entry per connection, with its state), who
// is typing, and the diffs that keep every member's view current. It lives beside the
// room's message log, on its own strand, and owns `pseq`.

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <caf/fwd.hpp>

#include <chrono>
#include <string>

namespace troupe::actors {

class backend;

struct presence_settings {
  std::chrono::milliseconds window{50};         ///< changes within it share one diff
  std::chrono::milliseconds grace{3000};        ///< a vanished connection stays listed this long
  std::chrono::milliseconds typing_lapse{6000}; ///< `typing on` without a refresh ends
};

/// Messages it takes: presence_join / presence_leave from the room's log actor;
/// presence_get, presence_set, presence_typing from connections; stop_atom to end.
/// With `app_backend` it emits the webhook events (room_occupied, member_added,
/// member_removed, room_vacated) as users arrive and leave.
caf::actor spawn_presence(caf::actor_system& system, boost::asio::any_io_executor strand,
                          std::string room, const presence_settings& settings,
                          backend* app_backend = nullptr);

} // namespace troupe::actors
