#pragma once
// Connection tokens: JWTs signed with HS256 (verified by libjwt). Claims: `sub` (the user
// id, required), `exp` and `nbf` (seconds since the epoch), `name`, `info` (any JSON value,
// kept as its MessagePack encoding for presence entries), `rooms` and `read` (glob
// patterns, see room_access.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/room_access.hpp"

namespace troupe::core {

struct token_claims {
  std::string user;                    ///< `sub`
  std::string name;                    ///< empty: none
  std::string info;                    ///< MessagePack of `info`; empty: none
  room_access access;                  ///< from `rooms` and `read`
  std::optional<std::int64_t> expires; ///< `exp`, seconds since the epoch
};

/// Claims, or why the token was refused.
struct token_result {
  std::optional<token_claims> claims;
  std::string error; ///< set when refused; says what, never echoes the token
  explicit operator bool() const noexcept { return claims.has_value(); }
};

/// Verifies `token` with `secret`: the signature must be HS256 (any other `alg`, `none`
/// included, is refused), `sub` must be a non-empty string, `exp` (if any) after `now` and
/// `nbf` (if any) not after it. `now` is seconds since the epoch.
token_result verify_token(std::string_view token, std::string_view secret, std::int64_t now);

/// Reads the claims of `token` without checking its signature, `alg` or times: for an
/// engine without a secret, where a token only names its user. Its access is everything.
token_result read_token_unverified(std::string_view token);

/// Seconds since the epoch, as tokens count them.
std::int64_t token_clock_now() noexcept;

} // namespace troupe::core
