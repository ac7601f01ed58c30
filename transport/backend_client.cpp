#include "transport/backend_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <deque>
#include <optional>
#include <stdexcept>
#include <vector>

#include "protocol/codec.hpp"
#include "transport/http_api_json.hpp"

namespace troupe::transport {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;

backend_url parse_backend_url(std::string_view url) {
  backend_url out;
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    out.tls = true;
    rest = url.substr(8);
  } else {
    throw std::invalid_argument("the URL must start with http:// or https://");
  }
  if (rest.find_first_of("?#") != std::string_view::npos)
    throw std::invalid_argument("the URL must have no query or fragment");
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) out.base = std::string(rest.substr(slash));
  while (!out.base.empty() && out.base.back() == '/')
    out.base.pop_back();
  if (authority.find('@') != std::string_view::npos)
    throw std::invalid_argument("the URL must carry no user info (use --backend-secret)");
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') { // [v6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument("unclosed '[' in the host");
    host = authority.substr(1, close - 1);
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw std::invalid_argument("junk after the host");
      port = after.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) throw std::invalid_argument("the URL has no host");
  out.host = std::string(host);
  if (port.empty() && authority.find(':') != std::string_view::npos && authority.front() != '[')
    throw std::invalid_argument("the port is empty");
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoul(std::string(port)) == 0 || std::stoul(std::string(port)) > 65535)
      throw std::invalid_argument("the port must be 1..65535");
    out.port = std::string(port);
  } else {
    out.port = out.tls ? "443" : "80";
  }
  return out;
}

std::string backend_signature(std::string_view secret, std::int64_t t, std::string_view body) {
  const std::string signed_text = std::to_string(t) + "." + std::string(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_text.data()), signed_text.size(), mac, &len);
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "t=" + std::to_string(t) + ",v1=";
  for (unsigned int i = 0; i < len; ++i) {
    out += digits[mac[i] >> 4];
    out += digits[mac[i] & 15];
  }
  return out;
}

// ---- the pool ---------------------------------------------------------------------------
// Everything runs on one strand: the pool's bookkeeping needs no lock, and a call's work is
// a few microseconds between waits. The replies' handlers run there too, so they only post.

namespace {

struct connection {
  explicit connection(const net::any_io_executor& ex, ssl::context* tls) {
    if (tls)
      secure.emplace(ex, *tls);
    else
      plain.emplace(ex);
  }
  beast::tcp_stream& lowest() { return plain ? *plain : beast::get_lowest_layer(*secure); }
  void close() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
  }
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
};

struct call {
  call(const net::any_io_executor& ex, std::string p, std::string b,
       backend_client::reply_handler d)
      : path(std::move(p)), body(std::move(b)), done(std::move(d)), timer(ex) {}
  std::string path;
  std::string body;
  backend_client::reply_handler done;
  net::steady_timer timer;
  bool finished = false;
  int attempts = 0;
  std::shared_ptr<connection> conn; // while one carries it
  http::request<http::string_body> request;
  std::optional<http::response_parser<http::string_body>> parser;
};

} // namespace

