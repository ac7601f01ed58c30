#pragma once
// The JSON of the HTTP API (protocol.md, "Over HTTP"): the bodies it reads, and the
// answers it writes from what actors::room_requests returns. The routing and the API key
// are http_api's.

#include <utility>

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json_fwd.hpp>

#include "actors/room_requests.hpp"
#include "transport/http_api.hpp"

namespace troupe::transport::api_json {

/// A MessagePack value (empty: nil) as JSON; nothing if JSON cannot show it (binary, ext).
/// The one conversion between the two, for the API and the backend's calls alike.
std::optional<nlohmann::json> json_of_msgpack(const std::string& packed);
/// A JSON value as MessagePack.
std::string msgpack_of_json(const nlohmann::json& value);

/// What a response needs of its request (a callback may answer after the request is gone).
struct response_head {
  unsigned version = 11;
  bool keep_alive = true;
};
response_head head_of(const http_request& request);

/// `{error, reason}` with `status`.
http_response error(const response_head& head, boost::beast::http::status status,
                    std::string_view code, std::string_view reason);
/// A refused request, with the status its code reads as over HTTP.
http_response error(const response_head& head, const actors::request_error& refused);

http_response answer(const response_head& head, const actors::published& ack);
http_response answer(const response_head& head, const actors::presence_snapshot& presence);
http_response answer(const response_head& head, const actors::history_page& page);
http_response answer(const response_head& head, const actors::disconnected& done);

/// The body of `POST /api/publish`, read: `data` as MessagePack, `user` as given (or none).
struct publish_body {
  std::string room;
  std::string data;
  std::optional<std::string> key;
  std::optional<std::string> user;
};
/// The body, or the reason (for a 400) it is not valid.
std::variant<publish_body, std::string> read_publish(std::string_view body);

/// The `user` of `POST /api/disconnect`'s body, or the reason (for a 400) there is none.
struct disconnect_body {
  std::string user;
};
std::variant<disconnect_body, std::string> read_disconnect(std::string_view body);

} // namespace troupe::transport::api_json
