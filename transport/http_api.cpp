#include "transport/http_api.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <caf/actor_companion.hpp>
#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/metrics.hpp"
#include "protocol/codec.hpp"

namespace troupe::transport {

namespace http = boost::beast::http;
using json = nlohmann::json;

namespace {

/// A room that does not answer within this (the engine is shutting down) gets a 503.
constexpr auto reply_timeout = std::chrono::seconds(10);
/// `POST /api/disconnect` closes with the code of a refused token: clients do not come back.
constexpr std::uint16_t disconnect_code = 4403;
/// Who publishes, when the body names no `user`.
constexpr std::string_view default_user = "api";

std::atomic<std::uint64_t> next_call{1};

http_response json_response(const http_request& request, http::status status, const json& body) {
  http_response response{status, request.version()};
  response.set(http::field::server, "troupe");
  response.set(http::field::content_type, "application/json");
  response.set(http::field::cache_control, "no-store");
  response.keep_alive(request.keep_alive());
  // Data from clients may hold strings that are not UTF-8: replaced, not refused.
  response.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
  response.prepare_payload();
  return response;
}

http_response error_response(const http_request& request, http::status status,
                             std::string_view code, std::string_view reason) {
  return json_response(request, status, json{{"error", code}, {"reason", reason}});
}

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
  if (it == request.end())
    return std::nullopt;
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
      if (i + 2 >= in.size())
        return std::nullopt;
      const int high = hex_digit(in[i + 1]);
      const int low = hex_digit(in[i + 2]);
      if (high < 0 || low < 0)
        return std::nullopt;
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
  if (question == std::string_view::npos)
    return params;
  std::string_view query = target.substr(question + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty())
      continue;
    const auto eq = pair.find('=');
    auto name = url_decode(pair.substr(0, eq));
    auto value = url_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name || !value)
      return std::nullopt;
    params.emplace(std::move(*name), std::move(*value));
  }
  return params;
}

std::optional<std::uint64_t> to_unsigned(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return value;
}

/// How an actor's `error` reply reads over HTTP.
http::status status_of(std::string_view code) {
  if (code == "bad_request") return http::status::bad_request;
  if (code == "too_large") return http::status::payload_too_large;
  if (code == "forbidden") return http::status::forbidden;
  if (code == "not_found") return http::status::not_found;
  if (code == "unavailable") return http::status::service_unavailable;
  return http::status::internal_server_error;
}

/// One request to a room's actor: acquires the room through the directory, sends the
/// request with itself as the peer's sink, and answers when the reply arrives (or the
/// time is up). Lives until then.
class room_call : public actors::frame_sink, public std::enable_shared_from_this<room_call> {
public:
  /// Turns the actor's reply map (not an error) into the HTTP answer's body.
  using shape_fn = std::function<json(json& reply)>;
  /// Sends the request to the room's actors, with `from` as the sender.
  using send_fn = std::function<void(actors::companion* self, const actors::room_handles& room,
                                     actors::peer_ref from)>;

  room_call(server_context& context, strand_type strand, const http_request& request,
            http_api::respond_fn respond, shape_fn shape)
      : context_(context), strand_(std::move(strand)), timer_(strand_),
        version_(request.version()), keep_alive_(request.keep_alive()),
        respond_(std::move(respond)), shape_(std::move(shape)) {}

  /// On the strand.
  void start(const std::string& room, std::string user, send_fn send) {
    timer_.expires_after(reply_timeout);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec)
        self->answer(error_response(self->head(), http::status::service_unavailable,
                                    "unavailable", "the room did not answer in time"));
    });
    actors::peer_ref from;
    from.client = "api-" + std::to_string(next_call.fetch_add(1)); // never a room's member
    from.user = std::move(user);
    from.sink = shared_from_this();
    const auto directory = context_.connection.directory;
    actors::spawn_on_strand(
        *context_.connection.system, strand_,
        [&, directory](actors::companion* self) {
          self->send(directory, actors::acquire_atom::value, room);
          return caf::behavior{
              [self, directory, from = std::move(from), send = std::move(send)](
                  actors::acquired_atom, const std::string& name,
                  const actors::room_handles& handles) mutable {
                send(self, handles, std::move(from));
                // The request is on its way: the room need not stay held for the reply.
                self->send(directory, actors::release_atom::value, name);
                self->quit();
              },
          };
        });
  }

  /// The actor's reply: one MessagePack map. From the actor's thread.
  void send(protocol::frame_ptr frame) override {
    net::post(strand_, [self = shared_from_this(), frame = std::move(frame)] {
      self->on_reply(frame->payload());
    });
  }

