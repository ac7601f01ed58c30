#pragma once
// One room's deliveries at one cluster node: pub/sub hands messages over in any order, with
// losses (a dropped subscription) and repeats; this puts them back into seq order with no
// hole and no duplicate, asking for reads of the room's stream to fill holes. Pure logic:
// no I/O, no clock; the caller feeds it what pub/sub and Redis said and carries out what it
// answers. Single writer (the room's strand).
//
// States: unseeded (after construction or a reset: pub/sub messages wait in the buffer until
// seed(), which applies the sub-time rule) and seeded (epoch + next expected seq).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.hpp"

namespace troupe::core {

/// One message of the room: its seq and what to deliver (the `msg` push, built once).
struct sequenced_message {
  std::uint64_t seq = 0;
  protocol::frame_ptr payload;
};

/// A read of the room's stream to ask for: the entries with seq in [from, to], together with
/// the room's epoch and top seq read atomically with them (MULTI, or one script).
struct repair_request {
  std::uint64_t ticket = 0; ///< to hand back with the answer; a stale answer is ignored
  std::uint64_t from = 0;
  std::uint64_t to = 0;
};

/// The answer to a repair_request.
struct stream_read {
  std::string epoch;     ///< the room's epoch at the read; empty when the meta is gone
  std::uint64_t top = 0; ///< the room's top seq at the read
  std::vector<sequenced_message> entries; ///< ascending; those the stream still holds
};

enum class reset_reason {
  none,
  epoch_changed, ///< the room's log was lost and restarted (or the meta is gone)
  history_lost,  ///< a hole the stream no longer holds (trimmed past it)
};

/// What the caller must do after one input, in this order: deliver, then (if reset) tell
/// the room's clients recovered:false / close them with 4500 and seed again, then issue the
/// repair read (never set together with a reset).
struct delivery_actions {
  std::vector<sequenced_message> deliver; ///< consecutive seqs, ascending
  std::optional<repair_request> repair;   ///< at most one read is in flight at a time
  std::size_t dropped = 0;                ///< duplicates dropped by this input
  reset_reason reset = reset_reason::none;
};

class ordered_delivery {
public:
  struct limits {
    /// Messages ahead of the next expected one kept while a hole is repaired. Past it the
    /// highest seqs are dropped (not lost: they are above a known top, so the repairs read
    /// them back from the stream); the lowest are kept because they are delivered first.
    std::size_t reorder = 256;
    /// Seqs asked for by one repair read: bounds the reply and the memory of one answer.
    std::size_t repair_batch = 128;
  };

  ordered_delivery() : ordered_delivery(limits{}) {}
  explicit ordered_delivery(limits l);

  /// The sub-time rule: the node subscribed to the channel first, then read the room's
  /// epoch and top seq (and its history, handed to the subscriber by the caller). Every
  /// message up to `top` counts as delivered; pub/sub messages at or below it that were
  /// buffered (or come later) are dropped, those above it are delivered in order. An empty
  /// `epoch` (a room with no log yet: top 0) adopts the first epoch the room then shows.
  delivery_actions seed(std::string epoch, std::uint64_t top);

  /// A message from the room's channel.
  delivery_actions on_message(std::uint64_t seq, std::string_view epoch,
                              protocol::frame_ptr payload);

  /// The answer to the repair read `ticket`. Entries fill the hole; a hole the stream no
  /// longer holds (its entry missing though seq <= top) resets with history_lost.
  delivery_actions on_repair(std::uint64_t ticket, stream_read read);

  /// The periodic check of the room's top seq (and epoch; empty when the meta is gone): finds
  /// a lost tail that no later message would reveal.
  delivery_actions on_top(std::string_view epoch, std::uint64_t top);

  /// The repair read `ticket` got no answer (Redis unreachable): the hole stays, and the
  /// next on_top() or on_resubscribed() asks for it again.
  void on_repair_failed(std::uint64_t ticket);

  /// The node's subscription was re-established: anything after the last delivered seq may
  /// have been missed, so the stream is read from there (its answer tells the top).
  delivery_actions on_resubscribed();

  bool seeded() const noexcept { return seeded_; }
  const std::string& epoch() const noexcept { return epoch_; }
  /// The seq of the last message delivered (or counted as delivered by seed()).
  std::uint64_t last_delivered() const noexcept { return next_ - 1; }
  /// The highest seq known to exist (from messages, top checks and reads).
  std::uint64_t known_top() const noexcept { return known_top_; }
  std::size_t buffered() const noexcept { return buffer_.size(); }
  bool repair_in_flight() const noexcept { return in_flight_.has_value(); }

private:
  bool accept_epoch(std::string_view epoch);
  void buffer(std::uint64_t seq, protocol::frame_ptr payload, delivery_actions& out);
  void drain(delivery_actions& out);
  void request_repair(delivery_actions& out);
  void reset(reset_reason why, delivery_actions& out);

  limits limits_;
  bool seeded_ = false;
  std::string epoch_; ///< seeded: the room's; unseeded: the buffered messages'
  std::uint64_t next_ = 1;
  std::uint64_t known_top_ = 0;
  std::map<std::uint64_t, protocol::frame_ptr> buffer_; ///< seqs above next_
  std::optional<repair_request> in_flight_;
  std::uint64_t tickets_ = 0;
  bool resync_ = false; ///< a read must be issued after the last resubscription
};

} // namespace troupe::core
