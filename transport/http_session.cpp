#include "transport/http_session.hpp"

#include <nlohmann/json.hpp>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "core/metrics.hpp"
#include "transport/http_api.hpp"
#include "transport/ws_session.hpp"

namespace troupe::transport {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

std::string_view mime_type(std::string_view path) {
  const auto dot = path.rfind('.');
  const auto ext = dot == std::string_view::npos ? std::string_view() : path.substr(dot);
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json"; // .map: source maps
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".d.ts" || ext == ".ts") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

http::response<http::string_body> text_response(const http::request<http::string_body>& request,
                                                http::status status, std::string_view type,
                                                std::string body) {
  http::response<http::string_body> response{status, request.version()};
  response.set(http::field::server, "troupe");
  response.set(http::field::content_type, type);
  response.keep_alive(request.keep_alive());
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

http::response<http::string_body> json_error(const http::request<http::string_body>& request,
                                             http::status status, std::string_view code,
                                             std::string_view reason) {
  std::string body =
      "{\"error\":\"" + std::string(code) + "\",\"reason\":\"" + std::string(reason) + "\"}";
  auto response = text_response(request, status, "application/json", std::move(body));
  response.set(http::field::cache_control, "no-store"); // an /api answer is never cached
  return response;
}

/// A browser's upgrade carries its page's Origin: with an allow-list, only listed ones
/// pass. Clients that are not browsers send none.
bool origin_allowed(const http::request<http::string_body>& request,
                    const std::vector<std::string>& allowed) {
  const auto it = request.find(http::field::origin);
  if (allowed.empty() || it == request.end()) return true;
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& origin) {
    return beast::iequals(origin, it->value());
  });
}

std::string health_json(const server_context& context) {
  const auto& m = *context.metrics;
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - context.started)
                          .count();
  const std::string reason =
      context.unavailable_reason ? context.unavailable_reason() : std::string();
  nlohmann::json status{{"status", reason.empty() ? "ok" : "unavailable"},
                        {"connections", m.connections.load()},
                        {"rooms", m.rooms.load()},
                        {"uptime_s", uptime}};
  if (!reason.empty()) status["reason"] = reason;
  return status.dump();
}

/// 503 while a cluster node cannot reach Redis, naming why.
http::status health_status(const server_context& context) {
  return context.unavailable_reason && !context.unavailable_reason().empty()
             ? http::status::service_unavailable
             : http::status::ok;
}

