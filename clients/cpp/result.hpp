// Errors and results of the Troupe client: every request completes with a result<T>.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace troupe::client {

// A failed request. `code` is one of the protocol's error codes (bad_request, forbidden, …)
// or one of the client's own codes below.
struct error {
  std::string code;
  std::string reason;
};

namespace errc {
inline constexpr const char* timeout = "timeout"; // no reply within the request timeout
inline constexpr const char* disconnected =
    "disconnected";                             // connection lost with the request in flight
inline constexpr const char* closed = "closed"; // the client was closed
inline constexpr const char* protocol = "protocol_error"; // the server's reply was malformed
inline constexpr const char* already_subscribed = "already_subscribed";
inline constexpr const char* refused = "refused"; // the server refused the connection for good
} // namespace errc

// Either a T or an `error`.
template <class T>
class result {
public:
  result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  result(client::error e) : v_(std::in_place_index<1>, std::move(e)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  const client::error& error() const { return std::get<1>(v_); }

private:
  std::variant<T, client::error> v_;
};

struct nothing {}; // the value of a request whose success carries nothing

// Thrown by the blocking wrapper.
class client_error : public std::runtime_error {
public:
  explicit client_error(client::error e)
      : std::runtime_error(e.code + (e.reason.empty() ? "" : ": " + e.reason)),
        error_(std::move(e)) {}
  const client::error& error() const { return error_; }
  const std::string& code() const { return error_.code; }

private:
  client::error error_;
};

} // namespace troupe::client
