#pragma once
// Accepts TCP connections and gives each its own strand and an http_session.

#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>

#include "transport/outbox.hpp"
#include "transport/server_context.hpp"

namespace troupe::transport {

class listener : public std::enable_shared_from_this<listener> {
public:
  /// Binds and listens; throws boost::system::system_error when it cannot.
  listener(net::io_context& io, const net::ip::tcp::endpoint& endpoint, server_context& context);

  void run();
  /// Stops accepting; open connections are not touched. Any thread.
  void stop();
  net::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

private:
  void do_accept();

  net::io_context& io_;
  server_context& context_;
  strand_type strand_;
  net::ip::tcp::acceptor acceptor_;
  net::steady_timer retry_;
};

} // namespace troupe::transport
