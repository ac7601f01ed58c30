#include "clients/cpp/ws_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/websocket.hpp>

namespace troupe::client {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

ws_connection::ws_connection(strand_type strand, parsed_url url, config cfg, callbacks cb)
    : strand_(strand), url_(std::move(url)), cfg_(cfg), cb_(std::move(cb)), resolver_(strand_),
      ws_(strand_) {}

ws_connection::~ws_connection() = default;

void ws_connection::start() {
  beast::get_lowest_layer(ws_).expires_after(cfg_.connect_timeout);
  resolver_.async_resolve(
      url_.host, url_.port,
      beast::bind_front_handler(&ws_connection::on_resolve, shared_from_this()));
}

void ws_connection::on_resolve(error_code ec, net::ip::tcp::resolver::results_type results) {
  if (finished_) return;
  if (ec) return finish({0, "resolve: " + ec.message(), false});
  for (const auto& r : results)
    endpoints_.push_back(r.endpoint());
  try_connect(error_code{});
}

// One endpoint after the other (not asio::async_connect, which closes the socket before each
// attempt and so would lose the receive buffer size set on it).
void ws_connection::try_connect(error_code last) {
  if (finished_) return;
  if (next_endpoint_ >= endpoints_.size())
    return finish({0, "connect: " + (last ? last.message() : std::string("no address")), false});
  const auto ep = endpoints_[next_endpoint_++];
  auto& sock = beast::get_lowest_layer(ws_).socket();
  error_code ec;
  if (sock.is_open()) sock.close(ec);
  sock.open(ep.protocol(), ec);
  if (!ec && cfg_.receive_buffer > 0)
    sock.set_option(net::socket_base::receive_buffer_size(cfg_.receive_buffer), ec);
  if (ec) return finish({0, "socket: " + ec.message(), false});
  beast::get_lowest_layer(ws_).async_connect(ep, [self = shared_from_this(), ep](error_code ec) {
    if (ec && !self->finished_ && ec != net::error::operation_aborted) return self->try_connect(ec);
    self->on_connect(ec, ep);
  });
}

void ws_connection::on_connect(error_code ec, net::ip::tcp::endpoint) {
  if (finished_) return;
  if (ec) return finish({0, "connect: " + ec.message(), false});
  auto& tcp = beast::get_lowest_layer(ws_);
  tcp.expires_never(); // the WebSocket stream keeps its own time from here on
  tcp.socket().set_option(net::ip::tcp::no_delay(true), ec);

  websocket::stream_base::timeout t{};
  t.handshake_timeout = cfg_.connect_timeout;
  t.idle_timeout = websocket::stream_base::none();
  t.keep_alive_pings = false;
  ws_.set_option(t);
  ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "troupe-client-cpp/0.1");
  }));
  ws_.read_message_max(cfg_.max_incoming);
  ws_.auto_fragment(false);
  ws_.binary(true);
  ws_.async_handshake(url_.host_header(), url_.target,
                      beast::bind_front_handler(&ws_connection::on_handshake, shared_from_this()));
}

void ws_connection::on_handshake(error_code ec) {
  if (finished_) return;
  if (ec) return finish({0, "handshake: " + ec.message(), false});
  open_ = true;
  do_read();
  if (cb_.on_open) cb_.on_open();
  if (!queue_.empty() && !writing_) do_write();
}

void ws_connection::set_idle_timeout(std::chrono::milliseconds idle) {
  websocket::stream_base::timeout t{};
  t.handshake_timeout = cfg_.connect_timeout;
  if (idle.count() > 0) {
    t.idle_timeout = idle;
    t.keep_alive_pings = true;
  } else {
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
  }
  ws_.set_option(t);
}

void ws_connection::do_read() {
  ws_.async_read(rbuf_, beast::bind_front_handler(&ws_connection::on_read, shared_from_this()));
}

void ws_connection::on_read(error_code ec, std::size_t) {
  if (finished_) return;
  if (ec) {
    open_ = false;
    if (ec == websocket::error::closed) {
      const auto& r = ws_.reason();
      return finish({static_cast<std::uint16_t>(r.code), std::string(r.reason.c_str()), true});
    }
    return finish({0, ec.message(), true});
  }
  if (ws_.got_binary() && cb_.on_frame) {
    const auto data = rbuf_.cdata();
    cb_.on_frame(std::string_view(static_cast<const char*>(data.data()), data.size()));
  }
  // A text frame from the server breaks the contract; it is ignored.
  rbuf_.consume(rbuf_.size());
  if (!finished_) do_read();
}

void ws_connection::send(std::string map) {
  if (finished_ || closing_) return;
  queued_bytes_ += map.size();
  queue_.push_back(std::move(map));
  if (open_ && !writing_) do_write();
}

void ws_connection::do_write() {
  if (queue_.size() == 1 || queue_.front().size() >= cfg_.max_batch) {
    wbuf_ = std::move(queue_.front());
    queue_.pop_front();
  } else {
    wbuf_.clear();
    while (!queue_.empty() &&
           (wbuf_.empty() || wbuf_.size() + queue_.front().size() <= cfg_.max_batch)) {
      wbuf_ += queue_.front();
      queue_.pop_front();
    }
  }
  queued_bytes_ -= wbuf_.size();
  writing_ = true;
  ws_.async_write(net::buffer(wbuf_),
                  beast::bind_front_handler(&ws_connection::on_write, shared_from_this()));
}

void ws_connection::on_write(error_code ec, std::size_t) {
  writing_ = false;
  if (finished_) return;
  if (ec) {
    // The read loop sees the same failure and ends the connection; make sure it does.
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    return;
  }
  if (open_ && !closing_ && !queue_.empty()) do_write();
}

void ws_connection::close(std::uint16_t code, std::string reason) {
  if (finished_ || closing_) return;
  closing_ = true;
  if (!open_) { // still connecting: just stop
    resolver_.cancel();
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    return finish({code, "closed by the client", false});
  }
  websocket::close_reason cr(static_cast<websocket::close_code>(code), reason);
  ws_.async_close(cr, [self = shared_from_this()](error_code ec) {
    if (ec && !self->finished_) {
      error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
    }
    // The read loop reports the end (websocket::error::closed).
  });
}

void ws_connection::drop(std::string reason) {
  if (finished_) return;
  resolver_.cancel();
  const bool was_open = open_;
  auto& sock = beast::get_lowest_layer(ws_).socket();
  error_code ignored;
  if (sock.is_open()) {
    sock.set_option(net::socket_base::linger(true, 0), ignored);
    sock.close(ignored);
  }
  // Pending operations complete with operation_aborted; report the cut now, as a peer would see it.
  open_ = false;
  finish({0, std::move(reason), was_open});
}

void ws_connection::finish(close_info info) {
  if (finished_) return;
  finished_ = true;
  open_ = false;
  queue_.clear();
  queued_bytes_ = 0;
  error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
  // on_frame may be running right now (a handler that closes or drops): only on_closed goes.
  auto cb = std::move(cb_.on_closed);
  cb_.on_closed = nullptr;
  if (cb) cb(info);
}

} // namespace troupe::client
