// The engine of one client: the connection's life (connect, `connect` handshake, reconnect
// with backoff), requests matched to replies by id, the subscribed rooms' streams, and push
// dispatch. Everything runs on one strand; the public `connection` posts into it.
#pragma once

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "clients/cpp/backoff.hpp"
#include "clients/cpp/options.hpp"
#include "clients/cpp/presence_view.hpp"
#include "clients/cpp/reply.hpp"
#include "clients/cpp/request_table.hpp"
#include "clients/cpp/result.hpp"
#include "clients/cpp/room_handlers.hpp"
#include "clients/cpp/room_stream.hpp"
#include "clients/cpp/types.hpp"
#include "clients/cpp/url.hpp"

namespace troupe::client {

class ws_connection;
struct close_info;

class session : public std::enable_shared_from_this<session>,
                private room_stream::sink,
                private presence_view::sink {
public:
  using strand_type = boost::asio::strand<boost::asio::any_io_executor>;
  using reply_handler = std::function<void(result<reply>)>;

  session(boost::asio::any_io_executor ex, connection_options opts);
  ~session() override;

  const strand_type& strand() const { return strand_; }
  const connection_options& options() const { return opts_; }
  // Any thread: a fresh request id.
  std::uint64_t new_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

  // --- everything below runs on the strand -----------------------------------------
  void start();
  void close();
  void drop_connection(bool reconnect);
  void reconnect_now();

  // Sends (or queues until connected) an encoded request with `id`. `resend`: the request
  // is idempotent and is sent again after a reconnect instead of failing with `disconnected`.
  void send_request(std::uint64_t id, std::string frame, reply_handler handler, bool resend);
  // Sends a map that expects no reply (e.g. `typing`), if connected.
  void send_oneway(std::string frame);

  void subscribe(std::string room, room_handlers handlers,
                 std::function<void(result<subscribed_event>)> done);
  void unsubscribe(std::string room, std::function<void(result<nothing>)> done);

  // Presence. For a subscribed room the state is remembered, sent once the subscription is
  // live, and set again after every resubscription; for another room the `pset` is sent as
  // is (and the engine answers not_subscribed).
  void set_presence_state(const std::string& room, value state,
                          std::function<void(result<nothing>)> done);
  void typing(const std::string& room, bool on);
  // Calls fn with the room's view, or nullptr if the room is not subscribed.
  void with_presence(const std::string& room, const std::function<void(const presence_view*)>& fn);
  // Test hook: the next `n` pdiffs of `room` are dropped before they reach its view.
  void drop_next_pdiffs(const std::string& room, unsigned n);

  void add_state_listener(std::function<void(const state_event&)> fn);
  void add_push_handler(std::string type, std::function<void(const reply&)> fn);
  void set_error_handler(std::function<void(const error&)> fn);
  void clear_handlers();

  connection_state state() const { return state_; }
  const connected_info& info() const { return info_; }
  std::optional<log_position> position(const std::string& room) const;

private:
  struct subscription {
    subscription(std::string name, room_stream::sink& sink, presence_view::sink& psink)
        : stream(name, sink), presence(std::move(name), psink) {}
    room_stream stream;
    presence_view presence;
    room_handlers handlers;
    std::function<void(result<subscribed_event>)> first_done;
    std::uint64_t sub_id = 0; // the `sub` in flight
    std::uint64_t token = 0;  // identifies this subscription (vs. a later one of the same room)
    // Presence state: the one wanted (set again after each resubscription), psets in flight,
    // and the callers waiting for the wanted state to be set.
    std::optional<value> wanted_state;
    std::optional<value> acked_state; // the last one the engine accepted
    unsigned psets_in_flight = 0;
    std::vector<std::function<void(result<nothing>)>> pset_waiters;
    // Typing: whether `on:true` was sent on this connection, and when last.
    bool typing_on = false;
    bool pset_stale = false; // resubscribed while a pset was in flight: send again after it
    std::chrono::steady_clock::time_point typing_sent{};
    unsigned drop_pdiffs = 0; // test hook
  };
  struct disconnect_note {
    std::uint16_t code = 0;
    std::string reason;
    std::optional<bool> reconnect;
  };

  // room_stream::sink
  void deliver(const message& m) override;
  void subscribed(const subscribed_event& ev) override;
  void fetch_history(const std::string& room, std::uint64_t since) override;
  void resubscribe(const std::string& room, const std::optional<log_position>& since) override;
  // presence_view::sink
  void presence_changed(const presence_event& ev) override;
  void typing_changed(const typing_event& ev) override;
  void fetch_presence(const std::string& room) override;

  void send_pset(subscription& room);
  void sync_state(subscription& room);
  void fail_room_waiters(subscription& room, const error& e);

  void connect_attempt();
  void on_open(std::uint64_t gen);
  void on_connected(std::uint64_t gen, result<reply> r);
  void on_frame(std::uint64_t gen, std::string_view bytes);
  void on_closed(std::uint64_t gen, const close_info& info);
  void dispatch(const reply& r);
  void send_sub(subscription& room, const std::optional<log_position>& since);
  void send_internal(std::string frame_type, std::uint64_t id, std::string frame, reply_handler h);
  void fail_connection(const std::string& why);
  void arm_sweep();
  void sweep();
  void set_state(state_event ev);
  void report_error(const error& e);
  void fail_requests(std::vector<request_table::entry> entries, const error& e);
  bool should_reconnect(std::uint16_t code) const;

  strand_type strand_;
  connection_options opts_;
  std::optional<parsed_url> url_;
  std::vector<parsed_url> fallbacks_; ///< the fallback URLs that parse
  std::size_t next_url_ = 0;          ///< which URL the next attempt uses: 0 is url_
  std::atomic<std::uint64_t> next_id_{1};

  std::shared_ptr<ws_connection> conn_;
  std::uint64_t gen_ = 0; // connection generation; handlers of older ones are ignored
  bool connected_ = false;
  connection_state state_ = connection_state::idle;
  connected_info info_;
  bool closing_ = false;
  bool hold_reconnect_ = false;
  std::optional<disconnect_note> disconnect_note_;
  std::optional<error> refusal_;

  backoff backoff_;
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer sweep_timer_;
  bool sweep_armed_ = false;

  request_table requests_;
  std::map<std::string, std::unique_ptr<subscription>> rooms_;
  std::uint64_t room_tokens_ = 0;

  std::vector<std::function<void(const state_event&)>> state_listeners_;
  std::unordered_map<std::string, std::function<void(const reply&)>> push_handlers_;
  std::function<void(const error&)> error_handler_;
};

} // namespace troupe::client
