#pragma once
// A room's text document: the text, its revision, its epoch, and the log of recent
// operations with their authors and idempotency keys. Plain class, single writer (the
// document actor): it is the one sequencer, so an operation made against an older revision
// is transformed over every operation accepted since then, one at a time, and applied.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ot/rope.hpp"
#include "ot/text_operation.hpp"

namespace troupe::core {

struct logged_operation {
  std::uint64_t rev = 0; ///< the revision this operation produced
  ot::operation op;      ///< as applied (transformed)
  std::string user;
  std::string key;
};

class document_sequencer {
public:
  /// A new, empty document at revision 0. `log_capacity`: operations kept (at least 1).
  document_sequencer(std::size_t log_capacity, std::string epoch);
  /// A document restored from its text at `rev` (the log starts empty there).
  document_sequencer(std::size_t log_capacity, std::string epoch, std::uint64_t rev,
                     std::string_view text);
  /// A document restored from a snapshot: its text at `rev`, and the kept operations that
  /// led up to it (consecutive revisions ending at `rev`; fewer than the capacity is fine).
  document_sequencer(std::size_t log_capacity, std::string epoch, std::uint64_t rev,
                     std::string_view text, std::vector<logged_operation> history);
  // Movable only: the log and its key index are large, and are never meant to be copied.
  document_sequencer(document_sequencer&&) noexcept = default;
  document_sequencer& operator=(document_sequencer&&) noexcept = default;
  document_sequencer(const document_sequencer&) = delete;
  document_sequencer& operator=(const document_sequencer&) = delete;

  std::uint64_t rev() const noexcept { return rev_; }
  const std::string& epoch() const noexcept { return epoch_; }
  const ot::rope& text() const noexcept { return text_; }
  std::size_t log_capacity() const noexcept { return capacity_; }
  const std::deque<logged_operation>& log() const noexcept { return log_; }

  enum class outcome : std::uint8_t {
    applied,   ///< accepted as revision `rev`
    duplicate, ///< its key was accepted before, as revision `rev`; nothing changed
    conflict,  ///< made against a revision older than the kept log
    invalid,   ///< a revision not reached yet, or an operation that does not fit
  };
  struct submit_result {
    outcome kind = outcome::invalid;
    std::uint64_t rev = 0;
    const logged_operation* accepted = nullptr; ///< when applied: the log's entry
    std::string reason;                         ///< when refused
  };

  /// Sequences `op`, made against `base_rev`, by `user` with idempotency key `key` (may be
  /// empty: then it is not deduplicated).
  submit_result submit(std::uint64_t base_rev, ot::operation op, std::string_view key,
                       std::string_view user);

  /// What submit() would decide, changing nothing: on outcome::applied, `op` has been
  /// transformed up to rev() and fits the text, and `rev` is the revision it would get. A
  /// cluster node prepares an operation this way and commits it elsewhere (in Redis).
  submit_result prepare(std::uint64_t base_rev, ot::operation& op, std::string_view key) const;

  /// Applies an operation already sequenced as revision rev() + 1 (a kept one, replayed
  /// after a snapshot). False, changing nothing, when its revision is not the next one or
  /// it does not fit the text: the kept document is damaged.
  bool replay(logged_operation accepted);

  /// True when the log holds every operation after `since` (also when there is none).
  bool covers(std::uint64_t since) const noexcept;
  /// The kept operations that produced revisions above `since`, oldest first. Call only
  /// when covers(since).
  std::vector<const logged_operation*> after(std::uint64_t since) const;

private:
  void log_accepted(logged_operation accepted);

  // The idempotency keys of the kept operations, as an open-addressing table: linear probing
  // over a power of two of slots, each holding a key's hash and the revision of its
  // operation, whose log entry has the key itself. std::unordered_map cost about 40 ns per
  // find, erase and insert here (a node per key, a division per probed node), three per
  // operation: the largest part of sequencing one. This costs one hash and about one probe,
  // and grows with the log (a large --doc-log costs nothing up front).
  struct key_slot {
    std::uint64_t hash = 0;
    std::uint64_t rev = 0; ///< 0: empty (operations produce revisions from 1)
  };
  /// The slot holding `key` (hashed as `hash`), or the empty slot where it would go. Call
  /// only with a table (keys_ not empty).
  std::size_t find_slot(std::string_view key, std::uint64_t hash) const noexcept;
  /// The revision of the kept operation with `key`, or 0.
  std::uint64_t find_key(std::string_view key) const noexcept;
  void index_key(std::string_view key, std::uint64_t rev);
  void unindex_key(std::string_view key);

  std::size_t capacity_;
  std::string epoch_;
  std::uint64_t rev_ = 0;
  ot::rope text_;
  std::deque<logged_operation> log_;
  std::vector<key_slot> keys_; ///< a power of two of slots, at most half of them used; grows
  std::size_t indexed_ = 0;    ///< keys in keys_
};

} // namespace troupe::core
