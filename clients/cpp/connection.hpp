// The Troupe client: one connection to the engine, kept up with reconnects, and the rooms
// it subscribes to, each delivered as an ordered, gap-free stream.
//
//   boost::asio::io_context io;
//   troupe::client::connection c(io.get_executor(), {.url = "ws://127.0.0.1:8080/ws", .user =
//   "alice"}); c.subscribe("lobby", {.on_message = [](const message& m) { … }}); c.start();
//   c.publish("lobby", value::from("hi"), [](result<ack> r) { … });
//   io.run();
//
// Many clients may share one io_context (and its threads): each runs on its own strand, and
// every callback of a client runs on that strand, one at a time. Every method may be called
// from any thread; it takes effect on the strand, in call order. After the destructor
// returns, no callback of this client runs any more.
#pragma once

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "clients/cpp/map_writer.hpp"
#include "clients/cpp/options.hpp"
#include "clients/cpp/presence_view.hpp"
#include "clients/cpp/reply.hpp"
#include "clients/cpp/result.hpp"
#include "clients/cpp/room_handlers.hpp"
#include "clients/cpp/types.hpp"
#include "clients/cpp/value.hpp"

namespace troupe::client {

class session;

class connection {
public:
  connection(boost::asio::any_io_executor ex, connection_options opts);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Connect and stay connected (reconnecting with backoff) until close().
  void start();
  // Close the connection gracefully and stop reconnecting. Requests in flight fail with `closed`.
  void close();

  // Subscribe to a room. `done` gets the first `subscribed` (or the refusal); later
  // resubscriptions after reconnects go to handlers.on_subscribed. Callable before start():
  // the room is subscribed once connected.
  void subscribe(std::string room, room_handlers handlers,
                 std::function<void(result<subscribed_event>)> done = {});
  void unsubscribe(std::string room, std::function<void(result<nothing>)> done = {});

  // Publish `data` to a room. With a `key` the publish is idempotent and survives reconnects
  // (it is sent again); without one, a publish in flight when the connection drops fails
  // with `disconnected` (it may or may not have been accepted).
  void publish(std::string room, const value& data, std::function<void(result<ack>)> done = {});
  void publish(std::string room, const value& data, std::string key,
               std::function<void(result<ack>)> done = {});
  // Kept messages with seq > since, oldest first, at most `limit` (0: the server's default).
  void history(std::string room, std::uint64_t since,
               std::function<void(result<history_reply>)> done, std::uint32_t limit = 0);
  // An application-level round trip (`ping` → `pong`).
  void ping(std::function<void(result<nothing>)> done);
  // Calls `method` (1..64 bytes of A-Z a-z 0-9 _ - : . @) of the application's backend (the
  // engine's --backend) with `data`: the reply's `data` (nil when none), or the contract's
  // error: the backend's own code, `unavailable` (backend down, failing or too slow),
  // `not_found` (no backend), `rate_limited` (16 calls in flight). Not resent after a
  // reconnect (a call may have taken effect): one in flight then fails with `disconnected`.
  void rpc(std::string method, const value& data, std::function<void(result<value>)> done);

  // --- presence and typing ---------------------------------------------------------------
  // Every subscribed room keeps a presence view (handlers.on_presence / on_typing tell its
  // changes; see presence_view.hpp). Set this connection's state in `room` (a map, at most
  // 1 KiB encoded). In a subscribed room the state is kept: it is sent once the subscription
  // is live and set again after every reconnect; `done` gets ok once the engine has it (or
  // the engine's refusal: too_large, …). In a room not subscribed the engine answers
  // not_subscribed.
  void set_state(std::string room, const value& state,
                 std::function<void(result<nothing>)> done = {});
  // Tell the others in `room` that this connection is (not) typing. Call typing(room, true)
  // as often as you like (e.g. on every keystroke): `on:true` goes out at most every
  // options.typing_refresh, keeping it from lapsing (the engine turns it off 6 s after the
  // last one); typing(room, false) goes out only after an `on`. Dropped unless connected.
  void typing(std::string room, bool on);
  // The presence of any room the token may read (no subscription needed): one `presence` request.
  void presence(std::string room, std::function<void(result<presence_snapshot>)> done);
  // Calls fn on the client's strand with the room's view (nullptr if not subscribed).
  void with_presence(std::string room, std::function<void(const presence_view*)> fn);

  // Listeners. Set them before start() to hear everything.
  void on_state(std::function<void(const state_event&)> fn);
  // Errors that belong to no request: server errors without an id, malformed frames.
  void on_error(std::function<void(const error&)> fn);

  // --- extension points (presence, documents, …) ---------------------------------------
  // A request of type `type`: `fields` adds everything but `t` and `id`. Sent when connected.
  void request(std::string_view type, const std::function<void(map_writer&)>& fields,
               std::function<void(result<reply>)> done, bool idempotent = false);
  // A map that expects no reply (e.g. `typing`); dropped unless connected.
  void send(std::string_view type, const std::function<void(map_writer&)>& fields);
  // Pushes of a type the client does not handle itself (`pdiff`, `typing`, `op`, …).
  void on_push(std::string type, std::function<void(const reply&)> fn);

  // --- test hooks ----------------------------------------------------------------------
  // Cut the TCP connection abruptly (RST, no close handshake). With reconnect=false the
  // client stays disconnected until reconnect_now().
  void drop_connection(bool reconnect = true);
  void reconnect_now();
  // The next `n` pdiffs of `room` are dropped before they reach its presence view, as if the
  // network had lost them (the view finds the hole with the diff after them).
  void drop_next_pdiffs(std::string room, unsigned n = 1);

  // The strand every callback runs on.
  boost::asio::any_io_executor executor() const;
  const connection_options& options() const;

private:
  struct guard;
  template <class... A>
  std::function<void(A...)> guarded(std::function<void(A...)> fn) const;
  template <class F>
  void post(F&& f);

  std::shared_ptr<session> s_;
  std::shared_ptr<guard> guard_;
};

} // namespace troupe::client
