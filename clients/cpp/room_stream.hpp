// The ordered, gap-free message stream of one subscribed room: tracks (seq, epoch), holds
// back pushes after a gap, asks for history since the last delivered seq, delivers every
// message exactly once in order, and resubscribes when the gap cannot be filled. Pure logic:
// it asks its `sink` to do the I/O. A `sink` must not call back into the stream from inside
// one of its methods.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "clients/cpp/types.hpp"

namespace troupe::client {

class room_stream {
public:
  class sink {
  public:
    virtual ~sink() = default;
    virtual void deliver(const message& m) = 0;
    virtual void subscribed(const subscribed_event& ev) = 0;
    virtual void fetch_history(const std::string& room, std::uint64_t since) = 0;
    // Unsubscribe and subscribe again on the current connection (with `since` if given).
    virtual void resubscribe(const std::string& room, const std::optional<log_position>& since) = 0;
  };

  enum class phase_kind {
    idle,        // no connection, or not yet subscribed
    subscribing, // `sub` sent, waiting for `subscribed`
    live,        // delivering pushes as they come
    fetching,    // a gap was seen: history requested, later pushes held back
  };

  room_stream(std::string room, sink& sink) : room_(std::move(room)), sink_(sink) {}

  // Returns the `since` for the `sub` about to be sent; the stream waits for its reply.
  std::optional<log_position> begin_subscribe();
  void on_subscribed(subscribed_event ev);
  void on_push(message m);
  void on_history(const history_reply& h);
  void on_history_failed();
  void on_connection_lost();

  phase_kind phase() const { return phase_; }
  const std::string& room() const { return room_; }
  bool has_position() const { return have_position_; }
  std::uint64_t last_seq() const { return last_; }
  const std::string& epoch() const { return epoch_; }
  std::size_t held() const { return held_.size(); }

private:
  void deliver_next(const message& m);
  void drain();
  void rebuild();

  std::string room_;
  sink& sink_;
  phase_kind phase_ = phase_kind::idle;
  bool have_position_ = false;
  std::uint64_t last_ = 0;
  std::string epoch_;
  std::optional<log_position> pending_since_; // of the `sub` in flight
  bool rebuilding_ = false;                   // the next `subscribed` is a rebuild
  std::map<std::uint64_t, message> held_;
};

} // namespace troupe::client
