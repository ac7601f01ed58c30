#pragma once
// One io_uring per I/O thread, for the fan-out's writes: a turn's sendmsg calls to many
// sockets go to the kernel as one submission (one system call) instead of one each.
//
// Every send carries MSG_DONTWAIT, so the kernel tries it at once, while submitting, and
// completes it with the bytes it took or -EAGAIN (the socket is full: the outbox then waits
// for writability through Asio, as on the epoll path). Nothing is left in flight after
// submit() returns, so a socket is never written by the ring after submit() and no thread of
// the kernel's (io-wq, SQPOLL) does the work out of the process's sight.

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

struct io_uring;

namespace troupe::transport {

class send_ring {
public:
  /// A ring of `entries` sends, or null where the kernel refuses io_uring (too old,
  /// disabled by sysctl or seccomp).
  static std::unique_ptr<send_ring> open(unsigned entries);
  ~send_ring();
  send_ring(const send_ring&) = delete;
  send_ring& operator=(const send_ring&) = delete;

  /// Room for one more send of `count` buffers?
  bool has_room(std::size_t count) const noexcept;

  /// Queues a sendmsg of `buffers` to `fd` (copied: the data they point to must live until
  /// submit() returns). `tag` comes back with its completion. Needs has_room(count).
  void queue(int fd, const iovec* buffers, std::size_t count, std::uint64_t tag);

  /// Submits everything queued and calls `done(tag, result)` for each send: the bytes
  /// written, or -errno.
  void submit(const std::function<void(std::uint64_t tag, int result)>& done);

  std::size_t queued() const noexcept { return messages_used_; }

private:
  explicit send_ring(unsigned entries);

  std::unique_ptr<io_uring> ring_;
  std::vector<msghdr> messages_;
  std::vector<iovec> buffers_;
  std::size_t messages_used_ = 0;
  std::size_t buffers_used_ = 0;
};

} // namespace troupe::transport
