#include "transport/ws_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>

#include "core/metrics.hpp"
#include "protocol/codec.hpp"

namespace troupe::transport {

namespace websocket = boost::beast::websocket;

ws_session::ws_session(net::ip::tcp::socket socket, strand_type strand, server_context& context)
    : ws_session(std::make_shared<outbox>(std::move(socket), strand, context.settings.queue_limit),
                 strand, context) {}

ws_session::ws_session(std::unique_ptr<tls_stream> tls, strand_type strand, server_context& context)
    : ws_session(std::make_shared<outbox>(std::move(tls), strand, context.settings.queue_limit),
                 strand, context) {}

ws_session::ws_session(std::shared_ptr<outbox> box, strand_type strand, server_context& context)
    : context_(context), ws_(std::move(box)), timer_(strand),
      accepted_at_(outbox_stream::clock::now()), last_ping_(accepted_at_) {
  context_.metrics->connections.fetch_add(1, std::memory_order_relaxed);
  core::metrics::add(context_.metrics->connections_total);
}

ws_session::~ws_session() { context_.metrics->connections.fetch_sub(1, std::memory_order_relaxed); }

void ws_session::run(boost::beast::http::request<boost::beast::http::string_body> request) {
  context_.sessions.add(shared_from_this());
  ws_.read_message_max(context_.settings.max_frame);
  ws_.auto_fragment(false);
  ws_.binary(true);
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = context_.settings.close_timeout; // also bounds close
  timeouts.idle_timeout = websocket::stream_base::none();       // our own pings do this
  timeouts.keep_alive_pings = false;
  ws_.set_option(timeouts);
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(boost::beast::http::field::server, "troupe");
  }));
  ws_.async_accept(request, [self = shared_from_this()](error_code ec) { self->on_accept(ec); });
}

void ws_session::on_accept(error_code ec) {
  if (ec) return finish();
  auto& box = ws_.next_layer().box();
  box.on_overflow([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_overflow();
  });
  box.on_reset([weak = weak_from_this()](std::string_view reason) {
    if (auto self = weak.lock()) self->close(4500, reason, true);
  });
  connection_ = std::make_unique<actors::connection>(context_.connection, *this,
                                                     ws_.next_layer().shared_box(), box.strand());
  arm_timer();
  do_read();
}

void ws_session::do_read() {
  // An idle connection waits in a read that has already prepared its buffer, so the first
  // read of a message asks for a small piece and only the rest of a longer one is read in
  // size (Beast then reads up to the frame's remaining length). Idle connections hold
  // `first_read` bytes here instead of Beast's default 1536.
  constexpr std::size_t first_read = 256;
  const std::size_t limit = buffer_.size() == 0 ? first_read : 0; // 0: Beast chooses
  ws_.async_read_some(
      buffer_, limit,
      [self = shared_from_this()](error_code ec, std::size_t bytes) { self->on_read(ec, bytes); });
}

void ws_session::on_read(error_code ec, std::size_t) {
  if (ec) {
    // Closed by either side, too large (Beast closed with 1009), or lost. Only a close
    // handshake the client started is a clean goodbye; after anything else the client is
    // expected back, and presence waits out the grace period.
    if (connection_) connection_->ended(ec == websocket::error::closed && !closing_);
    return finish();
  }
  if (!ws_.is_message_done()) return do_read(); // the rest of a longer message
  if (!closing_) {
    if (!ws_.got_binary()) {
      close(1003, "binary frames only", false);
    } else {
      const auto data = buffer_.cdata();
      connection_->on_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
    }
  }
  buffer_.clear();
  buffer_.shrink_to_fit(); // an idle connection keeps no message buffer
  do_read();               // also while closing: the peer's close frame arrives through a read
}

void ws_session::arm_timer() {
  const auto ping = context_.settings.ping;
  auto next = std::min(last_ping_ + ping, ws_.next_layer().last_read() + 2 * ping);
  if (!connection_->connected())
    next = std::min(next, accepted_at_ + context_.settings.connect_timeout);
  timer_.expires_at(next);
  timer_.async_wait([self = shared_from_this()](error_code ec) { self->on_timer(ec); });
}

void ws_session::on_timer(error_code ec) {
  if (ec || finished_ || closing_) return;
  const auto now = outbox_stream::clock::now();
  const auto ping = context_.settings.ping;
  if (!connection_->connected() && now - accepted_at_ >= context_.settings.connect_timeout)
    return close(4401, "no connect in time", false);
  if (now - ws_.next_layer().last_read() >= 2 * ping) return close(4408, "ping timeout", true);
  if (now - last_ping_ >= ping) {
    static const protocol::frame_ptr ping_frame = protocol::make_ping_frame();
    ws_.next_layer().box().send(ping_frame);
    last_ping_ = now;
  }
  arm_timer();
}

void ws_session::on_overflow() {
  core::metrics::add(context_.metrics->slow_consumers);
  ws_.next_layer().box().discard_pending(); // the client recovers them with `since`
  close(4500, "slow consumer", true);
}

void ws_session::close(std::uint16_t code, std::string_view reason, bool reconnect) {
  if (closing_ || finished_) return;
  closing_ = true;
  timer_.cancel();
  ws_.next_layer().box().send_urgent(protocol::make_frame([&](protocol::frame_builder& out) {
    protocol::encode_disconnect(out, code, reason, reconnect);
  }));
  ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason),
                  [self = shared_from_this()](error_code) {
                    // The read loop ends with the peer's answer or the close timeout.
                  });
  // The connection leaves its rooms now, not when the peer has answered (a peer that went
  // silent never does): presence's grace period starts at once. Posted, because close()
  // may be called from inside the connection.
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    if (self->connection_) {
      self->connection_->ended(false);
      self->connection_.reset();
    }
  });
}

void ws_session::close_from_anywhere(std::uint16_t code, std::string reason, bool reconnect) {
  net::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::move(reason),
                                 reconnect] { self->close(code, reason, reconnect); });
}

void ws_session::finish() {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  connection_.reset(); // leaves its rooms
  ws_.next_layer().box().close_gracefully(outbox_stream::teardown_bound);
  context_.sessions.remove(this);
}

} // namespace troupe::transport
