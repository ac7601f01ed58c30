// One WebSocket connection of a client: resolve, connect, handshake, a read loop, and a write
// queue that packs the maps queued during a write into one frame. Knows bytes, not the
// protocol. Every handler runs on the strand it was given; call it only from that strand.
#pragma once

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "clients/cpp/url.hpp"

namespace troupe::client {

namespace net = boost::asio;

struct close_info {
  std::uint16_t code = 0; // the close frame's code; 0 if the connection broke without one
  std::string reason;     // the close frame's reason, or the local error's message
  bool opened = false;    // the WebSocket handshake had completed
};

class ws_connection : public std::enable_shared_from_this<ws_connection> {
public:
  using strand_type = net::strand<net::any_io_executor>;
  struct config {
    std::chrono::milliseconds connect_timeout{10'000};
    std::size_t max_batch = 256 * 1024;
    std::size_t max_incoming = 64 * 1024 * 1024;
    int receive_buffer = 0;
  };
  struct callbacks {
    std::function<void()> on_open;                    // handshake done
    std::function<void(std::string_view)> on_frame;   // one binary frame
    std::function<void(const close_info&)> on_closed; // exactly once, at the end
  };

  ws_connection(strand_type strand, parsed_url url, config cfg, callbacks cb);
  ~ws_connection();

  void start();
  // Queues one encoded map. Ignored unless open.
  void send(std::string map);
  // Closing handshake with `code`; on_closed follows.
  void close(std::uint16_t code, std::string reason);
  // Cuts the TCP connection at once (RST, no close handshake); on_closed follows at once.
  void drop(std::string reason);
  // Liveness: ping the server after idle/2 of silence and give up after idle without a frame.
  void set_idle_timeout(std::chrono::milliseconds idle);
  bool is_open() const { return open_; }
  std::size_t queued_bytes() const { return queued_bytes_; }

private:
  void on_resolve(boost::system::error_code ec, net::ip::tcp::resolver::results_type results);
  void try_connect(boost::system::error_code last);
  void on_connect(boost::system::error_code ec, net::ip::tcp::endpoint);
  void on_handshake(boost::system::error_code ec);
  void do_read();
  void on_read(boost::system::error_code ec, std::size_t);
  void do_write();
  void on_write(boost::system::error_code ec, std::size_t);
  void finish(close_info info);

  strand_type strand_;
  parsed_url url_;
  config cfg_;
  callbacks cb_;
  net::ip::tcp::resolver resolver_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  std::vector<net::ip::tcp::endpoint> endpoints_;
  std::size_t next_endpoint_ = 0;
  boost::beast::flat_buffer rbuf_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  std::string wbuf_;
  bool writing_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool finished_ = false;
};

} // namespace troupe::client
