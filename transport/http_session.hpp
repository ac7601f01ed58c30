#pragma once
// One HTTP connection: /health, /metrics, static files, and the upgrade to a WebSocket
// at /ws, which hands the socket to a ws_session. With TLS on, the TLS handshake comes
// first and everything after it goes through TLS.

#include <utility>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <optional>

#include "transport/outbox.hpp"
#include "transport/server_context.hpp"
#include "transport/tls_stream.hpp"

namespace troupe::transport {

class http_session : public std::enable_shared_from_this<http_session> {
public:
  http_session(net::ip::tcp::socket socket, strand_type strand, server_context& context);
  void run();

private:
  void do_tls_handshake();
  void do_read();
  void on_read(error_code ec, std::size_t bytes);
  template <class Response>
  void do_write(Response&& response);
  void on_write(bool keep_alive, error_code ec);

  server_context& context_;
  strand_type strand_;
  tcp_or_tls_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
};

} // namespace troupe::transport
