#pragma once
// The backend API under /api (protocol.md, "Over HTTP"): publish into a room, read its
// presence and history, disconnect a user. The key of --api-key in
// `Authorization: apikey K`. This file routes and checks the key and the query; the JSON
// of each endpoint is http_api_json's; the rooms are asked through actors::room_requests,
// which sends each request to the room's actors as a client's would.

#include <utility>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <functional>
#include <string_view>

#include "transport/outbox.hpp"
#include "transport/server_context.hpp"

namespace troupe::actors {
class room_requests;
}

namespace troupe::transport {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

class http_api {
public:
  /// Called once with the answer, on the session's strand.
  using respond_fn = std::function<void(http_response)>;

  http_api(server_context& context, strand_type strand);

  static bool handles(std::string_view path) {
    return path == "/api" || path.substr(0, 5) == "/api/";
  }

  /// The largest request body read: a publish carries `data` of up to --max-data as JSON.
  static std::size_t body_limit(const server_context& context);

  /// Answers `request` (its path is under /api) through `respond`, now or once the room has.
  void serve(const http_request& request, respond_fn respond);

private:
  /// How this API reaches rooms (and closes a user's connections), answering on the strand.
  actors::room_requests rooms() const;

  void publish(const http_request& request, respond_fn respond);
  void presence(const http_request& request, respond_fn respond);
  void history(const http_request& request, respond_fn respond);
  void disconnect(const http_request& request, respond_fn respond);

  server_context& context_;
  strand_type strand_;
};

} // namespace troupe::transport
