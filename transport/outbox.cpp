#include "transport/outbox.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "transport/send_ring.hpp"
#include "transport/tls_stream.hpp"
#include "transport/write_batch.hpp"

namespace troupe::transport {

namespace {
// One TLS write takes at most this much: a full record, which OpenSSL writes at once.
constexpr std::size_t tls_piece = 16 * 1024;

error_code errno_code(int error) { return {error, boost::system::system_category()}; }

/// The socket moved onto the io_context's own executor. An any_io_executor holds that one
/// inline, but a strand does not fit: with the strand as the socket's executor, each
/// operation pending on an idle connection costs heap copies of it. The handlers are bound
/// to the strand instead.
net::ip::tcp::socket on_plain_executor(net::ip::tcp::socket socket, const strand_type& strand) {
  error_code ec;
  const auto protocol = socket.local_endpoint(ec).protocol();
  if (ec) return socket;
  net::ip::tcp::socket plain(strand.get_inner_executor());
  const auto fd = socket.release(ec);
  if (ec) return socket;
  if (plain.assign(protocol, fd, ec); ec) ::close(fd); // `plain` stays closed: writes fail
  return plain;
}
} // namespace

outbox::outbox(net::ip::tcp::socket socket, strand_type strand, std::size_t byte_limit)
    : socket_(on_plain_executor(std::move(socket), strand)), strand_(std::move(strand)),
      byte_limit_(byte_limit) {
  error_code ignored;
  socket_.non_blocking(true, ignored); // writes are tried right away, never block
  socket_.set_option(net::ip::tcp::no_delay(true), ignored);
}

outbox::outbox(std::unique_ptr<tls_stream> tls, strand_type strand, std::size_t byte_limit)
    : socket_(strand.get_inner_executor()), tls_(std::move(tls)), strand_(std::move(strand)),
      byte_limit_(byte_limit) {
  error_code ignored;
  socket().set_option(net::ip::tcp::no_delay(true), ignored);
}

outbox::~outbox() = default;

net::ip::tcp::socket& outbox::socket() noexcept {
  return tls_ ? tls_->next_layer().socket() : socket_;
}

void outbox::send(protocol::frame_ptr frame) {
  write_batch* batch = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (closed_ || overflowed_) return;
    // The peer is a slow consumer when what waits *before* this frame is over the limit: a
    // single large reply (a recovery, a history page) never trips it on its own.
    if (queued_bytes_ > byte_limit_) {
      overflowed_ = true; // reported by the flush
    } else {
      queued_bytes_ += frame->size();
      incoming_.push_back(std::move(frame));
    }
    if (marked_) return;
    marked_ = true;
    // OpenSSL's writes stay on the strand; a thread that runs no event loop has no batch.
    if (!tls_) batch = write_batch::of_this_thread();
  }
  if (batch)
    batch->add(shared_from_this());
  else
    net::post(strand_, [self = shared_from_this()] { self->flush_on_strand(); });
}

void outbox::reset(std::string_view reason) {
  net::post(strand_, [self = shared_from_this(), reason = std::string(reason)] {
    if (self->on_reset_) self->on_reset_(reason);
  });
}

void outbox::send_urgent(protocol::frame_ptr frame, write_completion done) {
  {
    std::lock_guard lock(mutex_);
    if (closed_ || stop_writing_) {
      if (done)
        net::post(strand_,
                  [done = std::move(done)]() mutable { done(net::error::operation_aborted, 0); });
      return;
    }
    queued_bytes_ += frame->size();
    take_incoming_locked(); // keep the order of what was sent before
    writing_.push_back({std::move(frame), std::move(done)});
    if (!tls_) return write_locked();
  }
  write_tls();
}

void outbox::take_incoming_locked() {
  for (auto& frame : incoming_)
    writing_.push_back({std::move(frame), {}});
  incoming_.clear();
}

bool outbox::report_overflow_locked() {
  if (!overflowed_ || overflow_reported_) return false;
  overflow_reported_ = true;
  // Nothing more is written until the owner has heard: it drops the queue (the client
  // recovers it by `since`) and sends its last words instead.
  net::post(strand_, [self = shared_from_this()] {
    if (auto handler = std::move(self->on_overflow_)) {
      self->on_overflow_ = nullptr;
      handler();
    } else {
      self->flush_on_strand(); // no owner listening: write on
    }
  });
  return true;
}

void outbox::flush_on_strand() {
  {
    std::lock_guard lock(mutex_);
    marked_ = false;
    if (report_overflow_locked()) return;
    take_incoming_locked();
    if (!tls_) return write_locked();
  }
  write_tls();
}

