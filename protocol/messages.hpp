#pragma once
// The typed messages of the wire contract (shared/protocol.md), client to server.
// Decoding (codec.hpp) turns MessagePack maps into these; nothing else is handed on.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace troupe::protocol {

using request_id = std::uint64_t;

/// A MessagePack value kept as its encoded bytes, so it is relayed without re-encoding.
using packed_value = std::string;

enum class error_code {
  bad_request,
  unauthorized,
  forbidden,
  not_found,
  rate_limited,
  too_large,
  not_subscribed,
  conflict,
  unavailable,
  internal,
};

/// The contract's spelling of an error code.
const char* to_string(error_code code) noexcept;

/// Where a subscriber of a room's message log stands.
struct log_position {
  std::uint64_t seq = 0;
  std::string epoch;
};

/// Where a holder of a document stands.
struct doc_position {
  std::uint64_t rev = 0;
  std::string epoch;
};

struct connect_request {
  request_id id = 0;
  std::optional<std::string> token;
  std::optional<std::string> user;
  std::optional<std::string> name;
};

struct sub_request {
  request_id id = 0;
  std::string room;
  std::optional<log_position> since;
};

struct unsub_request {
  request_id id = 0;
  std::string room;
};

struct pub_request {
  request_id id = 0;
  std::string room;
  packed_value data;
  std::optional<std::string> key;
};

struct history_request {
  request_id id = 0;
  std::string room;
  std::uint64_t since = 0;
  std::uint32_t limit = 0; // 0: the default (the maximum)
};

struct presence_request {
  request_id id = 0;
  std::string room;
};

struct pset_request {
  request_id id = 0;
  std::string room;
  packed_value state; // a map
};

struct typing_request { // no id: fire and forget
  std::string room;
  bool on = false;
};

struct open_request {
  request_id id = 0;
  std::string room;
  std::optional<doc_position> since;
};

/// One component of a text operation: retain n (> 0), delete n (< 0), or insert text.
using op_component = std::variant<std::int64_t, std::string>;

struct op_request {
  request_id id = 0;
  std::string room;
  std::uint64_t rev = 0;
  std::vector<op_component> op;
  std::string key;
};

struct close_request {
  request_id id = 0;
  std::string room;
};

struct ping_request {
  request_id id = 0;
};

/// A call of the application's backend (`--backend`).
struct rpc_request {
  request_id id = 0;
  std::string method; ///< 1..64 bytes of the room-name alphabet
  packed_value data;  ///< empty: none (nil)
};

using request = std::variant<connect_request, sub_request, unsub_request, pub_request,
                             history_request, presence_request, pset_request, typing_request,
                             open_request, op_request, close_request, ping_request, rpc_request>;

/// A map that could not be turned into a request. `id` is 0 when the map had none that
/// could be read; the answer then carries no id.
struct decode_error {
  request_id id = 0;
  error_code code = error_code::bad_request;
  std::string reason;
};

using decoded = std::variant<request, decode_error>;

} // namespace troupe::protocol
