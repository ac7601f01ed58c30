#include "transport/outbox.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <array>

#include "transport/tls_stream.hpp"

namespace troupe::transport {

namespace {
// One writev takes at most this many frames; the rest go in the next call of the loop.
constexpr std::size_t max_gather = 64;
// One TLS write takes at most this much: a full record, which OpenSSL writes at once.
constexpr std::size_t tls_piece = 16 * 1024;
} // namespace

outbox::outbox(net::ip::tcp::socket socket, strand_type strand, std::size_t byte_limit)
    : socket_(std::move(socket)), strand_(std::move(strand)), byte_limit_(byte_limit) {
  error_code ignored;
  socket_.non_blocking(true, ignored); // writes are tried right away, never block
  socket_.set_option(net::ip::tcp::no_delay(true), ignored);
}

outbox::outbox(std::unique_ptr<tls_stream> tls, strand_type strand, std::size_t byte_limit)
    : socket_(strand), tls_(std::move(tls)), strand_(std::move(strand)), byte_limit_(byte_limit) {
  error_code ignored;
  socket().set_option(net::ip::tcp::no_delay(true), ignored);
}

outbox::~outbox() = default;

net::ip::tcp::socket& outbox::socket() noexcept {
  return tls_ ? tls_->next_layer().socket() : socket_;
}

void outbox::send(protocol::frame_ptr frame) {
  {
    std::lock_guard lock(mutex_);
    if (closed_ || overflowed_) return;
    // The peer is a slow consumer when what waits *before* this frame is over the limit: a
    // single large reply (a recovery, a history page) never trips it on its own.
    if (queued_bytes_ > byte_limit_) {
      overflowed_ = true; // reported by the flush, on the strand
    } else {
      queued_bytes_ += frame->size();
      incoming_.push_back(std::move(frame));
    }
    if (flush_posted_) return;
    flush_posted_ = true;
  }
  net::post(strand_, [self = shared_from_this()] { self->flush(); });
}

void outbox::reset(std::string_view reason) {
  net::post(strand_, [self = shared_from_this(), reason = std::string(reason)] {
    if (self->on_reset_) self->on_reset_(reason);
  });
}

void outbox::send_urgent(protocol::frame_ptr frame, write_completion done) {
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      if (done)
        net::post(strand_,
                  [done = std::move(done)]() mutable { done(net::error::operation_aborted, 0); });
      return;
    }
    queued_bytes_ += frame->size();
  }
  take_incoming(); // keep the order of what was sent before
  writing_.push_back({std::move(frame), std::move(done)});
  write_queued();
}

void outbox::take_incoming() {
  std::lock_guard lock(mutex_);
  for (auto& frame : incoming_)
    writing_.push_back({std::move(frame), {}});
  incoming_.clear();
}

void outbox::flush() {
  bool report_overflow = false;
  {
    std::lock_guard lock(mutex_);
    flush_posted_ = false;
    report_overflow = overflowed_ && on_overflow_;
  }
  take_incoming();
  if (report_overflow) {
    auto handler = std::move(on_overflow_);
    on_overflow_ = nullptr;
    handler();
  }
  write_queued();
}

void outbox::write_queued() {
  if (tls_) return write_tls();
  // Shared by every outbox on this thread: writing never nests.
  thread_local std::vector<net::const_buffer> gather;
  while (!nothing_to_write() && !waiting_for_socket_) {
    gather.clear();
    for (std::size_t i = front_; i < writing_.size() && gather.size() < max_gather; ++i) {
      auto bytes = writing_[i].frame->wire();
      if (i == front_) bytes.remove_prefix(written_of_front_);
      gather.emplace_back(bytes.data(), bytes.size());
    }
    error_code ec;
    const std::size_t written = socket_.write_some(gather, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      waiting_for_socket_ = true;
      socket_.async_wait(net::socket_base::wait_write,
                         [self = shared_from_this()](error_code wait_error) {
                           self->waiting_for_socket_ = false;
                           if (wait_error)
                             self->fail(wait_error);
                           else
                             self->write_queued();
                         });
      return;
    }
    if (ec) {
      fail(ec);
      return;
    }
    consume(written);
  }
  check_drained();
}

