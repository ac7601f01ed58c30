#include "actors/strand_actor.hpp"

#include <boost/asio/post.hpp>
#include <caf/actor_companion.hpp>
#include <caf/actor_system.hpp>

#include <memory>
#include <mutex>
#include <vector>

namespace troupe::actors {

namespace {

// Messages handled per turn of the strand at most, so that one busy actor (a document fed a
// long burst of operations) does not hold its thread from every other strand.
constexpr std::size_t max_per_turn = 256;

/// The messages between the senders' threads and the actor's strand. Senders append; the
/// first append to an empty queue posts one drain, which handles everything queued by then.
/// One post per burst rather than one per message: the post (an allocation, the strand's
/// and the scheduler's locks) was most of what a small message cost.
struct strand_mailbox {
  std::mutex mutex;
  std::vector<caf::mailbox_element_ptr> queued;   // guarded by mutex
  bool drain_posted = false;                      // guarded by mutex
  std::vector<caf::mailbox_element_ptr> draining; // the strand's
  std::size_t next = 0;                           // draining[next] is handled next
};

void drain(const boost::asio::any_io_executor& strand, const caf::strong_actor_ptr& keep_alive,
           const std::shared_ptr<strand_mailbox>& box) {
  auto* self = caf::actor_cast<companion*>(keep_alive);
  for (std::size_t handled = 0;; ++handled) {
    if (box->next == box->draining.size()) {
      box->draining.clear();
      if (box->draining.capacity() > max_per_turn) box->draining.shrink_to_fit(); // a burst's peak
      box->next = 0;
      std::lock_guard lock(box->mutex);
      if (box->queued.empty()) {
        box->drain_posted = false;
        return;
      }
      box->draining.swap(box->queued);
    }
    if (handled == max_per_turn) {
      boost::asio::post(strand, [strand, keep_alive, box] { drain(strand, keep_alive, box); });
      return;
    }
    const auto element = std::move(box->draining[box->next++]);
    self->activate(nullptr, *element);
  }
}

} // namespace

caf::actor spawn_on_strand(caf::actor_system& system, boost::asio::any_io_executor strand,
                           const std::function<caf::behavior(companion* self)>& make_behavior) {
  caf::actor handle = system.spawn<companion, caf::hidden>();
  auto* self = caf::actor_cast<companion*>(handle);
  // Runs on the sender's thread and only hands the message over. The strong reference keeps
  // the companion alive while messages are in flight (the cycle ends when it quits and
  // drops this handler); activate() on a companion that has quit does nothing.
  caf::strong_actor_ptr keep_alive = caf::actor_cast<caf::strong_actor_ptr>(handle);
  self->on_enqueue([strand = std::move(strand), keep_alive,
                    box = std::make_shared<strand_mailbox>()](caf::mailbox_element_ptr element) {
    {
      std::lock_guard lock(box->mutex);
      box->queued.push_back(std::move(element));
      if (box->drain_posted) return;
      box->drain_posted = true;
    }
    boost::asio::post(strand, [strand, keep_alive, box] { drain(strand, keep_alive, box); });
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
