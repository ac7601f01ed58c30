#pragma once
// What the transport's listener and sessions share: settings, the services connection
// actors need, counters, and the registry of live sessions (for shutdown).

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "actors/connection.hpp"

namespace troupe::core { struct metrics; }

namespace troupe::transport {

struct server_settings {
  std::size_t max_frame = 1 << 20;             ///< bytes in one incoming message
  std::size_t queue_limit = 1 << 20;           ///< bytes queued for one slow client
  std::chrono::seconds ping{25};               ///< keep-alive interval; 2x silence closes
  std::chrono::seconds connect_timeout{10};    ///< until `connect` must have arrived
  std::chrono::seconds close_timeout{5};       ///< for the peer to answer our close frame
  std::string web_dir;                         ///< static files served at /
};

class ws_session;

/// The live WebSocket sessions, so that shutdown can tell each one.
class session_registry {
public:
  void add(const std::shared_ptr<ws_session>& session);
  void remove(const ws_session* session);
  std::size_t size() const;
  /// Calls `visit` with every live session, outside the lock.
  void for_each(const std::function<void(const std::shared_ptr<ws_session>&)>& visit) const;

private:
  mutable std::mutex mutex_;
  std::unordered_map<const ws_session*, std::weak_ptr<ws_session>> sessions_;
};

struct server_context {
  server_settings settings;
  actors::connection_services connection;
  core::metrics* metrics = nullptr;
  session_registry sessions;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

} // namespace troupe::transport
