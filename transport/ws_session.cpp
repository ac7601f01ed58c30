#include "transport/ws_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/field.hpp>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "core/metrics.hpp"
#include "protocol/codec.hpp"
#include "transport/tls_stream.hpp"

namespace troupe::transport {

namespace http = boost::beast::http;

namespace {

/// Each I/O thread's read buffer, shared by all its connections (reading never nests).
constexpr std::size_t read_buffer_size = 64 * 1024;
/// Bytes read per turn before the session lets the handlers waiting on its strand and
/// thread run: the other connections, and its own outbox's flush. The replies and pushes
/// of a turn's requests wait in the outbox until then, so a turn of a megabyte of small
/// requests would queue more than --queue-limit and cut a client that reads fine (4500).
constexpr std::size_t bytes_per_turn = read_buffer_size;

char* thread_read_buffer() {
  thread_local const std::unique_ptr<char[]> buffer(new char[read_buffer_size]);
  return buffer.get();
}

/// Sec-WebSocket-Accept for `key` (RFC 6455 §4.2.2): base64(SHA-1(key + GUID)).
std::string accept_key(std::string_view key) {
  std::string input(key);
  input += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

/// Allocates exactly what is asked, from the heap. Asio's default allocator recycles
/// blocks through a per-thread cache, so a wait an idle connection keeps pending would
/// often sit in a larger block left by another operation (the HTTP read's, ~400 bytes)
/// for as long as the connection idles.
template <class T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() noexcept = default;
  template <class U>
  exact_allocator(const exact_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }
  friend bool operator==(const exact_allocator&, const exact_allocator&) noexcept { return true; }
  friend bool operator!=(const exact_allocator&, const exact_allocator&) noexcept { return false; }
};

/// A completion handler whose operation is allocated with exact_allocator: for the wait
/// that stays pending while a connection idles (readability).
template <class Function>
struct idle_wait {
  Function function;
  using allocator_type = exact_allocator<void>;
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()(error_code ec) { function(ec); }
};
template <class Function>
idle_wait(Function) -> idle_wait<Function>;

protocol::frame_ptr raw_frame(std::string bytes) {
  return protocol::wire_frame::raw(std::move(bytes));
}

protocol::frame_ptr control_frame(unsigned char opcode, std::string_view payload) {
  std::string bytes(protocol::wire_frame::max_header_size, '\0');
  bytes.append(payload);
  return std::make_shared<const protocol::wire_frame>(std::move(bytes), opcode);
}

} // namespace

ws_session::ws_session(net::ip::tcp::socket socket, strand_type strand, server_context& context)
    : ws_session(std::make_shared<outbox>(std::move(socket), strand, context.settings.queue_limit),
                 strand, context) {}

ws_session::ws_session(std::unique_ptr<tls_stream> tls, strand_type strand, server_context& context)
    : ws_session(std::make_shared<outbox>(std::move(tls), strand, context.settings.queue_limit),
                 strand, context) {}

ws_session::ws_session(std::shared_ptr<outbox> box, strand_type strand, server_context& context)
    : context_(context), box_(std::move(box)), reader_(context.settings.max_frame),
      accepted_at_(clock::now()), last_ping_(accepted_at_), last_read_(accepted_at_) {
  context_.metrics->connections.fetch_add(1, std::memory_order_relaxed);
  core::metrics::add(context_.metrics->connections_total);
}

ws_session::~ws_session() { context_.metrics->connections.fetch_sub(1, std::memory_order_relaxed); }

void ws_session::run(const http::request<http::string_body>& request, std::string early) {
  context_.sessions.add(shared_from_this());
  // The handshake's checks (RFC 6455 §4.2.1); http_session has seen the Upgrade and
  // Connection headers already.
  const auto key = request[http::field::sec_websocket_key];
  const auto version = request[http::field::sec_websocket_version];
  const char* refusal = nullptr;
  if (request.method() != http::verb::get || request.version() < 11)
    refusal = "HTTP/1.1 400 Bad Request\r\n";
  else if (key.empty() || key.size() > 24)
    refusal = "HTTP/1.1 400 Bad Request\r\n";
  else if (version != "13")
    refusal = "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n";
  if (refusal) {
    box_->send_urgent(raw_frame(
        std::string(refusal) + "Server: troupe\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
    return finish();
  }
  box_->send_urgent(raw_frame("HTTP/1.1 101 Switching Protocols\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: upgrade\r\n"
                              "Sec-WebSocket-Accept: " +
                              accept_key(key) + "\r\nServer: troupe\r\n\r\n"));
  box_->on_overflow([weak = weak_from_this()] {
    if (auto self = weak.lock()) self->on_overflow();
  });
  box_->on_reset([weak = weak_from_this()](std::string_view reason) {
    if (auto self = weak.lock()) self->close(4500, reason, true);
  });
  connection_ = std::make_unique<actors::connection>(context_.connection, *this, box_);
  arm_timer();
  error_code ignored;
  box_->socket().non_blocking(true, ignored); // reads are tried, never waited on
  if (!early.empty() && !consume(early.data(), early.size())) return;
  if (box_->tls())
    on_readable({}); // OpenSSL may hold bytes the HTTP parser did not ask for
  else
    wait_readable();
}

void ws_session::wait_readable() {
  // The pending operation holds no strand, only the session: the handler enters the strand
  // itself (at once when no other thread holds it), which keeps an idle connection's wait at
  // its smallest.
  box_->socket().async_wait(
      net::socket_base::wait_read, idle_wait{[self = shared_from_this()](error_code ec) {
        net::dispatch(self->box_->strand(), [self, ec] { self->on_readable(ec); });
      }});
}

void ws_session::on_readable(error_code ec) {
  if (finished_) return;
  char* const buffer = thread_read_buffer();
  auto* const tls = box_->tls();
  for (std::size_t turn = 0; !ec && turn < bytes_per_turn;) {
    const auto into = net::buffer(buffer, read_buffer_size);
    const std::size_t n = tls ? tls->read_some(into, ec) : box_->socket().read_some(into, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) return wait_readable();
    if (ec) break;
    turn += n;
    last_read_ = clock::now();
    if (!consume(buffer, n)) return;
    // A short read emptied the socket (more data wakes the wait again); OpenSSL may hold
    // more decrypted bytes than one read takes, so over TLS read until it says so.
    if (n < read_buffer_size && !tls) return wait_readable();
  }
  if (!ec) // the turn is over: continue after the handlers that are waiting
    return net::post(box_->strand(), [self = shared_from_this()] { self->on_readable({}); });
  // Closed (an end without a close frame) or lost: the client is expected back, and
  // presence waits out the grace period.
  if (connection_) connection_->ended(false);
  finish();
}

bool ws_session::consume(char* data, std::size_t size) {
  // The frames of one read: a client that sends each edit as its own message hands its
  // document the edits of a read as one message (connection::begin_read).
  if (connection_) connection_->begin_read();
  const bool more =
      reader_.feed(data, size, [this](const ws_frame_reader::event& e) { return on_event(e); });
  if (connection_) connection_->end_read(); // gone if the read ended the connection
  return more;
}

bool ws_session::on_event(const ws_frame_reader::event& event) {
  using kind = ws_frame_reader::event_kind;
  switch (event.kind) {
  case kind::binary:
    if (!closing_) connection_->on_frame(event.payload);
    return !finished_;
  case kind::text:
    if (!closing_) close(1003, "binary frames only", false);
    return !finished_;
  case kind::ping:
    if (!closing_) box_->send_urgent(control_frame(0xA, event.payload));
    return true;
  case kind::pong:
    return true;
  case kind::close:
    if (!closing_) {
      // The client's goodbye: answered with its code, a clean end (presence leaves at once).
      std::string payload;
      if (event.code != 1005) {
        payload.push_back(static_cast<char>(event.code >> 8));
        payload.push_back(static_cast<char>(event.code & 0xff));
      }
      box_->send_urgent(control_frame(0x8, payload));
      if (connection_) connection_->ended(true);
    }
    finish(); // our close was answered, or we answered theirs
    return false;
  case kind::error:
    // The frames cannot be followed any further: close with the code and stop reading.
    close(event.code, event.payload, false);
    finish();
    return false;
  }
  return false;
}

void ws_session::arm_timer() {
  const auto ping = context_.settings.ping;
  auto next = std::min(last_ping_ + ping, last_read_ + 2 * ping);
  if (!connection_->connected())
    next = std::min(next, accepted_at_ + context_.settings.connect_timeout);
  due_.store(next.time_since_epoch().count(), std::memory_order_relaxed);
}

void ws_session::check_liveness() {
  net::post(box_->strand(), [self = shared_from_this()] { self->on_deadline(); });
}

void ws_session::on_deadline() {
  if (finished_) return;
  const auto now = clock::now();
  if (closing_) {
    if (now < close_by_) { // a deadline taken just before the close began
      due_.store(close_by_.time_since_epoch().count(), std::memory_order_relaxed);
      return;
    }
    box_->close(); // the client did not answer our close frame in time
    return finish();
  }
  const auto ping = context_.settings.ping;
  if (!connection_->connected() && now - accepted_at_ >= context_.settings.connect_timeout)
    return close(4401, "no connect in time", false);
  if (now - last_read_ >= 2 * ping) return close(4408, "ping timeout", true);
  if (now - last_ping_ >= ping) {
    static const protocol::frame_ptr ping_frame = protocol::make_ping_frame();
    box_->send(ping_frame);
    last_ping_ = now;
  }
  arm_timer();
}

void ws_session::on_overflow() {
  core::metrics::add(context_.metrics->slow_consumers);
  box_->discard_pending(); // the client recovers them with `since`
  close(4500, "slow consumer", true);
}

void ws_session::close(std::uint16_t code, std::string_view reason, bool reconnect) {
  if (closing_ || finished_) return;
  closing_ = true;
  box_->send_urgent(protocol::make_frame([&](protocol::frame_builder& out) {
    protocol::encode_disconnect(out, code, reason, reconnect);
  }));
  box_->send_urgent(protocol::make_close_frame(code, reason));
  // Reading goes on until the client's close frame answers ours, at most close_timeout.
  close_by_ = clock::now() + context_.settings.close_timeout;
  due_.store(close_by_.time_since_epoch().count(), std::memory_order_relaxed);
  // The connection leaves its rooms now, not when the peer has answered (a peer that went
  // silent never does): presence's grace period starts at once. Posted, because close()
  // may be called from inside the connection.
  net::post(box_->strand(), [self = shared_from_this()] {
    if (self->connection_) {
      self->connection_->ended(false);
      self->connection_.reset();
    }
  });
}

void ws_session::close_from_anywhere(std::uint16_t code, std::string reason, bool reconnect) {
  net::post(box_->strand(), [self = shared_from_this(), code, reason = std::move(reason),
                             reconnect] { self->close(code, reason, reconnect); });
}

void ws_session::finish() {
  if (finished_) return;
  finished_ = true;
  due_.store(never, std::memory_order_relaxed);
  connection_.reset(); // leaves its rooms
  box_->close_gracefully(teardown_bound);
  context_.sessions.remove(this);
}

} // namespace troupe::transport
