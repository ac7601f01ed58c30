// A blocking face of `connection` for tests and command-line tools: every call waits (bounded)
// for its reply and throws client_error on failure or timeout; pushes are queued for the
// caller to take. Runs its own I/O thread unless given an executor.
#pragma once

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

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

#include "clients/cpp/connection.hpp"

namespace troupe::client {

class blocking_connection {
public:
  using duration = std::chrono::milliseconds;
  static constexpr duration default_timeout{10'000};

  explicit blocking_connection(connection_options opts); // own I/O thread
  blocking_connection(boost::asio::any_io_executor ex,
                      connection_options opts); // shared io_context
  ~blocking_connection();

  // Starts the client and waits until it is connected.
  connected_info connect(duration timeout = default_timeout);
  // Subscribes; the room's messages go to the message queue, its (re)subscriptions to the
  // subscription queue (the first one included).
  subscribed_event subscribe(const std::string& room, duration timeout = default_timeout);
  void unsubscribe(const std::string& room, duration timeout = default_timeout);
  ack publish(const std::string& room, const value& data, duration timeout = default_timeout);
  ack publish(const std::string& room, const value& data, const std::string& key,
              duration timeout = default_timeout);
  history_reply history(const std::string& room, std::uint64_t since, std::uint32_t limit = 0,
                        duration timeout = default_timeout);
  void ping(duration timeout = default_timeout);
  // The backend's reply data (nil when none); throws client_error with the contract's code.
  value rpc(const std::string& method, const value& data, duration timeout = default_timeout);
  // Closes gracefully and waits for the end.
  void close(duration timeout = default_timeout);

  // Delivered messages of every subscribed room, in delivery order.
  std::optional<message> next_message(duration timeout = default_timeout);
  // Exactly `n` more messages; throws client_error(timeout) if they do not all come in time.
  std::vector<message> take_messages(std::size_t n, duration timeout = default_timeout);
  std::size_t queued_messages();
  std::optional<subscribed_event> next_subscribed(duration timeout = default_timeout);
  std::optional<state_event> next_state(duration timeout = default_timeout);
  // Skips state events until one with `state` arrives; throws on timeout.
  state_event wait_state(connection_state state, duration timeout = default_timeout);
  // Errors that belong to no request.
  std::vector<error> errors();
  // Waits until an error with `code` that belongs to no request has arrived (at any time
  // since the start); returns it, or nullopt after the timeout.
  std::optional<error> wait_error(const std::string& code, duration timeout = default_timeout);

  // --- presence ----------------------------------------------------------------------------
  void set_state(const std::string& room, const value& state, duration timeout = default_timeout);
  void typing(const std::string& room, bool on) { client_->typing(room, on); }
  // One `presence` request (no subscription needed).
  presence_snapshot presence(const std::string& room, duration timeout = default_timeout);
  // A copy of a subscribed room's presence view as of the last event (empty if none yet).
  presence_snapshot view(const std::string& room);
  // Waits until pred(view) holds; returns that view. Throws client_error(timeout) with the last
  // view described if it does not come in time.
  presence_snapshot wait_view(const std::string& room,
                              const std::function<bool(const presence_snapshot&)>& pred,
                              duration timeout = default_timeout);
  // Presence events of every subscribed room, in order (`view` is null in the queued copies).
  std::optional<presence_event> next_presence(duration timeout = default_timeout);
  std::size_t queued_presence();
  // Typing events of every subscribed room, in order.
  std::optional<typing_event> next_typing(duration timeout = default_timeout);
  void drop_next_pdiffs(const std::string& room, unsigned n = 1) {
    client_->drop_next_pdiffs(room, n);
  }

  void drop_connection(bool reconnect = true) { client_->drop_connection(reconnect); }
  void reconnect_now() { client_->reconnect_now(); }
  connection& async() { return *client_; }

private:
  template <class T>
  std::optional<T> pop(std::deque<T>& q, duration timeout);
  void init();
  // Takes state events, oldest first, until one matches (returned); throws `timeout` with `what`.
  state_event take_states_until(const std::function<bool(const state_event&)>& pred,
                                duration timeout, const std::string& what);

  std::unique_ptr<boost::asio::io_context> own_io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::unique_ptr<connection> client_;

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<message> messages_;
  std::deque<subscribed_event> subscribed_;
  std::deque<state_event> states_;
  std::vector<error> errors_;
  std::deque<presence_event> presence_;
  std::deque<typing_event> typing_;
  std::map<std::string, presence_snapshot> views_;
  connection_state current_ = connection_state::idle;
};

} // namespace troupe::client