void outbox::write_tls() {
  if (waiting_for_socket_) return; // the write in flight comes back here
  if (nothing_to_write()) {
    if (tls_out_.capacity() > 4096) std::string().swap(tls_out_); // a burst should not pin its peak
    return check_drained();
  }
  // OpenSSL encrypts one buffer at a time: gather the queued frames into one piece, so
  // that many small frames cost one record and one system call rather than one each.
  tls_out_.clear();
  for (std::size_t i = front_; i < writing_.size() && tls_out_.size() < tls_piece; ++i) {
    auto bytes = writing_[i].frame->wire();
    if (i == front_) bytes.remove_prefix(written_of_front_);
    tls_out_.append(bytes.substr(0, tls_piece - tls_out_.size()));
    ++tls_in_flight_;
  }
  waiting_for_socket_ = true;
  net::async_write(*tls_, net::buffer(tls_out_),
                   [self = shared_from_this()](error_code ec, std::size_t written) {
                     self->waiting_for_socket_ = false;
                     self->tls_in_flight_ = 0;
                     if (ec) return self->fail(ec);
                     self->consume(written);
                     self->write_tls();
                   });
}

void outbox::consume(std::size_t bytes) {
  {
    std::lock_guard lock(mutex_);
    queued_bytes_ -= bytes;
  }
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
    // Started: partly written, or already handed to OpenSSL.
    const bool started = (i == front_ && written_of_front_ > 0) || i < front_ + tls_in_flight_;
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
  drained_handlers_.push_back(std::move(done));
  take_incoming();
  write_queued();
}

void outbox::check_drained() {
  if (!nothing_to_write() || drained_handlers_.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (!incoming_.empty()) return; // a flush is posted and will come back here
  }
  for (auto& handler : std::exchange(drained_handlers_, {}))
    net::post(strand_, [handler = std::move(handler)]() mutable { handler(error_code{}, 0); });
}

void outbox::fail(error_code ec) {
  close();
  for (std::size_t i = front_; i < writing_.size(); ++i)
    if (writing_[i].done)
      net::post(strand_, [done = std::move(writing_[i].done), ec]() mutable { done(ec, 0); });
  writing_.clear();
  front_ = 0;
  written_of_front_ = 0;
  for (auto& handler : std::exchange(drained_handlers_, {}))
    net::post(strand_, [handler = std::move(handler), ec]() mutable { handler(ec, 0); });
}

void outbox::close_gracefully(std::chrono::steady_clock::duration bound, write_completion done) {
  if (closing_gracefully_) {
    if (done) when_drained(std::move(done));
    return;
  }
  closing_gracefully_ = true;
  take_incoming();
  {
    std::lock_guard lock(mutex_);
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
      error_code ignored;
      self->socket_.shutdown(net::socket_base::shutdown_send, ignored);
      auto deadline = std::make_shared<net::steady_timer>(self->strand_, bound);
      deadline->async_wait([self](error_code) { self->close(); });
      self->discard_input(deadline);
    }
    if (done) done(ec, 0);
  }));
}

void outbox::discard_input(std::shared_ptr<net::steady_timer> deadline) {
  auto scratch = std::make_shared<std::array<char, 4096>>();
  socket_.async_read_some(net::buffer(*scratch), [self = shared_from_this(), deadline,
                                                  scratch](error_code ec, std::size_t) {
    if (ec) {
      deadline->cancel(); // the peer closed too (or the socket did): close now
      return;
    }
    self->discard_input(deadline);
  });
}

void outbox::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    incoming_.clear();
    queued_bytes_ = 0;
  }
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
