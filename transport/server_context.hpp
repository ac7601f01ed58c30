#pragma once
// What the transport's listener and sessions share: settings, the services connection
// actors need, counters, and the registry of live sessions (for shutdown).

#include <utility>

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/connection.hpp"
#include "actors/room_requests.hpp"

namespace troupe::core {
struct metrics;
}
namespace boost::asio::ssl {
class context;
}

namespace troupe::transport {

namespace net = boost::asio;

struct server_settings {
  std::size_t max_frame = 1 << 20;            ///< bytes in one incoming message
  std::size_t queue_limit = 1 << 20;          ///< bytes queued for one slow client
  std::chrono::seconds ping{25};              ///< keep-alive interval; 2x silence closes
  std::chrono::seconds connect_timeout{10};   ///< until `connect` must have arrived
  std::chrono::seconds close_timeout{5};      ///< for the peer to answer our close frame
  std::string web_dir;                        ///< static files served at /
  std::chrono::seconds handshake_timeout{10}; ///< for the HTTP request (the upgrade)
  std::size_t max_connections = 100000;       ///< WebSocket connections in total; 0: any
  std::size_t max_connections_per_ip = 10000; ///< from one remote address; 0: any
  std::vector<std::string> origins;           ///< allowed Origin headers; empty: any
  std::string api_key;                        ///< of the HTTP API; empty: the API is off
};

class ws_session;

/// The live WebSocket sessions: for shutdown, the connection limits (in total and per
/// remote address) and the API's disconnect of a user. Implemented in session_registry.cpp.
class session_registry {
public:
  enum class admission { admitted, too_many, too_many_from_address };
  /// Counts a connection from `address` if the limits allow (0: no limit), before its
  /// WebSocket exists; the upgrade is refused otherwise. An admitted one is then bind()s.
  admission admit(const net::ip::address& address, std::size_t max_total,
                  std::size_t max_per_address);
  /// The admitted connection from `address` is `session`, before its run() add()s it.
  void bind(const ws_session* session, const net::ip::address& address);
  void add(const std::shared_ptr<ws_session>& session);
  void remove(const ws_session* session);
  std::size_t size() const;
  /// The connection of `session` has completed `connect` as `user`.
  void identify(const actors::peer* session, std::string user);
  /// Closes every live connection of `user` with `code` (sending `disconnect` first);
  /// returns how many.
  std::size_t close_user(const std::string& user, std::uint16_t code, const std::string& reason,
                         bool reconnect);
  /// Has every session whose liveness deadline has passed check it, on its strand
  /// (transport/liveness_sweep.hpp).
  void check_liveness(std::chrono::steady_clock::time_point now);
  /// Calls `visit` with every live session, outside the lock.
  void for_each(const std::function<void(const std::shared_ptr<ws_session>&)>& visit) const;

private:
  struct entry {
    std::weak_ptr<ws_session> session;
    std::optional<net::ip::address> address; ///< counted in per_address_
    std::string user;                        ///< empty until identified
  };
  void forget(std::unordered_map<const actors::peer*, entry>::iterator it);

  mutable std::mutex mutex_;
  std::unordered_map<const actors::peer*, entry> sessions_;
  std::map<net::ip::address, std::size_t> per_address_;
  std::size_t admitted_ = 0; ///< admitted, not bound yet
};

struct server_context {
  server_settings settings;
  actors::connection_services connection;
  core::metrics* metrics = nullptr;
  session_registry sessions;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::shared_ptr<net::ssl::context> tls; ///< set (--tls-cert): every connection is TLS
  /// Set in a cluster: `/api/disconnect` on every node (transport/cluster_control.hpp);
  /// unset, the API closes this engine's connections.
  actors::room_requests::user_closer close_user;
  /// Set in a cluster: why this node cannot serve now (Redis lost), empty while it can.
  /// `/health` and `/health/ready` answer 503 with it.
  std::function<std::string()> unavailable_reason;
};

} // namespace troupe::transport
