#pragma once
// The writes of one I/O thread, flushed once per turn of its event loop (uWebSockets'
// per-loop cork). A room's broadcast appends one shared frame to each member's outbox and
// marks it here; one handler, posted once, then writes every marked outbox: one system call
// per socket however many frames it got in the turn, and no handler posted per socket.
//
// With io_uring those writes go to the kernel as one submission for the whole batch instead
// of one sendmsg each (send_ring); where io_uring is not available, or is switched off, the
// batch calls sendmsg itself.

#include <utility>

#include <boost/asio/io_context.hpp>

#include <memory>
#include <mutex>
#include <vector>

namespace troupe::transport {

class outbox;
class send_ring;

class write_batch : public std::enable_shared_from_this<write_batch> {
public:
  /// Makes the calling thread one of `io`'s I/O threads: outboxes that get frames from it are
  /// written by it. `io_uring`: submit the writes through io_uring when the kernel allows.
  /// Call before io.run() on that thread.
  static void attach_this_thread(boost::asio::io_context& io, bool io_uring);
  static void detach_this_thread();

  /// The calling thread's batch; null on a thread that is not an I/O thread (frames sent from
  /// there are flushed on the outbox's strand instead).
  static write_batch* of_this_thread() noexcept;

  /// Whether this batch submits through io_uring.
  bool uses_io_uring() const noexcept { return ring_ != nullptr; }

  /// Marks `box` to be written at the end of this turn. Each outbox is added at most once
  /// per turn (it keeps a flag). Called by the batch's own thread only.
  void add(std::shared_ptr<outbox> box);

  write_batch(boost::asio::io_context& io, bool io_uring);
  ~write_batch();
  write_batch(const write_batch&) = delete;
  write_batch& operator=(const write_batch&) = delete;

private:
  void flush();
  void write(std::vector<std::shared_ptr<outbox>>& boxes);

  boost::asio::io_context& io_;
  // With several I/O threads, the posted flush may run on any of them, while this batch's own
  // thread goes on marking: the marks are guarded, and the writing uses the ring of the thread
  // that runs the flush (an io_uring takes submissions from the thread that made it).
  std::mutex mutex_;
  std::vector<std::shared_ptr<outbox>> marked_;
  bool flush_posted_ = false;
  std::vector<std::shared_ptr<outbox>> flushing_; // the running thread's, reused
  std::vector<char> completed_;                   // likewise
  std::unique_ptr<send_ring> ring_;
};

} // namespace troupe::transport
