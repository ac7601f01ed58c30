#include "transport/listener.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <iostream>

#include "transport/http_session.hpp"

namespace troupe::transport {

listener::listener(net::io_context& io, const net::ip::tcp::endpoint& endpoint,
                   server_context& context)
    : io_(io), context_(context), strand_(net::make_strand(io)), acceptor_(strand_),
      retry_(strand_) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(net::socket_base::max_listen_connections);
}

void listener::run() {
  net::dispatch(strand_, [self = shared_from_this()] { self->do_accept(); });
}

void listener::stop() {
  net::post(strand_, [self = shared_from_this()] {
    error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_.cancel();
  });
}

void listener::do_accept() {
  auto strand = net::make_strand(io_);
  acceptor_.async_accept(
      strand, [self = shared_from_this(), strand](error_code ec, net::ip::tcp::socket socket) {
        if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) return;
        if (!ec) {
          std::make_shared<http_session>(std::move(socket), strand, self->context_)->run();
          return self->do_accept();
        }
        // Out of descriptors or buffers: retrying at once would spin; let connections close.
        std::cerr << "troupe: accept failed: " << ec.message() << '\n';
        self->retry_.expires_after(std::chrono::milliseconds(100));
        self->retry_.async_wait([self](error_code) { self->do_accept(); });
      });
}

} // namespace troupe::transport
