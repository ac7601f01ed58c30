#pragma once
// The durable embedded store: one SQLite database in WAL mode, `troupe.db` in the data
// directory. Per room: its epoch, top seq and kept messages (with their idempotency keys);
// per document: a snapshot of its text and the operations since (with their keys).
// commit() writes many rooms' batches in one transaction; loads read through a connection
// of their own, so they do not wait for a commit in progress.

#include <cstdint>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "store/store.hpp"

struct sqlite3;

namespace troupe::store {

struct sqlite_settings {
  std::string directory = "troupe-data"; ///< created if missing
  bool full_sync = true; ///< synchronous=FULL (survives power loss) or NORMAL (a crash)
};

/// Why the store cannot be opened: the engine reports it and does not start.
class store_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class sqlite_store final : public room_store {
public:
  /// Opens (or creates) the database and checks it (schema version, PRAGMA quick_check).
  /// Throws store_error with a message naming the file and the cause when it is not a
  /// database, damaged, of an unknown schema, or cannot be read or written.
  explicit sqlite_store(const sqlite_settings& settings);
  ~sqlite_store() override;

  loaded<core::history_log> load_log(std::string_view room, std::size_t capacity) override;
  loaded<core::document_sequencer> load_document(std::string_view room,
                                                 std::size_t log_capacity) override;
  void keep_log(std::string_view, core::history_log) override {}
  void keep_document(std::string_view, core::document_sequencer) override {}
  bool durable() const noexcept override { return true; }
  std::string commit(const std::vector<room_writes>& batches) override;
  void expire_messages(std::uint64_t cutoff_ms) override;

  /// Operations in one row of the operations table at most (one author's consecutive
  /// operations of one commit): a load that starts inside a row reads the whole row.
  static constexpr std::size_t max_run_row = operation_run::max_ops;

  /// The database file.
  const std::string& path() const noexcept { return path_; }
  /// The epoch of rooms and documents first written to this database (kept in it).
  const std::string& epoch() const noexcept { return epoch_; }

private:
  struct statements;

  /// Takes `troupe.lock` in the directory, or throws: one engine per data directory.
  void lock(const std::string& directory);
  void open(const sqlite_settings& settings);
  void create_schema();
  /// Brings a database of an older schema version to this one, in one transaction.
  void migrate(long long from);
  void close() noexcept;
  /// Throws the store_error for a start-up failure with SQLite result code `rc`.
  [[noreturn]] void refuse(int rc, const std::string& why) const;
  /// One batch of commit(): an SQLite result code.
  int write_batch(const room_writes& batch);
  /// The test hook (TROUPE_TEST_COMMIT_STALL=FILE): a commit waits, its rows written and its
  /// COMMIT not yet run, while FILE exists (at most two minutes), as on a stalled disk.
  void test_stall() const;

  std::string path_;
  std::string epoch_;
  std::string stall_file_; // the test hook's file; empty: off
  int lock_fd_ = -1;
  sqlite3* writer_ = nullptr;         // commit() and expire_messages(): the storage actor
  std::unique_ptr<statements> write_; // prepared once
  std::mutex read_mutex_;             // loads come from several strands
  sqlite3* reader_ = nullptr;
  std::unique_ptr<statements> read_;
};

} // namespace troupe::store
