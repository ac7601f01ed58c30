#pragma once
// The application's backend over HTTP/1.1 (`--backend URL`, protocol.md "Backend calls"):
// an asynchronous client on the engine's io_context with a keep-alive connection pool, TLS
// for https:// (peer verified against the system's CA store, SNI), a per-call timeout, and
// Stripe-style signatures (X-Troupe-Signature) on every attempt. It implements
// actors::backend: rpc() POSTs URL/rpc; emit() hands events to a sink (the webhook queue).

#include <utility>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "actors/backend.hpp"

namespace troupe::transport {

/// `http://host[:port][/base]` or `https://…`, split. Throws std::invalid_argument.
struct backend_url {
  bool tls = false;
  std::string host;
  std::string port; ///< 80 or 443 unless given
  std::string base; ///< path prefix without a trailing '/', e.g. "" or "/hooks"
};
backend_url parse_backend_url(std::string_view url);

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
std::string backend_signature(std::string_view secret, std::int64_t t, std::string_view body);

struct backend_client_options {
  std::string url;                         ///< base URL; calls go to URL/rpc, URL/events
  std::string secret;                      ///< empty: unsigned calls
  std::chrono::milliseconds timeout{5000}; ///< per call, connection included
  std::size_t max_connections = 32;        ///< calls beyond wait for a free connection
};

class backend_client final : public actors::backend,
                             public std::enable_shared_from_this<backend_client> {
public:
  using reply_handler = std::function<void(int status, std::string body, std::error_code ec)>;
  using event_sink = std::function<void(actors::backend_event)>;

  /// Throws std::invalid_argument for a bad URL.
  backend_client(boost::asio::io_context& io, backend_client_options options);
  ~backend_client() override;

  /// POSTs `json_body` to URL + `path`. `done` runs once, on any thread: with the status and
  /// body of the reply, or status 0 and `ec` for no connection, no reply, or the timeout.
  void post(std::string path, std::string json_body, reply_handler done);

  // actors::backend
  void rpc(std::string client, std::string user, std::string method, std::string data,
           std::function<void(actors::rpc_outcome)> done) override;
  /// Forwards to the sink (the webhook queue); dropped while none is set. Set it before
  /// the engine serves.
  void emit(actors::backend_event event) override;
  void set_event_sink(event_sink sink) { sink_ = std::move(sink); }

  /// The contract's mapping of an RPC reply (status 0: none came) to an outcome.
  static actors::rpc_outcome rpc_outcome_of(int status, const std::string& body,
                                            std::error_code ec);

private:
  struct state;
  std::shared_ptr<state> state_;
  event_sink sink_;
};

} // namespace troupe::transport
