#pragma once
// Which rooms a connection may use, from its token's `rooms` (read and write) and `read`
// (read only) glob patterns. Reading is sub, history, presence and open; writing is pub,
// pset, typing and op. Plain value, copied into each connection.

#include <string>
#include <string_view>
#include <vector>

namespace troupe::core {

/// Does `text` match `pattern`, where `*` matches any run of characters (also none) and
/// every other character only itself? Room names cannot hold `*`, so there is no escape.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

class room_access {
public:
  /// Every room, read and write: the engine without a secret.
  static room_access everything();

  /// No room at all until patterns are given: a token with neither claim.
  room_access() = default;
  room_access(std::vector<std::string> write, std::vector<std::string> read);

  /// The connection's verified user: `user:<id>` rooms are readable only by that user's
  /// connections and writable by no client, whatever the patterns say.
  void set_user(std::string user) { user_ = std::move(user); }

  bool may_read(std::string_view room) const noexcept;
  bool may_write(std::string_view room) const noexcept;

  const std::vector<std::string>& write_patterns() const noexcept { return write_; }
  const std::vector<std::string>& read_patterns() const noexcept { return read_; }

private:
  std::vector<std::string> write_; ///< `rooms`: read and write
  std::vector<std::string> read_;  ///< `read`: read only
  bool everything_ = false;
  std::string user_;
};

/// The prefix of per-user rooms: `user:<id>` is the private inbox of user `<id>`.
inline constexpr std::string_view user_room_prefix = "user:";
inline bool is_user_room(std::string_view room) noexcept {
  return room.substr(0, user_room_prefix.size()) == user_room_prefix;
}

} // namespace troupe::core
