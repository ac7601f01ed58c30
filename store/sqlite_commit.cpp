// The SQLite store's writes: commit() of many rooms' batches in one transaction, expiry.
#include "store/sqlite_store.hpp"

#include <unistd.h>

#include <chrono>
#include <thread>

#include "store/sqlite_access.hpp"
#include "store/sqlite_rows.hpp"

namespace troupe::store {

using namespace sqlite;

int sqlite_store::write_batch(const room_writes& batch) {
  auto& w = *write_;
  int rc = SQLITE_OK;
  for (const auto& message : batch.messages) {
    const std::string_view payload = message.frame ? message.frame->payload() : std::string_view{};
    rc = run(w.insert_message, batch.room, message.seq, message.ts, message.key, blob{payload});
    if (rc != SQLITE_OK) return rc;
  }
  // The room's row holds its top seq, which outlives its messages.
  if (!batch.messages.empty()) {
    rc = run(w.upsert_room, batch.room, batch.epoch, batch.messages.back().seq);
    if (rc != SQLITE_OK) return rc;
  }
  if (batch.keep_messages_from > 0) {
    rc = run(w.trim_messages, batch.room, batch.keep_messages_from);
    if (rc != SQLITE_OK) return rc;
  }

  if (!batch.writes_document()) return SQLITE_OK;
  rc = run(w.ensure_document, batch.room, batch.epoch);
  if (rc != SQLITE_OK) return rc;
  // One row per run of consecutive operations by one author (append_to_runs() keeps a run
  // within max_run_row): a row costs SQLite about as much as the operations' bytes, so a
  // replay at one operation per message would otherwise spend most of its commit on rows. A
  // lone operation keeps the row shape of schema 1 (its key in `key`, the operation in `op`).
  for (const auto& kept : batch.runs) {
    if (kept.count == 0) continue;
    if (kept.count == 1) {
      std::string_view key, op;
      if (!split_lone_entry(kept.entries, key, op)) return SQLITE_MISUSE;
      rc = run(w.insert_operation, batch.room, kept.last_rev, kept.user, key, blob{op},
               std::int64_t{1});
    } else {
      rc = run(w.insert_operation, batch.room, kept.last_rev, kept.user, std::string_view(),
               blob{kept.entries}, static_cast<std::int64_t>(kept.count));
    }
    if (rc != SQLITE_OK) return rc;
  }
  if (const auto& snapshot = batch.snapshot) {
    rc = run(w.write_snapshot, snapshot->rev, snapshot->text, batch.room);
    if (rc == SQLITE_OK && snapshot->keep_operations_from > 0)
      rc = run(w.trim_operations, batch.room, snapshot->keep_operations_from);
  }
  return rc;
}

std::string sqlite_store::commit(const std::vector<room_writes>& batches) {
  if (batches.empty()) return {};
  auto& w = *write_;
  int rc = run(w.begin);
  for (std::size_t i = 0; rc == SQLITE_OK && i < batches.size(); ++i)
    rc = write_batch(batches[i]);
  if (!stall_file_.empty()) test_stall();
  if (rc == SQLITE_OK) rc = run(w.commit);
  if (rc == SQLITE_OK) return {};
  // Read before the rollback replaces the connection's error.
  std::string why = (rc & 0xff) == SQLITE_FULL ? std::string("disk is full")
                                               : std::string(sqlite3_errmsg(writer_));
  // SQLITE_FULL and SQLITE_IOERR may have rolled back already.
  if (!sqlite3_get_autocommit(writer_)) run(w.rollback);
  return "the store could not write: " + why;
}

void sqlite_store::test_stall() const {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (::access(stall_file_.c_str(), F_OK) == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

void sqlite_store::expire_messages(std::uint64_t cutoff_ms) {
  // A failure leaves the rows for the next expiry; loads keep only a consecutive run anyway.
  run(write_->expire, cutoff_ms);
}

} // namespace troupe::store
