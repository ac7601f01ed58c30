#pragma once
// The write side of one connection: every byte to its socket passes through here in
// order, our frames and Beast's own (handshake, pong, close) alike, so they never
// interleave.
//
// Rooms append shared broadcast frames; the first append in a turn of the sending thread's
// event loop marks the outbox in that thread's write_batch, which writes everything queued
// with one non-blocking gather write at the end of the turn (uWebSockets' cork), and waits
// for writability only for what the socket did not take. Past `byte_limit` queued bytes the
// connection is a slow consumer: further frames are dropped and the owner is told, to cut it
// (4500).
//
// The write side is guarded by the outbox's mutex rather than confined to its strand, so
// that the batch of whichever I/O thread sent the frames can write them without a hand-off
// to the connection's strand per delivery. What must use the socket object itself (waiting
// for writability, reading, closing) still runs on the strand.
//
// With TLS the outbox owns the connection's tls_stream instead of a bare socket, and the
// flush hands what is queued to OpenSSL in record-sized pieces, one write in flight; the
// plain path above is unchanged by it.

#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "actors/frame_sink.hpp"

namespace troupe::transport {

class tls_stream;
class send_ring;

namespace net = boost::asio;
using error_code = boost::system::error_code;
using strand_type = net::strand<net::io_context::executor_type>;

/// A move-only callback for a write that completes once its bytes reached the socket.
class write_completion {
public:
  write_completion() = default;
  template <class Handler>
  explicit write_completion(Handler&& handler)
      : impl_(std::make_unique<model<std::decay_t<Handler>>>(std::forward<Handler>(handler))) {}

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  void operator()(error_code ec, std::size_t bytes) {
    auto impl = std::move(impl_);
    impl->invoke(ec, bytes);
  }

private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual void invoke(error_code, std::size_t) = 0;
  };
  template <class Handler>
  struct model final : concept_t {
    explicit model(Handler&& h) : handler(std::move(h)) {}
    explicit model(const Handler& h) : handler(h) {}
    void invoke(error_code ec, std::size_t bytes) override { std::move(handler)(ec, bytes); }
    Handler handler;
  };
  std::unique_ptr<concept_t> impl_;
};

class outbox final : public actors::frame_sink, public std::enable_shared_from_this<outbox> {
public:
  /// One write takes at most this many frames; the rest go in the next.
  static constexpr std::size_t max_gather = 64;

  /// `socket` must use `strand` as its executor.
  outbox(net::ip::tcp::socket socket, strand_type strand, std::size_t byte_limit);
  /// The same over TLS (handshake done); `tls` must use `strand` as its executor.
  outbox(std::unique_ptr<tls_stream> tls, strand_type strand, std::size_t byte_limit);
  ~outbox() override;

  // Any thread ------------------------------------------------------------------------
  void send(protocol::frame_ptr frame) override;
  /// Runs the on_reset handler on the strand.
  void reset(std::string_view reason) override;

  // On the strand ---------------------------------------------------------------------
  /// Queues a frame that bypasses the byte limit (control frames, the last words to a
  /// slow consumer) and calls `done` once it is written, or failed.
  void send_urgent(protocol::frame_ptr frame, write_completion done = {});

  /// Called once, on the strand, when the queue first exceeds its byte limit.
  void on_overflow(std::function<void()> handler) { on_overflow_ = std::move(handler); }
  /// Called on the strand for each reset(): a room lost the state the peer holds.
  void on_reset(std::function<void(std::string_view reason)> handler) {
    on_reset_ = std::move(handler);
  }

  /// Drops queued frames that have not started going out (a slow consumer is being cut:
  /// it recovers them by `since`). A partly written frame is finished.
  void discard_pending();

  /// Calls `done` once everything queued so far is written (or writing failed).
  void when_drained(write_completion done);

  /// Takes no new frames, finishes writing what is queued, ends the sending side, and
  /// reads the peer's input until it closes too (at most `bound`), then closes. Closing with
  /// unread input would make the kernel send a reset that destroys our last frames (the
  /// close frame among them) before the peer reads them. `done` runs once the queue is
  /// written. Idempotent.
  void close_gracefully(std::chrono::steady_clock::duration bound, write_completion done = {});

  /// Stops writing and closes the socket now. Further frames are dropped.
  void close();

  /// The TCP socket, under the TLS stream if there is one.
  net::ip::tcp::socket& socket() noexcept;
  /// The TLS stream reads must go through; null on a plain connection.
  tls_stream* tls() noexcept { return tls_.get(); }
  const strand_type& strand() const noexcept { return strand_; }
  std::size_t queued_bytes() const;

  // The write_batch of the thread that marked it --------------------------------------
  /// Writes what is queued: with sendmsg when `ring` is null, else queued on `ring` with
  /// `tag` (true if a send was queued; its result comes back through ring_write_done()).
  bool flush_marked(send_ring* ring, std::uint64_t tag);
  /// The ring's result for the send flush_marked() queued: bytes written or -errno.
  void ring_write_done(int result);

private:
  struct entry {
    protocol::frame_ptr frame;
    write_completion done;
  };

  void flush_on_strand();
  void write_tls();
  // With mutex_ held. Callbacks they owe (completions, overflow) are posted to the strand.
  void write_locked();
  std::size_t gather_locked(std::vector<iovec>& into) const;
  void wait_writable_locked();
  void consume_locked(std::size_t bytes);
  void fail_locked(error_code ec);
  void check_drained_locked();
  void take_incoming_locked();
  bool report_overflow_locked(); ///< true if it reported now: write nothing yet
  void close_socket_locked();
  bool nothing_to_write() const noexcept { return front_ == writing_.size(); }
  void discard_input(std::shared_ptr<net::steady_timer> deadline);

  net::ip::tcp::socket socket_; // unopened when tls_ holds the connection
  std::unique_ptr<tls_stream> tls_;
  strand_type strand_;
  const std::size_t byte_limit_;

  // Guarded by mutex_: senders on any thread, the batch that writes, the strand.
  mutable std::mutex mutex_;
  std::vector<protocol::frame_ptr> incoming_;
  std::size_t queued_bytes_ = 0; // incoming_ and writing_, not yet handed to the kernel
  bool marked_ = false;          // in a write_batch, or a flush is posted to the strand
  bool overflowed_ = false;
  bool overflow_reported_ = false;
  bool closed_ = false;            // takes no new frames (what is queued may still go out)
  bool stop_writing_ = false;      // failed or closed: nothing more is written
  bool close_after_write_ = false; // close() came while a write was in flight
  // A vector with a moving front rather than a deque: an idle connection's empty queue then
  // costs no allocation (libstdc++'s deque allocates 576 bytes up front).
  // 32-bit counts: every idle connection has an outbox (a frame is under 4 GiB).
  std::vector<entry> writing_;
  std::uint32_t front_ = 0;            // writing_[front_] is the next to write
  std::uint32_t written_of_front_ = 0; // bytes of it already written
  std::uint32_t in_flight_ = 0;        // entries, from front_, that a ring or TLS write holds
  bool waiting_for_socket_ = false;    // a write is in flight, or we wait for writability
  bool closing_gracefully_ = false;    // strand only
  std::vector<write_completion> drained_handlers_;

  // Strand only.
  std::function<void()> on_overflow_;
  std::function<void(std::string_view)> on_reset_;
};

} // namespace troupe::transport
