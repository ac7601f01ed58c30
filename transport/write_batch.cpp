#include "transport/write_batch.hpp"

#include <boost/asio/post.hpp>

#include <cerrno>

#include "transport/outbox.hpp"
#include "transport/send_ring.hpp"

namespace troupe::transport {

namespace {
thread_local std::shared_ptr<write_batch> this_thread_batch;
// Sends per submission; a larger turn is submitted in several.
constexpr unsigned ring_entries = 1024;
} // namespace

void write_batch::attach_this_thread(boost::asio::io_context& io, bool io_uring) {
  this_thread_batch = std::make_shared<write_batch>(io, io_uring);
}

void write_batch::detach_this_thread() { this_thread_batch.reset(); }

write_batch* write_batch::of_this_thread() noexcept { return this_thread_batch.get(); }

write_batch::write_batch(boost::asio::io_context& io, bool io_uring) : io_(io) {
  if (io_uring) ring_ = send_ring::open(ring_entries);
}

write_batch::~write_batch() = default;

void write_batch::add(std::shared_ptr<outbox> box) {
  {
    std::lock_guard lock(mutex_);
    marked_.push_back(std::move(box));
    if (flush_posted_) return;
    flush_posted_ = true;
  }
  // Posted, not run now: it runs after the handlers already queued, so that everything sent
  // in this turn (many rooms' broadcasts, a burst of publishes) goes out in one pass.
  boost::asio::post(io_, [self = shared_from_this()] { self->flush(); });
}

void write_batch::flush() {
  auto* runner = of_this_thread();
  if (!runner) runner = this; // a thread that runs io_ without a batch (shutdown): no ring
  auto& boxes = runner->flushing_;
  {
    std::lock_guard lock(mutex_);
    flush_posted_ = false;
    boxes.swap(marked_); // outboxes marked while writing wait for the next turn
  }
  runner->write(boxes);
  boxes.clear();
}

void write_batch::write(std::vector<std::shared_ptr<outbox>>& boxes) {
  if (!ring_ || of_this_thread() != this) {
    for (auto& box : boxes)
      box->flush_marked(nullptr, 0);
    return;
  }
  completed_.assign(boxes.size(), 0);
  auto submit = [&] {
    ring_->submit([&](std::uint64_t tag, int result) {
      completed_[tag] = 1;
      boxes[tag]->ring_write_done(result);
    });
  };
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    if (!ring_->has_room(outbox::max_gather)) submit();
    if (!boxes[i]->flush_marked(ring_.get(), i)) completed_[i] = 1; // nothing to send
  }
  submit();
  for (std::size_t i = 0; i < boxes.size(); ++i)
    if (!completed_[i]) boxes[i]->ring_write_done(-EIO); // the ring failed: cut the connection
}

} // namespace troupe::transport