private:
  void on_reply(std::string_view payload) {
    json reply = json::from_msgpack(payload, true, false);
    if (reply.is_discarded() || !reply.is_object())
      return answer(error_response(head(), http::status::internal_server_error, "internal",
                                   "the reply cannot be shown as JSON"));
    if (reply.value("t", "") == "error") {
      const std::string code = reply.value("code", "internal");
      return answer(error_response(head(), status_of(code), code, reply.value("reason", "")));
    }
    answer(json_response(head(), http::status::ok, shape_(reply)));
  }

  void answer(http_response response) {
    if (!respond_)
      return; // answered already (the reply raced the timeout)
    timer_.cancel();
    auto respond = std::move(respond_);
    respond_ = nullptr;
    respond(std::move(response));
  }

  /// What a response needs of the request.
  http_request head() const {
    http_request request;
    request.version(version_);
    request.keep_alive(keep_alive_);
    return request;
  }

  server_context& context_;
  strand_type strand_;
  net::steady_timer timer_;
  unsigned version_;
  bool keep_alive_;
  http_api::respond_fn respond_;
  shape_fn shape_;
};

/// The body as a JSON object, or the 400 to answer.
std::optional<json> object_body(const http_request& request) {
  json body = json::parse(request.body(), nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return std::nullopt;
  return body;
}

/// The `room` of a body or query, or the reason it is not valid.
std::variant<std::string, std::string> room_of(const json* value) {
  using result = std::variant<std::string, std::string>;
  if (!value || !value->is_string())
    return result(std::in_place_index<1>, "'room' (a string) is required");
  auto room = value->get<std::string>();
  if (!protocol::valid_room_name(room))
    return result(std::in_place_index<1>,
                  "'room' must be 1..128 characters of A-Z a-z 0-9 _ - : . @");
  return result(std::in_place_index<0>, std::move(room));
}

/// A query string with a valid `room`.
struct room_query {
  std::map<std::string, std::string> params;
  std::string room;
};

/// The query of `target` and its room, or the reason (for a 400) it has none.
std::variant<room_query, std::string> room_query_of(std::string_view target) {
  auto query = query_of(target);
  if (!query)
    return std::string("malformed query string");
  const auto it = query->find("room");
  const json room_value = it == query->end() ? json() : json(it->second);
  auto room = room_of(it == query->end() ? nullptr : &room_value);
  if (room.index() == 1)
    return std::move(std::get<1>(room));
  return room_query{std::move(*query), std::move(std::get<0>(room))};
}

} // namespace

http_api::http_api(server_context& context, strand_type strand)
    : context_(context), strand_(std::move(strand)) {}

std::size_t http_api::body_limit(const server_context& context) {
  // JSON spells data out at length: room for four times --max-data, and at least 64 KiB.
  return std::max<std::size_t>(64 * 1024, 4 * context.connection.limits.max_data + 4096);
}

void http_api::serve(const http_request& request, respond_fn respond) {
  core::metrics::add(context_.metrics->api_requests);
  const auto& key = context_.settings.api_key;
  if (key.empty())
    return respond(error_response(request, http::status::not_found, "not_found",
                                  "the API is off: the engine runs without --api-key"));
  const auto given = api_key_of(request);
  if (!given)
    return respond(error_response(request, http::status::unauthorized, "unauthorized",
                                  "send 'Authorization: apikey <key>'"));
  if (!key_matches(*given, key))
    return respond(error_response(request, http::status::unauthorized, "unauthorized",
                                  "wrong API key"));

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
  respond(error_response(request, http::status::not_found, "not_found",
                         "no such route: POST /api/publish, GET /api/presence, "
                         "GET /api/history, POST /api/disconnect"));
}

