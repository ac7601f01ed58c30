#pragma once
// The engine's options: command line first, then TROUPE_<NAME> environment variables.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace troupe::engine {

struct options {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;
  std::uint32_t ping = 25;           ///< seconds
  double grace = 3;                  ///< seconds a vanished connection stays in presence
  std::size_t history = 1000;        ///< messages kept per room
  std::size_t doc_log = 1000;        ///< operations kept per document
  std::size_t max_frame = 1 << 20;   ///< bytes
  std::size_t max_data = 64 << 10;   ///< bytes of a message's encoded `data`
  std::size_t queue_limit = 1 << 20; ///< bytes queued per connection before 4500
  std::uint32_t room_idle = 60;      ///< seconds a room no one holds stays in memory
  unsigned threads = 0;              ///< I/O threads; 0: one per core
  std::string io_uring = "on";       ///< on | off: batch the fan-out's writes through io_uring
  std::string web;                   ///< static files at /; empty: the bundled demo

  // Storage (docs/storage.md).
  std::string store = "sqlite";     ///< "sqlite" (durable, in `data`) or "memory"
  std::string data = "troupe-data"; ///< directory of the SQLite store
  std::uint32_t history_age = 0;    ///< seconds a message is kept at most; 0: no age limit
  std::size_t doc_snapshot = 1000;  ///< operations between two snapshots of a document
  std::string sync = "full";        ///< SQLite synchronous: "full" (power loss) or "normal"
  double store_stall = 1;           ///< seconds a commit may run before the store is stalled

  // Security and limits (docs/security.md).
  std::string secret;                         ///< HS256 key of connection tokens; empty: open
  std::string api_key;                        ///< key of the HTTP API; empty: the API is off
  double rate = 100;                          ///< requests per second per connection; 0: off
  std::size_t max_rooms = 128;                ///< rooms one connection may hold
  std::size_t max_connections = 100000;       ///< WebSocket connections in total; 0: no limit
  std::size_t max_connections_per_ip = 10000; ///< from one address; 0: no limit
  std::uint32_t handshake_timeout = 10;       ///< seconds for the HTTP upgrade and `connect`
  std::string origins;                        ///< comma-separated allowed Origin values; empty: any
  std::string tls_cert;                       ///< PEM certificate chain; with tls_key: TLS only
  std::string tls_key;                        ///< PEM private key

  // Cluster (docs/cluster.md).
  std::string redis; ///< redis://…: the Redis the cluster's nodes share; empty: one node alone

  // The application's backend: RPC and webhooks (protocol.md, "Backend calls").
  std::string backend;                ///< http(s):// base URL; empty: none
  std::string backend_secret;         ///< signs every call; empty: unsigned
  std::uint32_t backend_timeout = 5;  ///< seconds a call may take
  std::size_t webhook_queue = 100000; ///< webhook events queued at most; more are dropped
};

/// Parses the command line and the environment. Returns nothing when it printed help;
/// throws std::runtime_error with a message for unknown or malformed options.
std::optional<options> parse_options(int argc, const char* const* argv, std::ostream& help_out);

} // namespace troupe::engine
