#include "actors/strand_actor.hpp"

#include <boost/asio/post.hpp>
#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>

namespace troupe::actors {

caf::actor spawn_on_strand(caf::actor_system& system, boost::asio::any_io_executor strand,
                           const std::function<caf::behavior(companion* self)>& make_behavior) {
  caf::actor handle = system.spawn<companion, caf::hidden>();
  auto* self = caf::actor_cast<companion*>(handle);
  // Runs on the sender's thread and only hands the message over. The strong reference keeps
  // the companion alive while messages are in flight (the cycle ends when it quits and
  // drops this handler); activate() on a companion that has quit does nothing.
  caf::strong_actor_ptr keep_alive = caf::actor_cast<caf::strong_actor_ptr>(handle);
  self->on_enqueue([strand = std::move(strand), keep_alive](caf::mailbox_element_ptr element) {
    boost::asio::post(strand, [keep_alive, element = std::move(element)] {
      caf::actor_cast<companion*>(keep_alive)->activate(nullptr, *element);
    });
  });
  self->become(make_behavior(self));
  return handle;
}

void quit_on_strand(companion* self) {
  // actor_companion::disconnect() is declared but not built into Debian's CAF 0.17.6: do
  // what it would, drop the handler (ending the reference cycle) and clean up.
  self->on_enqueue(nullptr);
  self->cleanup(caf::error{}, nullptr);
}

} // namespace troupe::actors