std::string metrics_text(const server_context& context) {
  const auto& m = *context.metrics;
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
        << name << ' ' << value << '\n';
  };
  metric("troupe_connections", "gauge", "Open WebSocket connections.", m.connections.load());
  metric("troupe_connections_total", "counter", "WebSocket connections accepted.",
         m.connections_total.load());
  metric("troupe_rooms", "gauge", "Room actors in memory.", m.rooms.load());
  metric("troupe_messages_published_total", "counter", "Messages sequenced into rooms.",
         m.messages_published.load());
  metric("troupe_deliveries_total", "counter", "Messages queued to subscribers.",
         m.deliveries.load());
  metric("troupe_document_operations_total", "counter", "Document operations applied.",
         m.operations.load());
  metric("troupe_slow_consumers_total", "counter", "Connections closed with 4500.",
         m.slow_consumers.load());
  metric("troupe_bad_requests_total", "counter", "Requests answered with an error.",
         m.bad_requests.load());
  metric("troupe_forbidden_total", "counter", "Requests answered forbidden.", m.forbidden.load());
  metric("troupe_rate_limited_total", "counter", "Requests over a connection's budget.",
         m.rate_limited.load());
  metric("troupe_refused_upgrades_total", "counter",
         "WebSocket upgrades refused (Origin, connection limits).", m.refused_upgrades.load());
  metric("troupe_api_requests_total", "counter", "Calls to the HTTP API.", m.api_requests.load());
  metric("troupe_store_commits_total", "counter", "Transactions committed by the store.",
         m.store_commits.load());
  metric("troupe_store_writes_total", "counter",
         "Messages and document operations committed by the store.", m.store_writes.load());
  metric("troupe_store_failures_total", "counter",
         "Commits that failed (disk full, I/O error); their requests got unavailable.",
         m.store_failures.load());
  metric("troupe_store_load_failures_total", "counter",
         "Rooms or documents refused because the store could not read them.",
         m.store_load_failures.load());
  // A stalled disk (docs/storage.md): commit durations, the commit running now, slow ones.
  const auto& commits = m.commits;
  out << "# HELP troupe_store_commit_seconds Time each commit of the store took.\n"
         "# TYPE troupe_store_commit_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= core::commit_watch::bucket_bounds.size(); ++i) {
    cumulative += commits.bucket(i);
    out << "troupe_store_commit_seconds_bucket{le=\"";
    if (i < core::commit_watch::bucket_bounds.size())
      out << core::commit_watch::bucket_bounds[i];
    else
      out << "+Inf";
    out << "\"} " << cumulative << '\n';
  }
  out << "troupe_store_commit_seconds_sum " << commits.sum_seconds() << '\n'
      << "troupe_store_commit_seconds_count " << commits.count() << '\n';
  metric("troupe_store_commit_age_seconds", "gauge",
         "How long the commit running now has run; 0 when none runs.",
         static_cast<double>(commits.age().count()) / 1000.0);
  metric("troupe_store_stalled", "gauge",
         "1 while a commit has run past --store-stall (new writes get unavailable), else 0.",
         commits.stalled() ? 1 : 0);
  metric("troupe_store_slow_commits_total", "counter",
         "Commits that took longer than --store-stall.", commits.slow());
  metric("troupe_store_stall_refusals_total", "counter",
         "Writes refused with unavailable because a commit had run past --store-stall.",
         commits.refused());
  metric("troupe_webhook_events_sent_total", "counter",
         "Webhook events the backend accepted (2xx).", m.webhook_events_sent.load());
  metric("troupe_webhook_batches_retried_total", "counter",
         "POST /events attempts that retried a failed batch.", m.webhook_batches_retried.load());
  metric("troupe_webhook_events_dropped_total", "counter",
         "Webhook events dropped: the queue was full, or their batch failed for too long.",
         m.webhook_events_dropped.load());
  metric("troupe_webhook_queue_length", "gauge", "Webhook events queued or in flight.",
         m.webhook_queue_length.load());
  return out.str();
}

} // namespace

http_session::http_session(net::ip::tcp::socket socket, strand_type strand, server_context& context)
    : context_(context), strand_(std::move(strand)), stream_(std::move(socket), context.tls.get()) {
}

void http_session::run() {
  net::dispatch(strand_, [self = shared_from_this()] {
    if (self->stream_.is_tls()) return self->do_tls_handshake();
    self->do_read();
  });
}

void http_session::do_tls_handshake() {
  stream_.expires_after(context_.settings.handshake_timeout);
  stream_.async_handshake(net::bind_executor(strand_, [self = shared_from_this()](error_code ec) {
    // A plain client, a scanner or a timeout: nothing can be answered, the socket just closes
    // (quietly: one line per failure would let anyone fill the log).
    if (ec) {
      error_code ignored;
      self->stream_.socket().close(ignored);
      return;
    }
    self->do_read();
  }));
}

void http_session::do_read() {
  parser_.emplace();
  parser_->body_limit(http_api::body_limit(context_));
  stream_.expires_after(context_.settings.handshake_timeout); // also bounds a request's arrival
  http::async_read(
      stream_, buffer_, *parser_,
      net::bind_executor(strand_, [self = shared_from_this()](error_code ec, std::size_t bytes) {
        self->on_read(ec, bytes);
      }));
}

