#pragma once
// CAF actors whose mailboxes are drained on Asio strands.
//
// The hot actors (connections, rooms) live on the threads that run the sockets: handing a
// message between a CAF worker and an Asio thread per delivery costs context switches and
// futex calls (see shared/design.md). An actor_companion gives CAF's mailbox, addressing,
// request/response and timers; each enqueued message is posted to the actor's strand and
// handled there, so its handlers touch their state and their sockets without locks.

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <caf/actor.hpp>
#include <caf/behavior.hpp>
#include <caf/fwd.hpp>

#include <functional>

namespace caf {
class actor_companion;
}

namespace troupe::actors {

using companion = caf::actor_companion;

/// Spawns an actor whose messages run on `strand`. `make_behavior` runs right away, on the
/// caller's thread, before any message can arrive; the behaviour it returns owns the
/// actor's state. The actor is hidden from the system's count of running actors: it ends
/// when a handler calls quit_on_strand(self), or when its owner calls it on the strand.
caf::actor spawn_on_strand(caf::actor_system& system, boost::asio::any_io_executor strand,
                           const std::function<caf::behavior(companion* self)>& make_behavior);

/// Ends the actor from outside its handlers (inside one, call self->quit()); messages
/// still on their way are dropped. Call on its strand.
void quit_on_strand(companion* self);

} // namespace troupe::actors
