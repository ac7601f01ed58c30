// The ordered, gap-free message stream of one subscribed room: tracks (seq, epoch), holds
// back pushes after a gap, asks for history since the last delivered seq, delivers every
// message exactly once in order, and resubscribes when the gap cannot be filled. Pure logic:
// it asks its Sink to do the I/O. A Sink must not call back into the stream from inside
// one of its methods.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "clients/cpp/types.hpp"

namespace troupe::client {

class RoomStream {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void deliver(const Message& m) = 0;
    virtual void subscribed(const SubscribedEvent& ev) = 0;
    virtual void fetch_history(const std::string& room, std::uint64_t since) = 0;
    // Unsubscribe and subscribe again on the current connection (with `since` if given).
    virtual void resubscribe(const std::string& room, const std::optional<Since>& since) = 0;
  };

  enum class Phase {
    idle,         // no connection, or not yet subscribed
    subscribing,  // `sub` sent, waiting for `subscribed`
    live,         // delivering pushes as they come
    fetching,     // a gap was seen: history requested, later pushes held back
  };

  RoomStream(std::string room, Sink& sink) : room_(std::move(room)), sink_(sink) {}

  // Returns the `since` for the `sub` about to be sent; the stream waits for its reply.
  std::optional<Since> begin_subscribe();
  void on_subscribed(SubscribedEvent ev);
  void on_push(Message m);
  void on_history(const HistoryReply& h);
  void on_history_failed();
  void on_connection_lost();

  Phase phase() const { return phase_; }
  const std::string& room() const { return room_; }
  bool has_position() const { return have_position_; }
  std::uint64_t last_seq() const { return last_; }
  const std::string& epoch() const { return epoch_; }
  std::size_t held() const { return held_.size(); }

 private:
  void deliver_next(const Message& m);
  void drain();
  void rebuild();

  std::string room_;
  Sink& sink_;
  Phase phase_ = Phase::idle;
  bool have_position_ = false;
  std::uint64_t last_ = 0;
  std::string epoch_;
  std::optional<Since> pending_since_;  // of the `sub` in flight
  bool rebuilding_ = false;             // the next `subscribed` is a rebuild
  std::map<std::uint64_t, Message> held_;
};

}  // namespace troupe::client