bool outbox::flush_marked(send_ring* ring, std::uint64_t tag) {
  std::lock_guard lock(mutex_);
  marked_ = false;
  if (report_overflow_locked()) return false;
  take_incoming_locked();
  if (!ring) {
    write_locked();
    return false;
  }
  if (waiting_for_socket_ || stop_writing_ || nothing_to_write()) {
    check_drained_locked();
    return false;
  }
  thread_local std::vector<iovec> gather;
  in_flight_ = gather_locked(gather);
  waiting_for_socket_ = true;
  ring->queue(socket_.native_handle(), gather.data(), gather.size(), tag);
  return true;
}

void outbox::ring_write_done(int result) {
  std::lock_guard lock(mutex_);
  waiting_for_socket_ = false;
  in_flight_ = 0;
  if (close_after_write_) {
    net::post(strand_, [self = shared_from_this()] { self->close(); });
    return;
  }
  if (result == -EAGAIN || result == -EWOULDBLOCK) return wait_writable_locked();
  if (result < 0) return fail_locked(errno_code(-result));
  consume_locked(static_cast<std::size_t>(result));
  write_locked(); // what the socket did not take, and what came meanwhile
}

std::size_t outbox::gather_locked(std::vector<iovec>& into) const {
  into.clear();
  for (std::size_t i = front_; i < writing_.size() && into.size() < max_gather; ++i) {
    auto bytes = writing_[i].frame->wire();
    if (i == front_) bytes.remove_prefix(written_of_front_);
    into.push_back({const_cast<char*>(bytes.data()), bytes.size()});
  }
  return into.size();
}

void outbox::write_locked() {
  // Shared by every outbox on this thread: writing never nests.
  thread_local std::vector<iovec> gather;
  while (!nothing_to_write() && !waiting_for_socket_) {
    if (stop_writing_) return;
    gather_locked(gather);
    msghdr message{};
    message.msg_iov = gather.data();
    message.msg_iovlen = gather.size();
    // The descriptor rather than the socket object: this may run on another I/O thread than
    // the strand that reads; the mutex keeps it from being closed meanwhile.
    const ssize_t written =
        ::sendmsg(socket_.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_writable_locked();
      return fail_locked(errno_code(errno));
    }
    consume_locked(static_cast<std::size_t>(written));
  }
  check_drained_locked();
}

void outbox::wait_writable_locked() {
  waiting_for_socket_ = true;
  // The socket object is only used on its strand.
  net::post(strand_, [self = shared_from_this()] {
    self->socket_.async_wait(net::socket_base::wait_write,
                             net::bind_executor(self->strand_, [self](error_code ec) {
                               std::lock_guard lock(self->mutex_);
                               self->waiting_for_socket_ = false;
                               if (ec) return self->fail_locked(ec);
                               self->write_locked();
                             }));
  });
}

void outbox::write_tls() {
  std::unique_lock lock(mutex_);
  if (waiting_for_socket_ || stop_writing_) return; // the write in flight comes back here
  if (nothing_to_write()) {
    if (tls_->write_piece.capacity() > 4096) // a burst should not pin its peak
      std::string().swap(tls_->write_piece);
    return check_drained_locked();
  }
  // OpenSSL encrypts one buffer at a time: gather the queued frames into one piece, so
  // that many small frames cost one record and one system call rather than one each.
  auto& piece = tls_->write_piece;
  piece.clear();
  for (std::size_t i = front_; i < writing_.size() && piece.size() < tls_piece; ++i) {
    auto bytes = writing_[i].frame->wire();
    if (i == front_) bytes.remove_prefix(written_of_front_);
    piece.append(bytes.substr(0, tls_piece - piece.size()));
    ++in_flight_;
  }
  waiting_for_socket_ = true;
  lock.unlock();
  net::async_write(*tls_, net::buffer(piece),
                   [self = shared_from_this()](error_code ec, std::size_t written) {
                     {
                       std::lock_guard lock(self->mutex_);
                       self->waiting_for_socket_ = false;
                       self->in_flight_ = 0;
                       if (ec) return self->fail_locked(ec);
                       self->consume_locked(written);
                     }
                     self->write_tls();
                   });
}

void outbox::consume_locked(std::size_t bytes) {
  queued_bytes_ -= bytes;
  while (bytes > 0) {
    auto& front = writing_[front_];
    const std::size_t left = front.frame->size() - written_of_front_;
    if (bytes < left) {
      written_of_front_ += bytes;
      return;
    }
    bytes -= left;
    written_of_front_ = 0;
    if (front.done)
      net::post(strand_, [done = std::move(front.done), size = front.frame->size()]() mutable {
        done(error_code{}, size);
      });
    front.frame.reset();
    ++front_;
  }
  if (nothing_to_write()) {
    writing_.clear();
    front_ = 0;
    if (writing_.capacity() > max_gather)
      writing_.shrink_to_fit(); // a burst should not pin its peak
  } else if (front_ >= max_gather && 2 * front_ >= writing_.size()) {
    // A queue that never empties: drop the written entries now and then.
    writing_.erase(writing_.begin(), writing_.begin() + static_cast<std::ptrdiff_t>(front_));
    front_ = 0;
  }
}

