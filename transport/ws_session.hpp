#pragma once
// One WebSocket connection: Beast reads frames and hands them to the connection actor;
// everything written goes through the outbox. Owns liveness (pings, silence, the connect
// deadline) and the close sequence. All of it runs on the connection's strand.

#include <utility>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <memory>

#include "transport/outbox_stream.hpp"
#include "actors/peer.hpp"
#include "transport/server_context.hpp"

namespace troupe::transport {

class ws_session final : public actors::peer, public std::enable_shared_from_this<ws_session> {
public:
  ws_session(net::ip::tcp::socket socket, strand_type strand, server_context& context);
  /// Over TLS: `tls` has done its handshake and carried the upgrade request.
  ws_session(std::unique_ptr<tls_stream> tls, strand_type strand, server_context& context);
  ~ws_session() override;

  /// Answers the upgrade request and starts reading.
  void run(boost::beast::http::request<boost::beast::http::string_body> request);

  /// On the strand.
  void close(std::uint16_t code, std::string_view reason, bool reconnect) override;

  /// From any thread: close with `code` on the session's strand.
  void close_from_anywhere(std::uint16_t code, std::string reason, bool reconnect);

private:
  ws_session(std::shared_ptr<outbox> box, strand_type strand, server_context& context);
  void on_accept(error_code ec);
  void do_read();
  void on_read(error_code ec, std::size_t bytes);
  void arm_timer();
  void on_timer(error_code ec);
  void on_overflow();
  void finish();

  server_context& context_;
  boost::beast::websocket::stream<outbox_stream> ws_;
  boost::beast::flat_buffer buffer_;
  net::steady_timer timer_;
  std::unique_ptr<actors::connection> connection_;
  outbox_stream::clock::time_point accepted_at_;
  outbox_stream::clock::time_point last_ping_;
  bool closing_ = false;
  bool finished_ = false;
};

} // namespace troupe::transport
