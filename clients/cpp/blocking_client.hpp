// A blocking face of Client for tests and command-line tools: every call waits (bounded)
// for its reply and throws ClientError on failure or timeout; pushes are queued for the
// caller to take. Runs its own I/O thread unless given an executor.
#pragma once

#include <utility>  // before Boost.Asio (Boost 1.74 with C++20)

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "clients/cpp/client.hpp"

namespace troupe::client {

class BlockingClient {
 public:
  using Duration = std::chrono::milliseconds;
  static constexpr Duration default_timeout{10'000};

  explicit BlockingClient(Options opts);                              // own I/O thread
  BlockingClient(boost::asio::any_io_executor ex, Options opts);      // shared io_context
  ~BlockingClient();

  // Starts the client and waits until it is connected.
  ConnectedInfo connect(Duration timeout = default_timeout);
  // Subscribes; the room's messages go to the message queue, its (re)subscriptions to the
  // subscription queue (the first one included).
  SubscribedEvent subscribe(const std::string& room, Duration timeout = default_timeout);
  void unsubscribe(const std::string& room, Duration timeout = default_timeout);
  Ack publish(const std::string& room, const Value& data, Duration timeout = default_timeout);
  Ack publish(const std::string& room, const Value& data, const std::string& key,
              Duration timeout = default_timeout);
  HistoryReply history(const std::string& room, std::uint64_t since, std::uint32_t limit = 0,
                       Duration timeout = default_timeout);
  void ping(Duration timeout = default_timeout);
  // Closes gracefully and waits for the end.
  void close(Duration timeout = default_timeout);

  // Delivered messages of every subscribed room, in delivery order.
  std::optional<Message> next_message(Duration timeout = default_timeout);
  // Exactly `n` more messages; throws ClientError(timeout) if they do not all come in time.
  std::vector<Message> take_messages(std::size_t n, Duration timeout = default_timeout);
  std::size_t queued_messages();
  std::optional<SubscribedEvent> next_subscribed(Duration timeout = default_timeout);
  std::optional<StateEvent> next_state(Duration timeout = default_timeout);
  // Skips state events until one with `state` arrives; throws on timeout.
  StateEvent wait_state(State state, Duration timeout = default_timeout);
  // Errors that belong to no request.
  std::vector<Error> errors();
  // Waits until an error with `code` that belongs to no request has arrived (at any time
  // since the start); returns it, or nullopt after the timeout.
  std::optional<Error> wait_error(const std::string& code, Duration timeout = default_timeout);

  // --- presence ----------------------------------------------------------------------------
  void set_state(const std::string& room, const Value& state, Duration timeout = default_timeout);
  void typing(const std::string& room, bool on) { client_->typing(room, on); }
  // One `presence` request (no subscription needed).
  PresenceSnapshot presence(const std::string& room, Duration timeout = default_timeout);
  // A copy of a subscribed room's presence view as of the last event (empty if none yet).
  PresenceSnapshot view(const std::string& room);
  // Waits until pred(view) holds; returns that view. Throws ClientError(timeout) with the last
  // view described if it does not come in time.
  PresenceSnapshot wait_view(const std::string& room, const std::function<bool(const PresenceSnapshot&)>& pred,
                             Duration timeout = default_timeout);
  // Presence events of every subscribed room, in order (`view` is null in the queued copies).
  std::optional<PresenceEvent> next_presence(Duration timeout = default_timeout);
  std::size_t queued_presence();
  // Typing events of every subscribed room, in order.
  std::optional<TypingEvent> next_typing(Duration timeout = default_timeout);
  void drop_next_pdiffs(const std::string& room, unsigned n = 1) { client_->drop_next_pdiffs(room, n); }

  void drop_connection(bool reconnect = true) { client_->drop_connection(reconnect); }
  void reconnect_now() { client_->reconnect_now(); }
  Client& async() { return *client_; }

 private:
  template <class T>
  std::optional<T> pop(std::deque<T>& q, Duration timeout);
  void init();

  std::unique_ptr<boost::asio::io_context> own_io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::unique_ptr<Client> client_;

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Message> messages_;
  std::deque<SubscribedEvent> subscribed_;
  std::deque<StateEvent> states_;
  std::vector<Error> errors_;
  std::deque<PresenceEvent> presence_;
  std::deque<TypingEvent> typing_;
  std::map<std::string, PresenceSnapshot> views_;
  State current_ = State::idle;
};

}  // namespace troupe::client