struct backend_client::state : std::enable_shared_from_this<backend_client::state> {
  state(net::io_context& io, backend_client_options o)
      : strand(net::make_strand(io)), options(std::move(o)), url(parse_backend_url(options.url)),
        resolver(strand) {
    if (url.tls) {
      tls.emplace(ssl::context::tls_client);
      tls->set_default_verify_paths();
      tls->set_verify_mode(ssl::verify_peer);
      tls->set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1);
    }
  }

  net::any_io_executor strand;
  backend_client_options options;
  backend_url url;
  std::optional<ssl::context> tls;
  tcp::resolver resolver;
  std::vector<std::shared_ptr<connection>> idle;
  std::deque<std::shared_ptr<call>> waiting;
  std::size_t open = 0; // connections, idle or busy

  void submit(std::shared_ptr<call> c) {
    c->timer.expires_after(options.timeout);
    c->timer.async_wait([self = shared_from_this(), c](beast::error_code ec) {
      if (ec || c->finished) return;
      self->finish(c, 0, {}, std::make_error_code(std::errc::timed_out));
      if (c->conn) c->conn->close(); // its pending operation ends; the connection is dropped
    });
    acquire(c);
  }

  void acquire(const std::shared_ptr<call>& c) {
    if (c->finished) return;
    ++c->attempts;
    if (!idle.empty()) {
      c->conn = idle.back();
      idle.pop_back();
      send(c, true);
    } else if (open < options.max_connections) {
      ++open;
      c->conn = std::make_shared<connection>(strand, tls ? &*tls : nullptr);
      connect(c);
    } else {
      waiting.push_back(c);
    }
  }

  void connect(const std::shared_ptr<call>& c) {
    resolver.async_resolve(
        url.host, url.port,
        [self = shared_from_this(), c](beast::error_code ec, tcp::resolver::results_type found) {
          if (ec) return self->failed(c, ec, false);
          self->connected_to(c, found);
        });
  }

  void connected_to(const std::shared_ptr<call>& c, const tcp::resolver::results_type& found) {
    if (c->finished) return drop(c->conn);
    c->conn->lowest().async_connect(
        found, [self = shared_from_this(), c](beast::error_code ec, const tcp::endpoint&) {
          if (ec) return self->failed(c, ec, false);
          self->lowest_connected(c);
        });
  }

  void lowest_connected(const std::shared_ptr<call>& c) {
    if (c->finished) return drop(c->conn);
    if (!c->conn->secure) return send(c, false);
    auto& stream = *c->conn->secure;
    // SNI (a name only: RFC 6066 has no address in it), and the certificate checked
    // against the host name or address.
    beast::error_code not_an_address;
    net::ip::make_address(url.host, not_an_address);
    if (not_an_address && !SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
      return failed(
          c, beast::error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()),
          false);
    stream.set_verify_callback(ssl::host_name_verification(url.host));
    stream.async_handshake(ssl::stream_base::client,
                           [self = shared_from_this(), c](beast::error_code ec) {
                             if (ec) return self->failed(c, ec, false);
                             self->send(c, false);
                           });
  }

  void send(const std::shared_ptr<call>& c, bool reused) {
    if (c->finished) return drop(c->conn);
    auto& req = c->request;
    req = {};
    req.method(http::verb::post);
    req.target(url.base + c->path);
    req.version(11);
    req.set(http::field::host, url.host);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::user_agent, "troupe");
    req.keep_alive(true);
    // Every attempt is signed anew, with its own time.
    if (!options.secret.empty()) {
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      req.set("X-Troupe-Signature", backend_signature(options.secret, now, c->body));
    }
    req.body() = c->body;
    req.prepare_payload();
    c->parser.emplace();
    c->parser->body_limit(16 << 20);
    auto written = [self = shared_from_this(), c, reused](beast::error_code ec, std::size_t) {
      if (ec) return self->failed(c, ec, reused);
      self->receive(c, reused);
    };
    if (c->conn->secure)
      http::async_write(*c->conn->secure, req, std::move(written));
    else
      http::async_write(*c->conn->plain, req, std::move(written));
  }

  void receive(const std::shared_ptr<call>& c, bool reused) {
    auto read = [self = shared_from_this(), c, reused](beast::error_code ec, std::size_t) {
      if (ec) return self->failed(c, ec, reused);
      auto response = c->parser->release();
      auto conn = std::move(c->conn);
      // Timed out just before: the timer closed the connection, so it cannot be pooled.
      const bool late = c->finished;
      self->finish(c, static_cast<int>(response.result_int()), std::move(response.body()), {});
      if (response.keep_alive() && !late)
        self->release(std::move(conn));
      else
        self->drop(conn);
    };
    if (c->conn->secure)
      http::async_read(*c->conn->secure, c->conn->buffer, *c->parser, std::move(read));
    else
      http::async_read(*c->conn->plain, c->conn->buffer, *c->parser, std::move(read));
  }

  void failed(const std::shared_ptr<call>& c, beast::error_code ec, bool reused) {
    auto conn = std::move(c->conn);
    if (conn) drop(conn);
    if (c->finished) return;
    // A pooled connection the backend closed while idle fails at once: try a fresh one.
    if (reused && c->attempts < 3 &&
        (ec == http::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe))
      return acquire(c);
    finish(c, 0, {}, std::error_code(ec.value(), ec.category()));
  }

  void finish(const std::shared_ptr<call>& c, int status, std::string body, std::error_code ec) {
    if (c->finished) return;
    c->finished = true;
    c->timer.cancel();
    auto done = std::move(c->done);
    done(status, std::move(body), ec);
  }

  void release(std::shared_ptr<connection> conn) {
    while (!waiting.empty()) {
      auto next = std::move(waiting.front());
      waiting.pop_front();
      if (next->finished) continue;
      next->conn = std::move(conn);
      return send(next, true);
    }
    idle.push_back(std::move(conn));
  }

  void drop(const std::shared_ptr<connection>& conn) {
    if (!conn) return;
    conn->close();
    --open;
    while (!waiting.empty()) { // a slot is free: the next waiting call opens a connection
      auto next = std::move(waiting.front());
      waiting.pop_front();
      if (next->finished) continue;
      --next->attempts; // acquire counts it again
      return acquire(next);
    }
  }
};

