#pragma once
// What the Redis connections hand back: owned replies (hiredis frees its own as soon as the
// callback returns), the errors of a command that got no reply, the links' options, and Lua
// scripts named by their SHA1 for EVALSHA.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

struct redisReply;

namespace troupe::cluster {

/// One RESP2 reply, owned.
struct redis_reply {
  enum class kind : std::uint8_t { nil, integer, string, status, error, array };

  kind type = kind::nil;
  long long integer = 0;             ///< kind::integer
  std::string str;                   ///< kind::string (any bytes), kind::status, kind::error
  std::vector<redis_reply> elements; ///< kind::array

  bool is_nil() const noexcept { return type == kind::nil; }
  bool is_integer() const noexcept { return type == kind::integer; }
  bool is_string() const noexcept { return type == kind::string; }
  bool is_status() const noexcept { return type == kind::status; }
  bool is_error() const noexcept { return type == kind::error; }
  bool is_array() const noexcept { return type == kind::array; }

  /// A copy of hiredis's reply.
  static redis_reply from(const redisReply& reply);
};

/// Why a command (or a subscription) got no reply. A Redis error reply is not one of these:
/// it arrives as a redis_reply of kind::error.
enum class redis_errc {
  not_connected = 1, ///< the link was down when it was asked: not sent (fail fast)
  link_lost,         ///< sent, then the link broke: Redis may or may not have run it
  timeout,           ///< sent, no reply within the command timeout: the link is then broken
  closed,            ///< the connection was closed by its owner
  invalid_command,   ///< refused without sending (empty, or pub/sub on a command link)
};
const std::error_category& redis_category() noexcept;
std::error_code make_error_code(redis_errc e) noexcept;

/// Timing of a link to Redis.
struct redis_options {
  /// A command with no reply after this fails with redis_errc::timeout and the link is
  /// broken (a reply that late means the link or Redis is stuck; later replies would be too).
  std::chrono::milliseconds command_timeout{5000};
  /// Resolving, connecting, AUTH, SELECT (and a subscriber's resubscription) within this.
  std::chrono::milliseconds connect_timeout{5000};
  /// Reconnection delay: doubles from the first to the cap, each drawn in [d/2, d], never
  /// below the first (jitter keeps nodes from reconnecting in step after a Redis restart).
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  /// TCP keepalive, so a silently dead peer is noticed on a link with nothing in flight
  /// (a subscriber's); 0 leaves it off.
  int keepalive_seconds = 5;
};

/// A Lua script and its SHA1 (40 lower-case hex digits), computed once.
class redis_script {
public:
  explicit redis_script(std::string text);
  const std::string& text() const noexcept { return *text_; }
  const std::string& sha1() const noexcept { return sha1_; }
  std::shared_ptr<const std::string> shared_text() const noexcept { return text_; }

private:
  std::shared_ptr<const std::string> text_; // shared: a NOSCRIPT retry holds it cheaply
  std::string sha1_;
};

/// SHA1 of bytes as 40 lower-case hex digits (what SCRIPT LOAD answers).
std::string sha1_hex(std::string_view bytes);

} // namespace troupe::cluster

template <>
struct std::is_error_code_enum<troupe::cluster::redis_errc> : std::true_type {};