void http_api::publish(const http_request& request, respond_fn respond) {
  auto body = object_body(request);
  if (!body)
    return respond(error_response(request, http::status::bad_request, "bad_request",
                                  "the body must be a JSON object {room, data, key?, user?}"));
  auto room = room_of(body->contains("room") ? &(*body)["room"] : nullptr);
  if (room.index() == 1)
    return respond(error_response(request, http::status::bad_request, "bad_request",
                                  std::get<1>(room)));
  if (!body->contains("data"))
    return respond(error_response(request, http::status::bad_request, "bad_request",
                                  "'data' is required"));
  protocol::pub_request pub{1, std::get<0>(room), {}, std::nullopt};
  if (auto it = body->find("key"); it != body->end() && !it->is_null()) {
    if (!it->is_string() || it->get_ref<const std::string&>().size() > 256)
      return respond(error_response(request, http::status::bad_request, "bad_request",
                                    "'key' must be a string of at most 256 bytes"));
    pub.key = it->get<std::string>();
  }
  std::string user(default_user);
  if (auto it = body->find("user"); it != body->end() && !it->is_null()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
      return respond(error_response(request, http::status::bad_request, "bad_request",
                                    "'user' must be a non-empty string"));
    user = it->get<std::string>();
  }
  const auto packed = json::to_msgpack((*body)["data"]);
  const auto max_data = context_.connection.limits.max_data;
  if (packed.size() > max_data)
    return respond(error_response(request, http::status::payload_too_large, "too_large",
                                  "'data' is larger than " + std::to_string(max_data) +
                                      " bytes as MessagePack"));
  pub.data.assign(packed.begin(), packed.end());

  auto call = std::make_shared<room_call>(context_, strand_, request, std::move(respond),
                                          [](json& ack) { return json{{"seq", ack["seq"]}}; });
  const std::string name = pub.room; // `pub` moves into the action
  call->start(name, std::move(user),
              [pub = std::move(pub)](actors::companion* self, const actors::room_handles& room,
                                     actors::peer_ref from) mutable {
                self->send(room.log, actors::room_pub{std::move(from), std::move(pub)});
              });
}

void http_api::presence(const http_request& request, respond_fn respond) {
  auto parsed = room_query_of(request.target());
  if (const auto* reason = std::get_if<std::string>(&parsed))
    return respond(error_response(request, http::status::bad_request, "bad_request", *reason));
  auto& [query, room] = std::get<room_query>(parsed);
  protocol::presence_request get{1, std::move(room)};
  auto call = std::make_shared<room_call>(
      context_, strand_, request, std::move(respond), [](json& reply) {
        return json{{"pseq", reply["pseq"]}, {"members", std::move(reply["members"])}};
      });
  const std::string name = get.room; // `get` moves into the action
  call->start(name, std::string(default_user),
              [get = std::move(get)](actors::companion* self, const actors::room_handles& room,
                                     actors::peer_ref from) mutable {
                self->send(room.presence, actors::presence_get{std::move(from), std::move(get)});
              });
}

void http_api::history(const http_request& request, respond_fn respond) {
  auto parsed = room_query_of(request.target());
  if (const auto* reason = std::get_if<std::string>(&parsed))
    return respond(error_response(request, http::status::bad_request, "bad_request", *reason));
  auto& [query, room] = std::get<room_query>(parsed);
  protocol::history_request get{1, std::move(room), 0, protocol::max_history_limit};
  if (auto since = query.find("since"); since != query.end()) {
    const auto value = to_unsigned(since->second);
    if (!value)
      return respond(error_response(request, http::status::bad_request, "bad_request",
                                    "'since' must be a non-negative integer"));
    get.since = *value;
  }
  if (auto limit = query.find("limit"); limit != query.end()) {
    const auto value = to_unsigned(limit->second);
    if (!value || *value == 0)
      return respond(error_response(request, http::status::bad_request, "bad_request",
                                    "'limit' must be a positive integer"));
    get.limit = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(*value, protocol::max_history_limit));
  }
  auto call = std::make_shared<room_call>(
      context_, strand_, request, std::move(respond), [](json& reply) {
        json msgs = json::array();
        for (auto& msg : reply["msgs"]) {
          msg.erase("t"); // the push's type: not part of a message over HTTP
          msgs.push_back(std::move(msg));
        }
        return json{{"seq", reply["seq"]}, {"epoch", reply["epoch"]}, {"msgs", std::move(msgs)}};
      });
  const std::string name = get.room; // `get` moves into the action
  call->start(name, std::string(default_user),
              [get = std::move(get)](actors::companion* self, const actors::room_handles& room,
                                     actors::peer_ref from) mutable {
                self->send(room.log, actors::room_history{std::move(from), std::move(get)});
              });
}

void http_api::disconnect(const http_request& request, respond_fn respond) {
  auto body = object_body(request);
  if (!body)
    return respond(error_response(request, http::status::bad_request, "bad_request",
                                  "the body must be a JSON object {user}"));
  const auto it = body->find("user");
  if (it == body->end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    return respond(error_response(request, http::status::bad_request, "bad_request",
                                  "'user' (a non-empty string) is required"));
  const auto closed = context_.sessions.close_user(it->get<std::string>(), disconnect_code,
                                                   "disconnected by the server", false);
  respond(json_response(request, http::status::ok, json{{"closed", closed}}));
}

} // namespace troupe::transport