backend_client::backend_client(net::io_context& io, backend_client_options options)
    : state_(std::make_shared<state>(io, std::move(options))) {}

backend_client::~backend_client() = default;

void backend_client::post(std::string path, std::string json_body, reply_handler done) {
  auto c = std::make_shared<call>(state_->strand, std::move(path), std::move(json_body),
                                  std::move(done));
  net::dispatch(state_->strand, [s = state_, c] { s->submit(c); });
}

namespace {

std::optional<protocol::error_code> contract_code(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(protocol::error_code::internal); ++i) {
    const auto code = static_cast<protocol::error_code>(i);
    if (name == protocol::to_string(code)) return code;
  }
  return std::nullopt;
}

actors::rpc_outcome unavailable(std::string reason) {
  return {protocol::error_code::unavailable, std::move(reason), {}};
}

} // namespace

actors::rpc_outcome backend_client::rpc_outcome_of(int status, const std::string& body,
                                                   std::error_code ec) {
  if (status == 0) {
    return unavailable(ec == std::errc::timed_out ? "the backend did not answer in time"
                                                  : "the backend cannot be reached");
  }
  if (status >= 500 || status < 200 || (status >= 300 && status < 400))
    return unavailable("the backend failed (HTTP " + std::to_string(status) + ")");
  const json reply = json::parse(body, nullptr, false);
  if (reply.is_discarded()) return unavailable("the backend's reply is not JSON");
  if (status < 300) {
    if (!reply.is_object()) return unavailable("the backend's reply is not a JSON object");
    actors::rpc_outcome out;
    if (auto it = reply.find("data"); it != reply.end() && !it->is_null())
      out.data = api_json::msgpack_of_json(*it);
    return out;
  }
  // 4xx: the backend refused.
  actors::rpc_outcome out{protocol::error_code::forbidden, "refused by the backend", {}};
  if (reply.is_object()) {
    if (auto it = reply.find("error"); it != reply.end() && it->is_string())
      if (auto code = contract_code(it->get_ref<const std::string&>())) out.error = *code;
    if (auto it = reply.find("reason"); it != reply.end() && it->is_string())
      out.reason = it->get<std::string>();
  }
  return out;
}

void backend_client::rpc(std::string client, std::string user, std::string method, std::string data,
                         std::function<void(actors::rpc_outcome)> done) {
  auto value = api_json::json_of_msgpack(data);
  if (!value) {
    done({protocol::error_code::bad_request, "'data' cannot be shown as JSON", {}});
    return;
  }
  json body{{"client", std::move(client)},
            {"user", std::move(user)},
            {"method", std::move(method)},
            {"data", std::move(*value)}};
  post("/rpc", body.dump(-1, ' ', false, json::error_handler_t::replace),
       [done = std::move(done)](int status, std::string reply, std::error_code ec) {
         done(rpc_outcome_of(status, reply, ec));
       });
}

void backend_client::emit(actors::backend_event event) {
  if (sink_) sink_(std::move(event));
}

} // namespace troupe::transport
