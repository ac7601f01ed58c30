#pragma once
// Where rooms keep their state. A room's actors load their message log and document when
// they start and hand them back when they end; in between, a durable store is sent every
// message and operation, grouped into one transaction per commit, and nothing is
// acknowledged until its commit has returned. The memory store keeps state for the
// process's life only (a restarted engine hands out new epochs); the SQLite store keeps it
// on disk (store/sqlite_store.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/document_sequencer.hpp"
#include "core/history_log.hpp"

namespace troupe::store {

/// A state read from the store, or why it could not be read. A room whose state cannot be
/// read is refused, never started empty: an empty one would overwrite the real one.
template <class State>
struct loaded {
  std::optional<State> state; ///< set on success
  std::string error;          ///< set on failure

  bool ok() const noexcept { return state.has_value(); }
};

/// The text of a document at revision `rev`: written every so often, so a restart replays
/// only the operations since.
struct document_snapshot {
  std::uint64_t rev = 0;
  std::string text;
  /// Operations with a revision below this are no longer needed (compaction): the snapshot
  /// and the kept log (--doc-log) start after them.
  std::uint64_t keep_operations_from = 0;
};

/// Consecutive operations of one author already in the form a durable store keeps them, so
/// that the document actor hands over bytes instead of a copy of each operation (and the
/// storage thread frees one string instead of each copy). append_to_runs() fills them.
struct operation_run {
  static constexpr std::size_t max_ops = 256; ///< operations per run at most
  std::uint64_t last_rev = 0;
  std::size_t count = 0;
  std::string user;
  /// Per operation, in order: its idempotency key (a MessagePack string), then the operation
  /// (a MessagePack array, with its trailing retain).
  std::string entries;
};
/// Appends `accepted` to `runs`: to the last run when it is the same author's, ends at the
/// revision before and has room; else as a new run.
void append_to_runs(std::vector<operation_run>& runs, const core::logged_operation& accepted);

/// What one room's actor sends to be made durable, in order. A room's log writes messages,
/// its document writes operations and, after them, sometimes a snapshot.
struct room_writes {
  std::string room;
  std::string epoch;
  std::vector<core::stored_message> messages; ///< consecutive seqs
  std::uint64_t keep_messages_from = 0;       ///< retention by count: older messages may go
  std::optional<document_snapshot> snapshot;  ///< the text after `runs`
  /// Consecutive revs, as applied, in runs (append_to_runs() makes them).
  std::vector<operation_run> runs;

  bool writes_document() const noexcept { return !runs.empty() || snapshot.has_value(); }
  std::size_t operation_count() const noexcept {
    std::size_t n = 0;
    for (const auto& run : runs)
      n += run.count;
    return n;
  }
};

class room_store {
public:
  virtual ~room_store() = default;

  /// The log of `room`: as kept, or a new one at seq 0 for a room never written.
  /// `capacity` is the number of messages kept (--history).
  virtual loaded<core::history_log> load_log(std::string_view room, std::size_t capacity) = 0;

  /// The document of `room`: as kept, or a new empty one at rev 0. `log_capacity` is the
  /// number of operations kept (--doc-log).
  virtual loaded<core::document_sequencer> load_document(std::string_view room,
                                                         std::size_t log_capacity) = 0;

  /// The room's actor ends: the memory store keeps its state until loaded again; a durable
  /// store has it already and drops it, so an idle room costs no memory.
  virtual void keep_log(std::string_view room, core::history_log log) = 0;
  virtual void keep_document(std::string_view room, core::document_sequencer document) = 0;

  /// True when writes must go through commit() before they are acknowledged.
  virtual bool durable() const noexcept = 0;

  /// Makes `batches` durable in one transaction, in order; blocks until it is. Returns
  /// empty on success, else why nothing was written (the transaction was rolled back).
  /// Called only by the storage actor, one call at a time.
  virtual std::string commit(const std::vector<room_writes>& batches) = 0;

  /// Deletes kept messages published before `cutoff_ms` (ms since the Unix epoch):
  /// retention by age. Called only by the storage actor.
  virtual void expire_messages(std::uint64_t cutoff_ms) = 0;
};

} // namespace troupe::store