void http_session::on_read(error_code ec, std::size_t) {
  if (ec == http::error::body_limit) {
    auto request = parser_->get();
    request.keep_alive(false);
    return do_write(json_error(request, http::status::payload_too_large, "too_large",
                               "request body too large"));
  }
  if (ec) {
    error_code ignored;
    stream_.socket().shutdown(net::socket_base::shutdown_both, ignored);
    return;
  }
  auto request = parser_->release();
  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));

  if (beast::websocket::is_upgrade(request)) {
    if (path != "/ws")
      return do_write(json_error(request, http::status::not_found, "not_found",
                                 "WebSockets are served at /ws"));
    if (!origin_allowed(request, context_.settings.origins)) {
      core::metrics::add(context_.metrics->refused_upgrades);
      return do_write(
          json_error(request, http::status::forbidden, "forbidden", "this Origin is not allowed"));
    }
    const auto remote = stream_.socket().remote_endpoint(ec);
    if (ec) return;
    const auto admission =
        context_.sessions.admit(remote.address(), context_.settings.max_connections,
                                context_.settings.max_connections_per_ip);
    if (admission != session_registry::admission::admitted) {
      core::metrics::add(context_.metrics->refused_upgrades);
      return do_write(json_error(request, http::status::service_unavailable, "unavailable",
                                 admission == session_registry::admission::too_many
                                     ? "too many connections"
                                     : "too many connections from this address"));
    }
    stream_.expires_never();
    auto session = stream_.is_tls()
                       ? std::make_shared<ws_session>(stream_.release_tls(), strand_, context_)
                       : std::make_shared<ws_session>(stream_.release_socket(), strand_, context_);
    context_.sessions.bind(session.get(), remote.address());
    // Bytes the client sent after its request (frames it did not wait to send) are its.
    std::string early = beast::buffers_to_string(buffer_.data());
    buffer_ = {};
    session->run(request, std::move(early));
    return;
  }
  if (http_api::handles(path))
    return http_api(context_, strand_)
        .serve(request, [self = shared_from_this()](http_response response) {
          net::dispatch(self->strand_, [self, response = std::move(response)]() mutable {
            self->do_write(std::move(response));
          });
        });
  if (request.method() != http::verb::get && request.method() != http::verb::head)
    return do_write(json_error(request, http::status::not_found, "not_found", "no such route"));
  if (path == "/health" || path == "/health/ready")
    return do_write(
        text_response(request, health_status(context_), "application/json", health_json(context_)));
  if (path == "/health/live")
    return do_write(
        text_response(request, http::status::ok, "application/json", R"({"status":"ok"})"));
  if (path == "/metrics")
    return do_write(text_response(request, http::status::ok,
                                  "text/plain; version=0.0.4; charset=utf-8",
                                  metrics_text(context_)));

  // Static files of the demo; nothing outside the web directory.
  std::string file(path == "/" ? "/index.html" : path);
  if (file.find("..") != std::string::npos || context_.settings.web_dir.empty())
    return do_write(json_error(request, http::status::not_found, "not_found", "no such file"));
  // A directory (or anything but a file) is not served: file_body would read nothing.
  const std::string full_path = context_.settings.web_dir + file;
  std::error_code kind_error;
  if (!std::filesystem::is_regular_file(full_path, kind_error))
    return do_write(json_error(request, http::status::not_found, "not_found", "no such file"));
  http::file_body::value_type body;
  body.open(full_path.c_str(), beast::file_mode::scan, ec);
  if (ec)
    return do_write(json_error(request, http::status::not_found, "not_found", "no such file"));
  http::response<http::file_body> response{std::piecewise_construct,
                                           std::make_tuple(std::move(body)),
                                           std::make_tuple(http::status::ok, request.version())};
  response.set(http::field::server, "troupe");
  response.set(http::field::content_type, mime_type(file));
  response.keep_alive(request.keep_alive());
  response.prepare_payload();
  do_write(std::move(response));
}

template <class Response>
void http_session::do_write(Response&& response) {
  auto shared = std::make_shared<std::decay_t<Response>>(std::forward<Response>(response));
  const bool keep_alive = shared->keep_alive();
  http::async_write(stream_, *shared,
                    net::bind_executor(strand_, [self = shared_from_this(), shared,
                                                 keep_alive](error_code ec, std::size_t) {
                      self->on_write(keep_alive, ec);
                    }));
}

void http_session::on_write(bool keep_alive, error_code ec) {
  if (ec || !keep_alive) {
    error_code ignored;
    stream_.socket().shutdown(net::socket_base::shutdown_send, ignored);
    return;
  }
  do_read();
}

} // namespace troupe::transport
