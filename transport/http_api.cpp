#include "transport/http_api.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "actors/room_requests.hpp"
#include "core/metrics.hpp"
#include "protocol/codec.hpp"
#include "transport/http_api_json.hpp"

namespace troupe::transport {

namespace http = boost::beast::http;

namespace {

/// Compares digests, so neither the key's length nor where it differs shows in the time.
bool key_matches(std::string_view given, std::string_view expected) {
  unsigned char a[EVP_MAX_MD_SIZE];
  unsigned char b[EVP_MAX_MD_SIZE];
  unsigned int a_size = 0;
  unsigned int b_size = 0;
  if (!EVP_Digest(given.data(), given.size(), a, &a_size, EVP_sha256(), nullptr) ||
      !EVP_Digest(expected.data(), expected.size(), b, &b_size, EVP_sha256(), nullptr) ||
      a_size != b_size)
    return false;
  return CRYPTO_memcmp(a, b, a_size) == 0;
}

/// The key of `Authorization: apikey K` (the scheme in any case), or nothing.
std::optional<std::string_view> api_key_of(const http_request& request) {
  const auto it = request.find(http::field::authorization);
  if (it == request.end()) return std::nullopt;
  const std::string_view value = it->value();
  constexpr std::string_view scheme = "apikey ";
  if (value.size() <= scheme.size() ||
      !boost::beast::iequals(value.substr(0, scheme.size()), scheme))
    return std::nullopt;
  return value.substr(scheme.size());
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// application/x-www-form-urlencoded: `+` is a space, %XX a byte. Nothing if malformed.
std::optional<std::string> url_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int high = hex_digit(in[i + 1]);
      const int low = hex_digit(in[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

/// The query's parameters; the first of a repeated name counts. Nothing if malformed.
std::optional<std::map<std::string, std::string>> query_of(std::string_view target) {
  std::map<std::string, std::string> params;
  const auto question = target.find('?');
  if (question == std::string_view::npos) return params;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto name = url_decode(pair.substr(0, eq));
    auto value =
        url_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name || !value) return std::nullopt;
    params.emplace(std::move(*name), std::move(*value));
  }
  return params;
}

std::optional<std::uint64_t> to_unsigned(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

/// A query string with a valid `room`.
struct room_query {
  std::map<std::string, std::string> params;
  std::string room;
};

/// The query of `target` and its room, or the reason (for a 400) it has none.
std::variant<room_query, std::string> room_query_of(std::string_view target) {
  auto query = query_of(target);
  if (!query) return std::string("malformed query string");
  const auto it = query->find("room");
  if (it == query->end()) return std::string("'room' (a string) is required");
  if (!protocol::valid_room_name(it->second))
    return std::string("'room' must be 1..128 characters of A-Z a-z 0-9 _ - : . @");
  std::string room = it->second;
  return room_query{std::move(*query), std::move(room)};
}

http_response bad_request(const http_request& request, std::string_view reason) {
  return api_json::error(api_json::head_of(request), http::status::bad_request, "bad_request",
                         reason);
}

/// The callback that answers a room request's result through `respond`.
template <class T>
actors::room_requests::callback<T> answer_with(const http_request& request,
                                               http_api::respond_fn respond) {
  return [head = api_json::head_of(request),
          respond = std::move(respond)](actors::request_result<T> result) {
    respond(result.ok() ? api_json::answer(head, result.value())
                        : api_json::error(head, result.error()));
  };
}

} // namespace

http_api::http_api(server_context& context, strand_type strand)
    : context_(context), strand_(std::move(strand)) {}

std::size_t http_api::body_limit(const server_context& context) {
  // JSON spells data out at length: room for four times --max-data, and at least 64 KiB.
  return std::max<std::size_t>(64 * 1024, 4 * context.connection.limits.max_data + 4096);
}

actors::room_requests http_api::rooms() const {
  if (context_.close_user)
    return actors::room_requests(context_.connection, strand_, context_.close_user);
  auto& sessions = context_.sessions;
  return actors::room_requests(
      context_.connection, strand_,
      [&sessions](const std::string& user, std::uint16_t code, const std::string& reason,
                  bool reconnect, actors::room_requests::callback<actors::disconnected> done) {
        done(actors::disconnected{sessions.close_user(user, code, reason, reconnect)});
      });
}

void http_api::serve(const http_request& request, respond_fn respond) {
  core::metrics::add(context_.metrics->api_requests);
  const auto head = api_json::head_of(request);
  const auto& key = context_.settings.api_key;
  if (key.empty())
    return respond(api_json::error(head, http::status::not_found, "not_found",
                                   "the API is off: the engine runs without --api-key"));
  const auto given = api_key_of(request);
  if (!given)
    return respond(api_json::error(head, http::status::unauthorized, "unauthorized",
                                   "send 'Authorization: apikey <key>'"));
  if (!key_matches(*given, key))
    return respond(
        api_json::error(head, http::status::unauthorized, "unauthorized", "wrong API key"));

  const std::string_view target = request.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const auto method = request.method();
  if (path == "/api/publish" && method == http::verb::post)
    return publish(request, std::move(respond));
  if (path == "/api/presence" && method == http::verb::get)
    return presence(request, std::move(respond));
  if (path == "/api/history" && method == http::verb::get)
    return history(request, std::move(respond));
  if (path == "/api/disconnect" && method == http::verb::post)
    return disconnect(request, std::move(respond));
  respond(api_json::error(head, http::status::not_found, "not_found",
                          "no such route: POST /api/publish, GET /api/presence, "
                          "GET /api/history, POST /api/disconnect"));
}

void http_api::publish(const http_request& request, respond_fn respond) {
  auto parsed = api_json::read_publish(request.body());
  if (const auto* reason = std::get_if<std::string>(&parsed))
    return respond(bad_request(request, *reason));
  auto& body = std::get<api_json::publish_body>(parsed);
  rooms().publish(std::move(body.room), std::move(body.data), std::move(body.key),
                  body.user.value_or(actors::room_requests::default_user),
                  answer_with<actors::published>(request, std::move(respond)));
}

void http_api::presence(const http_request& request, respond_fn respond) {
  auto parsed = room_query_of(request.target());
  if (const auto* reason = std::get_if<std::string>(&parsed))
    return respond(bad_request(request, *reason));
  auto& query = std::get<room_query>(parsed);
  rooms().presence(std::move(query.room),
                   answer_with<actors::presence_snapshot>(request, std::move(respond)));
}

void http_api::history(const http_request& request, respond_fn respond) {
  auto parsed = room_query_of(request.target());
  if (const auto* reason = std::get_if<std::string>(&parsed))
    return respond(bad_request(request, *reason));
  auto& query = std::get<room_query>(parsed);
  std::uint64_t since = 0;
  std::uint32_t limit = protocol::max_history_limit;
  if (auto it = query.params.find("since"); it != query.params.end()) {
    const auto value = to_unsigned(it->second);
    if (!value) return respond(bad_request(request, "'since' must be a non-negative integer"));
    since = *value;
  }
  if (auto it = query.params.find("limit"); it != query.params.end()) {
    const auto value = to_unsigned(it->second);
    if (!value || *value == 0)
      return respond(bad_request(request, "'limit' must be a positive integer"));
    limit =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(*value, protocol::max_history_limit));
  }
  rooms().history(std::move(query.room), since, limit,
                  answer_with<actors::history_page>(request, std::move(respond)));
}

void http_api::disconnect(const http_request& request, respond_fn respond) {
  auto parsed = api_json::read_disconnect(request.body());
  if (const auto* reason = std::get_if<std::string>(&parsed))
    return respond(bad_request(request, *reason));
  rooms().disconnect(std::move(std::get<api_json::disconnect_body>(parsed).user),
                     answer_with<actors::disconnected>(request, std::move(respond)));
}

} // namespace troupe::transport
