#pragma once
// Where the cluster's Redis is: the contract's `--redis redis://[:password@]host:port[/db]`.

#include <cstdint>
#include <string>
#include <string_view>

namespace troupe::cluster {

struct redis_url {
  std::string host;          ///< a name, an IPv4 address, or an IPv6 one (without brackets)
  std::uint16_t port = 6379; ///< Redis's default when the URL names none
  std::string username;      ///< Redis 6 ACL user (`user:password@`); empty: `AUTH password`
  std::string password;      ///< empty: no AUTH
  int db = 0;                ///< SELECTed on connect when not 0

  /// The URL back, the password replaced by `***` (for logs).
  std::string redacted() const;
};

/// Parses `redis://[[user]:password@]host[:port][/db]`; `host` may be `[v6 address]`, the
/// user and password are percent-decoded. Throws std::invalid_argument naming what is wrong
/// (`rediss://`, a query, a bad port or db, a missing host, ...).
redis_url parse_redis_url(std::string_view text);

} // namespace troupe::cluster
