#include "transport/send_ring.hpp"

#include <liburing.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace troupe::transport {

namespace {
// Buffers per send, on average, that the ring keeps room for.
constexpr std::size_t buffers_per_send = 8;
} // namespace

std::unique_ptr<send_ring> send_ring::open(unsigned entries) {
  std::unique_ptr<send_ring> ring(new send_ring(entries));
  // Completions are only read after submit(): the kernel need not wake anyone.
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN;
  if (io_uring_queue_init_params(entries, ring->ring_.get(), &params) < 0) {
    params = {}; // older kernels know neither flag
    if (io_uring_queue_init_params(entries, ring->ring_.get(), &params) < 0) return nullptr;
  }
  return ring;
}

send_ring::send_ring(unsigned entries)
    : ring_(std::make_unique<io_uring>()), messages_(entries),
      buffers_(entries * buffers_per_send) {
  std::memset(ring_.get(), 0, sizeof(io_uring));
}

send_ring::~send_ring() {
  if (ring_->ring_fd > 0) io_uring_queue_exit(ring_.get());
}

bool send_ring::has_room(std::size_t count) const noexcept {
  return messages_used_ < messages_.size() && buffers_used_ + count <= buffers_.size();
}

void send_ring::queue(int fd, const iovec* buffers, std::size_t count, std::uint64_t tag) {
  auto* iov = &buffers_[buffers_used_];
  std::memcpy(iov, buffers, count * sizeof(iovec));
  buffers_used_ += count;
  auto& message = messages_[messages_used_++];
  message = {};
  message.msg_iov = iov;
  message.msg_iovlen = count;
  io_uring_sqe* sqe = io_uring_get_sqe(ring_.get());
  io_uring_prep_sendmsg(sqe, fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, tag);
}

void send_ring::submit(const std::function<void(std::uint64_t, int)>& done) {
  const auto submitted = static_cast<unsigned>(messages_used_);
  messages_used_ = 0;
  buffers_used_ = 0;
  if (submitted == 0) return;
  // MSG_DONTWAIT sends complete while being submitted, so this wait never sleeps.
  int rc;
  do {
    rc = io_uring_submit_and_wait(ring_.get(), submitted);
  } while (rc == -EINTR);
  unsigned seen = 0;
  while (seen < submitted) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(ring_.get(), &cqe) < 0) break;
    done(io_uring_cqe_get_data64(cqe), cqe->res);
    io_uring_cqe_seen(ring_.get(), cqe);
    ++seen;
  }
}

} // namespace troupe::transport
