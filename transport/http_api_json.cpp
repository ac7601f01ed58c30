#include "transport/http_api_json.hpp"

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "protocol/codec.hpp"

namespace troupe::transport::api_json {

namespace http = boost::beast::http;
using json = nlohmann::json;

namespace {

http_response json_response(const response_head& head, http::status status, const json& body) {
  http_response response{status, head.version};
  response.set(http::field::server, "troupe");
  response.set(http::field::content_type, "application/json");
  response.set(http::field::cache_control, "no-store");
  response.keep_alive(head.keep_alive);
  // Data from clients may hold strings that are not UTF-8: replaced, not refused.
  response.body() = body.dump(-1, ' ', false, json::error_handler_t::replace);
  response.prepare_payload();
  return response;
}

/// How a refused request's code reads over HTTP.
http::status status_of(std::string_view code) {
  if (code == "bad_request") return http::status::bad_request;
  if (code == "too_large") return http::status::payload_too_large;
  if (code == "forbidden") return http::status::forbidden;
  if (code == "not_found") return http::status::not_found;
  if (code == "unavailable") return http::status::service_unavailable;
  return http::status::internal_server_error;
}

std::optional<json> from_msgpack(const std::string& packed) { return json_of_msgpack(packed); }

http_response not_json(const response_head& head) {
  return error(head, http::status::internal_server_error, "internal",
               "the reply cannot be shown as JSON");
}

/// The body as a JSON object, or nothing.
std::optional<json> object_body(std::string_view body) {
  json value = json::parse(body, nullptr, false);
  if (value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

} // namespace

std::optional<json> json_of_msgpack(const std::string& packed) {
  if (packed.empty()) return json(nullptr);
  json value = json::from_msgpack(packed, true, false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

std::string msgpack_of_json(const json& value) {
  const auto packed = json::to_msgpack(value);
  return std::string(packed.begin(), packed.end());
}

response_head head_of(const http_request& request) {
  return {request.version(), request.keep_alive()};
}

http_response error(const response_head& head, http::status status, std::string_view code,
                    std::string_view reason) {
  return json_response(head, status, json{{"error", code}, {"reason", reason}});
}

http_response error(const response_head& head, const actors::request_error& refused) {
  return error(head, status_of(refused.code), refused.code, refused.reason);
}

http_response answer(const response_head& head, const actors::published& ack) {
  return json_response(head, http::status::ok, json{{"seq", ack.seq}});
}

http_response answer(const response_head& head, const actors::presence_snapshot& presence) {
  json members = json::array();
  for (const auto& member : presence.members) {
    json entry{{"client", member.client}, {"user", member.user}};
    if (member.name) entry["name"] = *member.name;
    if (!member.info.empty()) {
      auto info = from_msgpack(member.info);
      if (!info) return not_json(head);
      entry["info"] = std::move(*info);
    }
    if (!member.state.empty()) {
      auto state = from_msgpack(member.state);
      if (!state) return not_json(head);
      entry["state"] = std::move(*state);
    }
    members.push_back(std::move(entry));
  }
  return json_response(head, http::status::ok,
                       json{{"pseq", presence.pseq}, {"members", std::move(members)}});
}

http_response answer(const response_head& head, const actors::history_page& page) {
  json msgs = json::array();
  for (const auto& msg : page.msgs) {
    auto data = from_msgpack(msg.data);
    if (!data) return not_json(head);
    json entry{{"room", msg.room},
               {"seq", msg.seq},
               {"user", msg.user},
               {"data", std::move(*data)},
               {"ts", msg.ts}};
    if (msg.key) entry["key"] = *msg.key;
    msgs.push_back(std::move(entry));
  }
  return json_response(head, http::status::ok,
                       json{{"seq", page.seq}, {"epoch", page.epoch}, {"msgs", std::move(msgs)}});
}

http_response answer(const response_head& head, const actors::disconnected& done) {
  return json_response(head, http::status::ok, json{{"closed", done.closed}});
}

std::variant<publish_body, std::string> read_publish(std::string_view text) {
  using result = std::variant<publish_body, std::string>;
  auto body = object_body(text);
  if (!body)
    return result(std::in_place_index<1>,
                  "the body must be a JSON object {room, data, key?, user?}");
  publish_body out;
  const auto room = body->find("room");
  if (room == body->end() || !room->is_string())
    return result(std::in_place_index<1>, "'room' (a string) is required");
  out.room = room->get<std::string>();
  if (!protocol::valid_room_name(out.room))
    return result(std::in_place_index<1>,
                  "'room' must be 1..128 characters of A-Z a-z 0-9 _ - : . @");
  const auto data = body->find("data");
  if (data == body->end()) return result(std::in_place_index<1>, "'data' is required");
  if (auto it = body->find("key"); it != body->end() && !it->is_null()) {
    if (!it->is_string() || it->get_ref<const std::string&>().size() > 256)
      return result(std::in_place_index<1>, "'key' must be a string of at most 256 bytes");
    out.key = it->get<std::string>();
  }
  if (auto it = body->find("user"); it != body->end() && !it->is_null()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
      return result(std::in_place_index<1>, "'user' must be a non-empty string");
    out.user = it->get<std::string>();
  }
  out.data = msgpack_of_json(*data);
  return result(std::in_place_index<0>, std::move(out));
}

std::variant<disconnect_body, std::string> read_disconnect(std::string_view text) {
  using result = std::variant<disconnect_body, std::string>;
  auto body = object_body(text);
  if (!body) return result(std::in_place_index<1>, "the body must be a JSON object {user}");
  const auto it = body->find("user");
  if (it == body->end() || !it->is_string() || it->get_ref<const std::string&>().empty())
    return result(std::in_place_index<1>, "'user' (a non-empty string) is required");
  return result(std::in_place_index<0>, disconnect_body{it->get<std::string>()});
}

} // namespace troupe::transport::api_json