void outbox::discard_pending() {
  std::lock_guard lock(mutex_);
  incoming_.clear();
  std::vector<entry> kept;
  for (std::size_t i = front_; i < writing_.size(); ++i) {
    // Started: partly written, or held by a write in flight.
    const bool started = (i == front_ && written_of_front_ > 0) || i < front_ + in_flight_;
    if (started || writing_[i].done) kept.push_back(std::move(writing_[i]));
  }
  writing_ = std::move(kept);
  front_ = 0;
  queued_bytes_ = 0;
  for (auto& e : writing_)
    queued_bytes_ += e.frame->size();
  queued_bytes_ -= written_of_front_;
}

void outbox::when_drained(write_completion done) {
  {
    std::lock_guard lock(mutex_);
    drained_handlers_.push_back(std::move(done));
    take_incoming_locked();
    if (!tls_) return write_locked();
  }
  write_tls();
}

void outbox::check_drained_locked() {
  // Frames still incoming are in a batch or a posted flush, which comes back here.
  if (!nothing_to_write() || drained_handlers_.empty() || !incoming_.empty()) return;
  for (auto& handler : std::exchange(drained_handlers_, {}))
    net::post(strand_, [handler = std::move(handler)]() mutable { handler(error_code{}, 0); });
}

void outbox::fail_locked(error_code ec) {
  closed_ = true;
  stop_writing_ = true;
  incoming_.clear();
  queued_bytes_ = 0;
  for (std::size_t i = front_; i < writing_.size(); ++i)
    if (writing_[i].done)
      net::post(strand_, [done = std::move(writing_[i].done), ec]() mutable { done(ec, 0); });
  writing_.clear();
  front_ = 0;
  written_of_front_ = 0;
  for (auto& handler : std::exchange(drained_handlers_, {}))
    net::post(strand_, [handler = std::move(handler), ec]() mutable { handler(ec, 0); });
  net::post(strand_, [self = shared_from_this()] { self->close(); });
}

void outbox::close_gracefully(std::chrono::steady_clock::duration bound, write_completion done) {
  if (closing_gracefully_) {
    if (done) when_drained(std::move(done));
    return;
  }
  closing_gracefully_ = true;
  {
    std::lock_guard lock(mutex_);
    take_incoming_locked();
    closed_ = true; // no new frames; what is queued still goes out
  }
  when_drained(write_completion([self = shared_from_this(), bound,
                                 done = std::move(done)](error_code ec, std::size_t) mutable {
    if (ec || !self->socket().is_open()) {
      self->close();
    } else if (self->tls_) {
      // TLS's goodbye: our close_notify, then the peer's (or its end of the connection).
      auto deadline = std::make_shared<net::steady_timer>(self->strand_, bound);
      deadline->async_wait([self](error_code) { self->close(); });
      self->tls_->async_shutdown([deadline](error_code) { deadline->cancel(); });
    } else {
      {
        std::lock_guard lock(self->mutex_);
        error_code ignored;
        self->socket_.shutdown(net::socket_base::shutdown_send, ignored);
      }
      auto deadline = std::make_shared<net::steady_timer>(self->strand_, bound);
      deadline->async_wait([self](error_code) { self->close(); });
      self->discard_input(deadline);
    }
    if (done) done(ec, 0);
  }));
}

void outbox::discard_input(std::shared_ptr<net::steady_timer> deadline) {
  // Waits for readability rather than reading into a buffer of its own: ten thousand
  // connections closing at once would otherwise hold ten thousand buffers.
  socket_.async_wait(
      net::socket_base::wait_read,
      net::bind_executor(strand_, [self = shared_from_this(), deadline](error_code ec) {
        thread_local std::array<char, 4096> scratch;
        while (!ec) {
          self->socket_.read_some(net::buffer(scratch), ec);
          if (ec == net::error::would_block || ec == net::error::try_again)
            return self->discard_input(deadline);
        }
        deadline->cancel(); // the peer closed too (or the socket did): close now
      }));
}

void outbox::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  stop_writing_ = true;
  incoming_.clear();
  queued_bytes_ = 0;
  // A send the ring holds names the descriptor: closing it now could let a new connection
  // take the number before the kernel reads it. The ring's completion closes it.
  if (in_flight_ > 0 && !tls_) {
    close_after_write_ = true;
    return;
  }
  close_socket_locked();
}

void outbox::close_socket_locked() {
  auto& socket = this->socket();
  if (!socket.is_open()) return;
  error_code ignored;
  socket.shutdown(net::socket_base::shutdown_both, ignored);
  socket.close(ignored);
}

std::size_t outbox::queued_bytes() const {
  std::lock_guard lock(mutex_);
  return queued_bytes_;
}

} // namespace troupe::transport
