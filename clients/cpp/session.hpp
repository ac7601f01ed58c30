// The engine of one client: the connection's life (connect, `connect` handshake, reconnect
// with backoff), requests matched to replies by id, the subscribed rooms' streams, and push
// dispatch. Everything runs on one strand; the public Client posts into it.
#pragma once

#include <utility>  // before Boost.Asio (Boost 1.74 with C++20)

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

class WsConnection;
struct CloseInfo;

class Session : public std::enable_shared_from_this<Session>,
                private RoomStream::Sink,
                private PresenceView::Sink {
 public:
  using Strand = boost::asio::strand<boost::asio::any_io_executor>;
  using ReplyHandler = std::function<void(Result<Reply>)>;

  Session(boost::asio::any_io_executor ex, Options opts);
  ~Session() override;

  const Strand& strand() const { return strand_; }
  const Options& options() const { return opts_; }
  // Any thread: a fresh request id.
  std::uint64_t new_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

  // --- everything below runs on the strand -----------------------------------------
  void start();
  void close();
  void drop_connection(bool reconnect);
  void reconnect_now();

  // Sends (or queues until connected) an encoded request with `id`. `resend`: the request
  // is idempotent and is sent again after a reconnect instead of failing with `disconnected`.
  void send_request(std::uint64_t id, std::string frame, ReplyHandler handler, bool resend);
  // Sends a map that expects no reply (e.g. `typing`), if connected.
  void send_oneway(std::string frame);

  void subscribe(std::string room, RoomHandlers handlers,
                 std::function<void(Result<SubscribedEvent>)> done);
  void unsubscribe(std::string room, std::function<void(Result<Done>)> done);

  // Presence. For a subscribed room the state is remembered, sent once the subscription is
  // live, and set again after every resubscription; for another room the `pset` is sent as
  // is (and the engine answers not_subscribed).
  void set_presence_state(const std::string& room, Value state, std::function<void(Result<Done>)> done);
  void typing(const std::string& room, bool on);
  // Calls fn with the room's view, or nullptr if the room is not subscribed.
  void with_presence(const std::string& room, const std::function<void(const PresenceView*)>& fn);
  // Test hook: the next `n` pdiffs of `room` are dropped before they reach its view.
  void drop_next_pdiffs(const std::string& room, unsigned n);

  void add_state_listener(std::function<void(const StateEvent&)> fn);
  void add_push_handler(std::string type, std::function<void(const Reply&)> fn);
  void set_error_handler(std::function<void(const Error&)> fn);
  void clear_handlers();

  State state() const { return state_; }
  const ConnectedInfo& info() const { return info_; }
  std::optional<Since> position(const std::string& room) const;

 private:
  struct Room {
    Room(std::string name, RoomStream::Sink& sink, PresenceView::Sink& psink)
        : stream(name, sink), presence(std::move(name), psink) {}
    RoomStream stream;
    PresenceView presence;
    RoomHandlers handlers;
    std::function<void(Result<SubscribedEvent>)> first_done;
    std::uint64_t sub_id = 0;  // the `sub` in flight
    std::uint64_t token = 0;   // identifies this subscription (vs. a later one of the same room)
    // Presence state: the one wanted (set again after each resubscription), psets in flight,
    // and the callers waiting for the wanted state to be set.
    std::optional<Value> wanted_state;
    std::optional<Value> acked_state;  // the last one the engine accepted
    unsigned psets_in_flight = 0;
    std::vector<std::function<void(Result<Done>)>> pset_waiters;
    // Typing: whether `on:true` was sent on this connection, and when last.
    bool typing_on = false;
    bool pset_stale = false;  // resubscribed while a pset was in flight: send again after it
    std::chrono::steady_clock::time_point typing_sent{};
    unsigned drop_pdiffs = 0;  // test hook
  };
  struct DisconnectNote {
    std::uint16_t code = 0;
    std::string reason;
    std::optional<bool> reconnect;
  };

  // RoomStream::Sink
  void deliver(const Message& m) override;
  void subscribed(const SubscribedEvent& ev) override;
  void fetch_history(const std::string& room, std::uint64_t since) override;
  void resubscribe(const std::string& room, const std::optional<Since>& since) override;
  // PresenceView::Sink
  void presence_changed(const PresenceEvent& ev) override;
  void typing_changed(const TypingEvent& ev) override;
  void fetch_presence(const std::string& room) override;

  void send_pset(Room& room);
  void sync_state(Room& room);
  void fail_room_waiters(Room& room, const Error& e);

  void connect_attempt();
  void on_open(std::uint64_t gen);
  void on_connected(std::uint64_t gen, Result<Reply> r);
  void on_frame(std::uint64_t gen, std::string_view bytes);
  void on_closed(std::uint64_t gen, const CloseInfo& info);
  void dispatch(const Reply& r);
  void send_sub(Room& room, const std::optional<Since>& since);
  void send_internal(std::string frame_type, std::uint64_t id, std::string frame, ReplyHandler h);
  void fail_connection(const std::string& why);
  void arm_sweep();
  void sweep();
  void set_state(StateEvent ev);
  void report_error(const Error& e);
  void fail_requests(std::vector<RequestTable::Entry> entries, const Error& e);
  bool should_reconnect(std::uint16_t code) const;

  Strand strand_;
  Options opts_;
  std::optional<Url> url_;
  std::atomic<std::uint64_t> next_id_{1};

  std::shared_ptr<WsConnection> conn_;
  std::uint64_t gen_ = 0;  // connection generation; handlers of older ones are ignored
  bool connected_ = false;
  State state_ = State::idle;
  ConnectedInfo info_;
  bool closing_ = false;
  bool hold_reconnect_ = false;
  std::optional<DisconnectNote> disconnect_note_;
  std::optional<Error> refusal_;

  Backoff backoff_;
  boost::asio::steady_timer reconnect_timer_;
  boost::asio::steady_timer sweep_timer_;
  bool sweep_armed_ = false;

  RequestTable requests_;
  std::map<std::string, std::unique_ptr<Room>> rooms_;
  std::uint64_t room_tokens_ = 0;

  std::vector<std::function<void(const StateEvent&)>> state_listeners_;
  std::unordered_map<std::string, std::function<void(const Reply&)>> push_handlers_;
  std::function<void(const Error&)> error_handler_;
};

}  // namespace troupe::client
