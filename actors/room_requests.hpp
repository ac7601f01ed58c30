#pragma once
// Requests to a room from outside any connection (the HTTP API, tools): publish into it,
// read its presence and its history, and disconnect a user. Each request acquires the room
// through the directory and goes to the room's actors exactly as a client's would (so a
// publish is sequenced, deduplicated by key, made durable and fanned out as a `pub` is),
// with a sink of its own that catches the reply. The answer is typed (no JSON, no HTTP)
// and handed to a callback on the executor given at construction, once: the reply, an
// error the room answered, or `unavailable` when the room did not answer in time.

#include <utility>

#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "actors/connection.hpp"

namespace troupe::actors {

/// A request the room (or this interface) refused: the protocol's error code
/// ("bad_request", "too_large", "forbidden", "not_found", "unavailable", "internal") and why.
struct request_error {
  std::string code;
  std::string reason;
};

struct disconnected {
  std::size_t closed = 0; ///< connections closed
};

/// What a request answers: its value, or the error.
template <class T>
class request_result {
public:
  request_result(T value) : state_(std::move(value)) {}
  request_result(request_error error) : state_(std::move(error)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  T& value() { return std::get<0>(state_); }
  const T& value() const { return std::get<0>(state_); }
  const request_error& error() const { return std::get<1>(state_); }

private:
  std::variant<T, request_error> state_;
};

/// A publish's acknowledgement: the message's seq (the first one's for a repeated key).
struct published {
  std::uint64_t seq = 0;
};

/// One member of a room's presence, as the room lists it.
struct presence_member {
  std::string client;
  std::string user;
  std::optional<std::string> name;
  std::string info;  ///< the token's `info`, MessagePack; empty: none
  std::string state; ///< the `pset` state, MessagePack; empty: none
};

struct presence_snapshot {
  std::uint64_t pseq = 0;
  std::vector<presence_member> members;
};

/// One message of a room's history.
struct history_message {
  std::string room;
  std::uint64_t seq = 0;
  std::string user;
  std::string data;     ///< MessagePack, as published
  std::uint64_t ts = 0; ///< milliseconds since the epoch
  std::optional<std::string> key;
};

struct history_page {
  std::uint64_t seq = 0; ///< the room's top seq
  std::string epoch;
  std::vector<history_message> msgs;
};

class room_requests {
public:
  template <class T>
  using callback = std::function<void(request_result<T>)>;
  /// Closes every live connection of `user` with `code` (sending `disconnect` first) and
  /// answers how many, or why it could not: the transport knows the connections (and, in a
  /// cluster, asks every node), so it provides this. `done` may run on any thread.
  using user_closer =
      std::function<void(const std::string& user, std::uint16_t code, const std::string& reason,
                         bool reconnect, callback<disconnected> done)>;

  /// A room that does not answer within this (the engine is shutting down) is unavailable.
  static constexpr std::chrono::seconds default_timeout{10};
  /// `disconnect` closes with the code of a refused token: clients do not come back.
  static constexpr std::uint16_t disconnect_code = 4403;
  /// Who publishes when the caller names no user.
  static constexpr const char* default_user = "api";

  /// `services` (the directory, the actor system, the limits) outlives every request;
  /// callbacks run on `executor`, which must be a strand (a reply and the timeout meet
  /// there); the requests themselves may be made on it or anywhere.
  room_requests(const connection_services& services, boost::asio::any_io_executor executor,
                user_closer close_user,
                std::chrono::steady_clock::duration timeout = default_timeout);

  /// Publishes `data` (one MessagePack value, at most limits.max_data bytes) into `room` as
  /// `user`; a `key` seen before answers the first publish's seq and publishes nothing.
  void publish(std::string room, std::string data, std::optional<std::string> key, std::string user,
               callback<published> done) const;

  /// The room's presence now.
  void presence(std::string room, callback<presence_snapshot> done) const;

  /// The room's messages after `since`, at most `limit` (0 or more than
  /// protocol::max_history_limit: that maximum).
  void history(std::string room, std::uint64_t since, std::uint32_t limit,
               callback<history_page> done) const;

  /// Closes every connection of `user` (code 4403, no reconnect).
  void disconnect(std::string user, callback<disconnected> done) const;

private:
  const connection_services& services_;
  boost::asio::any_io_executor executor_;
  user_closer close_user_;
  std::chrono::steady_clock::duration timeout_;
};

} // namespace troupe::actors
