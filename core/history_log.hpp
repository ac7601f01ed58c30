#pragma once
// A room's message log: the newest `capacity` messages, the top sequence number and the
// epoch, and the idempotency keys of the kept messages. Plain class, single writer (the
// room actor).

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "protocol/frame.hpp"

namespace troupe::core {

struct stored_message {
  std::uint64_t seq = 0;
  std::string key;           ///< idempotency key, empty if none
  protocol::frame_ptr frame; ///< the `msg` push, as sent; its payload is the stored map
  std::uint64_t ts = 0;      ///< when it was published, ms since the Unix epoch
};

class history_log {
public:
  history_log(std::size_t capacity, std::string epoch, std::uint64_t top_seq = 0);

  /// The newest sequence number handed out (0 before the first message). It outlives the
  /// messages themselves.
  std::uint64_t seq() const noexcept { return top_seq_; }
  const std::string& epoch() const noexcept { return epoch_; }
  std::size_t size() const noexcept { return messages_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }

  /// The sequence number of a kept message published with `key`.
  std::optional<std::uint64_t> find_key(std::string_view key) const;

  /// Appends the message with sequence number seq() + 1 and evicts the oldest beyond
  /// the capacity. `message.seq` must be seq() + 1.
  void append(stored_message message);

  /// Forgets the oldest messages published before `cutoff_ms` (retention by age); seq and
  /// epoch stay.
  void expire(std::uint64_t cutoff_ms);

  /// The oldest kept seq (seq() + 1 when none is kept): what a durable store must keep.
  std::uint64_t first_kept() const noexcept {
    return messages_.empty() ? top_seq_ + 1 : messages_.front().seq;
  }

  /// True when every message after `since` is still kept (also when there is none).
  bool covers(std::uint64_t since) const noexcept;

  /// Payloads of the kept messages with seq > since, oldest first, at most `limit`.
  std::vector<std::string_view> after(std::uint64_t since, std::size_t limit) const;

  /// Payloads of the newest `count` kept messages, oldest first.
  std::vector<std::string_view> newest(std::size_t count) const;

  const std::deque<stored_message>& messages() const noexcept { return messages_; }

private:
  void pop_oldest();

  std::size_t capacity_;
  std::string epoch_;
  std::uint64_t top_seq_;
  std::deque<stored_message> messages_;
  std::unordered_map<std::string, std::uint64_t> keys_;
};

/// The clock of messages' `ts`: ms since the Unix epoch.
std::uint64_t now_ms();

/// A fresh random epoch: 16 hex digits.
std::string new_epoch();

} // namespace troupe::core
