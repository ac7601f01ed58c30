#pragma once
// The connection: one per WebSocket, on the session's strand. It turns decoded requests
// into messages to room actors, answers what it can itself (connect, ping, errors), and
// keeps which rooms the connection holds so it can leave them when it ends.
//
// It is no actor of its own: rooms answer through its sink, and what comes back to it (a
// room's actors from the directory, a backend call's outcome, a token's expiry) is posted to
// its strand. A mailbox per connection would cost an idle member over a kilobyte.

#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "actors/backend.hpp"
#include "actors/messages.hpp"
#include "actors/room_table.hpp"
#include "core/rate_limiter.hpp"
#include "core/room_access.hpp"
#include "protocol/codec.hpp"
#include "actors/peer.hpp"

namespace troupe::core {
struct metrics;
}

namespace troupe::actors {

/// What every connection shares: set up once by the engine.
struct connection_services {
  caf::actor_system* system = nullptr;
  caf::actor directory;
  core::metrics* metrics = nullptr;
  protocol::decode_limits limits;
  std::uint32_t ping_seconds = 25;
  std::string node_id; ///< prefix of client ids, unique per engine start
  std::atomic<std::uint64_t>* next_client = nullptr;
  /// Told each connection's user once it has connected (the HTTP API's disconnect).
  std::function<void(actors::peer& peer, const std::string& user)> on_connected;
  std::string secret;             ///< HS256 key of tokens; empty: open (every room, no token)
  double rate = 100;              ///< requests per second per connection; 0: no budget
  std::size_t max_rooms = 128;    ///< rooms one connection may subscribe or open; 0: no limit
  backend* app_backend = nullptr; ///< --backend: RPC and webhooks; null: none
};

class connection {
public:
  /// Call on the peer's strand (peer.executor()): every method runs there.
  connection(const connection_services& services, actors::peer& peer, sink_ptr sink);
  /// Leaves every room and ends the actor.
  ~connection();

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// One binary frame from the client: one or more requests.
  void on_frame(std::string_view payload);

  /// The frames between begin_read() and end_read() arrived in one read from the socket:
  /// consecutive `op`s for one document across them go to it as one message (at
  /// end_read(), or before anything else the client sent after them), as if they had come
  /// in one frame. Without begin_read(), each frame's `op`s go at the end of the frame.
  void begin_read() noexcept { in_read_ = true; }
  void end_read();

  /// Has the client completed `connect`?
  bool connected() const noexcept { return connected_; }

  /// How the connection ended, before it is destroyed: a clean close handshake started by
  /// the client leaves presence at once; anything else after the grace period.
  void ended(bool clean) noexcept { clean_close_ = clean; }

private:
  using room_action = std::function<void(const room_handles&)>;
  struct room_link {
    room_handles actors;              ///< empty while acquiring
    std::vector<room_action> waiting; ///< run once acquired, in order
    bool subscribed = false;
    bool opened = false; ///< its document is open
  };

  void handle(protocol::connect_request& request);
  void handle(protocol::sub_request& request);
  void handle(protocol::unsub_request& request);
  void handle(protocol::pub_request& request);
  void handle(protocol::history_request& request);
  void handle(protocol::ping_request& request);
  void handle(protocol::presence_request& request);
  void handle(protocol::pset_request& request);
  void handle(protocol::typing_request& request);
  void handle(protocol::open_request& request);
  void handle(protocol::op_request& request);
  void handle(protocol::close_request& request);
  void handle(protocol::rpc_request& request);
  /// A backend call's outcome, back on the connection's strand.
  void on_rpc_done(protocol::request_id id, rpc_outcome& outcome);
  void fail(protocol::request_id id, protocol::error_code code, std::string_view reason);
  /// Sends this frame's answers so far, then closes with `code` (no reconnect).
  void close_now(std::uint16_t code, std::string_view reason);

  /// Answers `forbidden` unless the token allows reading (or writing) `room`.
  bool allowed(protocol::request_id id, const std::string& room, bool write);
  /// Answers `too_large` when taking `room` would hold more than max_rooms rooms.
  bool room_available(protocol::request_id id, const std::string& room);
  /// Closes with 4403 when the token's `exp` (seconds since the epoch) passes.
  void expire_at(std::int64_t exp);

  /// Runs `action` with the room's actor, acquiring it from the directory first if needed.
  /// Actions run in the order they were asked for.
  void with_room(const std::string& name, room_action action);
  /// Sends `Message{me(), request}` to the room's actor `to`, acquiring the room first.
  template <class Message, class Request>
  void forward(Request& request, caf::actor room_handles::*to);
  void on_acquired(const std::string& name, const room_handles& actors);
  /// After a request has been sent to a room: a room the connection neither subscribes nor
  /// holds open (and has nothing waiting for) is released, so the directory can evict it.
  void release_if_unused(const std::string& name);

  peer_ref me() const { return {client_, user_, name_, sink_, info_}; }

  /// Wraps `handler` (called as handler(connection&, args...)) so that it may be called
  /// from any thread: it runs on the connection's strand, and not at all once the
  /// connection is gone.
  template <class Handler>
  auto on_strand(Handler handler);

  const connection_services& services_;
  actors::peer& peer_;
  sink_ptr sink_;
  /// Points at this connection until it ends; what is posted back checks it on the strand.
  /// Made on first use.
  std::shared_ptr<connection*> alive_;
  std::unique_ptr<boost::asio::steady_timer> expiry_; ///< the token's `exp`, if it has one

  bool connected_ = false;
  bool closing_ = false;
  bool clean_close_ = false;
  std::uint8_t rpcs_in_flight_ = 0; ///< backend calls not answered yet (at most 16)
  std::string client_;
  std::string user_;
  std::string name_;
  std::string info_;         ///< the token's `info`, MessagePack
  core::room_access access_; ///< no room until `connect` says otherwise
  core::rate_limiter budget_;
  room_table<room_link> rooms_;

  protocol::frame_builder replies_; // this frame's own answers, sent as one frame
  // Consecutive `op`s of this frame (or read) for one room, sent to its document as one
  // message.
  std::vector<protocol::op_request> pending_ops_;
  bool in_read_ = false; ///< between begin_read() and end_read()
  void flush_ops();
};

} // namespace troupe::actors
