#pragma once
// TLS on the engine's port. With --tls-cert every connection is TLS: http_session reads its
// request through a tcp_or_tls_stream, and an upgraded connection hands its tls_stream
// (OpenSSL's state over the TCP stream) to the outbox, which then reads and writes
// through it. Without TLS the socket is plain and none of this is in the way.

#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <memory>
#include <optional>
#include <string>

namespace troupe::transport {

namespace net = boost::asio;
using error_code = boost::system::error_code;

/// OpenSSL's state of one connection over its TCP stream (whose timeouts bound the
/// handshake). A class rather than an alias, so that the outbox can name it in advance.
class tls_stream final : public net::ssl::stream<boost::beast::tcp_stream> {
public:
  using net::ssl::stream<boost::beast::tcp_stream>::stream;

  /// The piece the outbox has OpenSSL write (on the outbox's strand only): kept here, so a
  /// plain connection's outbox carries no buffer for it.
  std::string write_piece;
};

/// The stream of an HTTP connection: plain TCP, or TLS over TCP when the server has a
/// certificate. Reads and writes go to whichever it is; timeouts and the socket are the
/// TCP stream's, so code written for a beast::tcp_stream works on it unchanged.
class tcp_or_tls_stream {
public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  /// Plain when `tls` is null; otherwise TLS, whose handshake is still to be done.
  tcp_or_tls_stream(net::ip::tcp::socket socket, net::ssl::context* tls) {
    if (tls)
      tls_ = std::make_unique<tls_stream>(std::move(socket), *tls);
    else
      plain_.emplace(std::move(socket));
  }

  bool is_tls() const noexcept { return tls_ != nullptr; }
  boost::beast::tcp_stream& tcp() noexcept { return tls_ ? tls_->next_layer() : *plain_; }
  executor_type get_executor() noexcept { return tcp().get_executor(); }

  template <class Duration>
  void expires_after(Duration timeout) {
    tcp().expires_after(timeout);
  }
  void expires_never() { tcp().expires_never(); }
  net::ip::tcp::socket& socket() noexcept { return tcp().socket(); }

  /// The server's side of the TLS handshake; only when is_tls().
  template <class Handler>
  void async_handshake(Handler&& handler) {
    tls_->async_handshake(net::ssl::stream_base::server, std::forward<Handler>(handler));
  }

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return net::async_initiate<Handler, void(error_code, std::size_t)>(
        [this](auto completion, const MutableBuffers& into) {
          if (tls_)
            tls_->async_read_some(into, std::move(completion));
          else
            plain_->async_read_some(into, std::move(completion));
        },
        handler, buffers);
  }

  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return net::async_initiate<Handler, void(error_code, std::size_t)>(
        [this](auto completion, const ConstBuffers& from) {
          if (tls_)
            tls_->async_write_some(from, std::move(completion));
          else
            plain_->async_write_some(from, std::move(completion));
        },
        handler, buffers);
  }

  /// Hands the connection over (the upgrade to a WebSocket): the socket when plain...
  net::ip::tcp::socket release_socket() { return plain_->release_socket(); }
  /// ...the TLS stream, socket and all, when not.
  std::unique_ptr<tls_stream> release_tls() noexcept { return std::move(tls_); }

private:
  std::optional<boost::beast::tcp_stream> plain_;
  std::unique_ptr<tls_stream> tls_;
};

} // namespace troupe::transport
