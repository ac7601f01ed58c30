#pragma once
// One WebSocket connection after the upgrade: our own RFC 6455 frame reader
// (ws_frame_reader) parses what arrives and hands each binary message to the connection
// actor; everything written (our frames, pongs, close frames) goes through the outbox. Owns
// liveness (pings, silence, the connect deadline) and the close sequence. All of it runs
// on the connection's strand.
//
// Reading is reactor style, like uWebSockets: an idle connection only waits for
// readability (no buffer, no pending read operation); once readable, the session reads
// without blocking into a buffer shared by every connection of the I/O thread, parses the
// complete frames in place, and keeps only the bytes of a frame that has not fully arrived.

#include <utility>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <string>

#include "actors/peer.hpp"
#include "transport/outbox.hpp"
#include "transport/server_context.hpp"
#include "transport/ws_frame_reader.hpp"

namespace troupe::transport {

class ws_session final : public actors::peer, public std::enable_shared_from_this<ws_session> {
public:
  using clock = std::chrono::steady_clock;

  /// How long a closed connection may take to acknowledge our end of it.
  static constexpr std::chrono::seconds teardown_bound{5};

  ws_session(net::ip::tcp::socket socket, strand_type strand, server_context& context);
  /// Over TLS: `tls` has done its handshake and carried the upgrade request.
  ws_session(std::unique_ptr<tls_stream> tls, strand_type strand, server_context& context);
  ~ws_session() override;

  /// Answers the upgrade request and starts reading. `early` holds bytes the client sent
  /// after its request, already read by the HTTP parser (its first frames, if it did not
  /// wait for our answer).
  void run(const boost::beast::http::request<boost::beast::http::string_body>& request,
           std::string early = {});

  /// On the strand.
  void close(std::uint16_t code, std::string_view reason, bool reconnect) override;

  boost::asio::any_io_executor executor() const override { return box_->strand(); }

  /// From the liveness sweep: true, once, when the deadline set by the session has passed.
  bool take_due(clock::time_point now) noexcept {
    auto due = due_.load(std::memory_order_relaxed);
    return now.time_since_epoch().count() >= due &&
           due_.compare_exchange_strong(due, never, std::memory_order_relaxed);
  }
  /// From any thread: checks pings, silence and deadlines on the session's strand.
  void check_liveness();

  /// From any thread: close with `code` on the session's strand.
  void close_from_anywhere(std::uint16_t code, std::string reason, bool reconnect);

private:
  ws_session(std::shared_ptr<outbox> box, strand_type strand, server_context& context);
  void wait_readable();
  void on_readable(error_code ec);
  /// Feeds bytes that arrived to the reader; false once the session stops reading.
  bool consume(char* data, std::size_t size);
  bool on_event(const ws_frame_reader::event& event);
  /// Sets the deadline at which the liveness sweep calls on_deadline().
  void arm_timer();
  void on_deadline();
  void on_overflow();
  void finish();

  server_context& context_;
  std::shared_ptr<outbox> box_;
  static constexpr clock::rep never = std::numeric_limits<clock::rep>::max();
  /// The next liveness deadline (once closing, the bound on the close handshake), read by
  /// the liveness sweep; `never` when none.
  std::atomic<clock::rep> due_{never};
  clock::time_point close_by_; // once closing
  std::unique_ptr<actors::connection> connection_;
  ws_frame_reader reader_;
  clock::time_point accepted_at_;
  clock::time_point last_ping_;
  clock::time_point last_read_; // any frame, pong or fragment counts as life
  bool closing_ = false;        // our close frame is queued
  bool finished_ = false;
};

} // namespace troupe::transport
