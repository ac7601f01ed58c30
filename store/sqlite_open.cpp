// The SQLite store's life: the data directory's lock, opening and checking the database,
// creating its schema, preparing the statements, closing.
#include "store/sqlite_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "store/sqlite_access.hpp"

namespace troupe::store {

using namespace sqlite;

namespace {

// 1: one row per operation. 2: a row of `operations` holds `ops` consecutive operations of
// one author, `rev` being the last one's (a lone operation's row is schema 1's row; several
// keep their keys in `op`, see sqlite_rows.hpp). A schema 1 database is migrated when opened:
// its rows are lone operations (`ops` 1).
constexpr int schema_version = 2;

// WITHOUT ROWID with (room, seq|rev) keys: a room's rows are contiguous, so loading the
// newest ones and deleting the oldest are range scans. Documents keep a rowid: their text
// can be large, and WITHOUT ROWID suits small rows.
constexpr const char* schema_sql = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE rooms(room TEXT PRIMARY KEY, epoch TEXT NOT NULL, seq INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE TABLE messages(room TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,
  key TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY(room, seq)) WITHOUT ROWID;
CREATE INDEX messages_by_ts ON messages(ts);
CREATE TABLE documents(room TEXT PRIMARY KEY, epoch TEXT NOT NULL, rev INTEGER NOT NULL,
  text TEXT NOT NULL);
CREATE TABLE operations(room TEXT NOT NULL, rev INTEGER NOT NULL, user TEXT NOT NULL,
  key TEXT NOT NULL, op BLOB NOT NULL, ops INTEGER NOT NULL DEFAULT 1, PRIMARY KEY(room, rev))
  WITHOUT ROWID;
)sql";

} // namespace

sqlite_store::sqlite_store(const sqlite_settings& settings) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(settings.directory, ec);
  if (ec)
    throw store_error("the data directory " + settings.directory +
                      " cannot be created: " + ec.message());
  path_ = (fs::path(settings.directory) / "troupe.db").string();
  lock(settings.directory);
  try {
    open(settings);
  } catch (...) {
    close();
    throw;
  }
  // A test hook, never for production: it makes commits stall (docs/storage.md, "A stalled
  // disk"). Said loudly, so that nobody runs with it unknowingly.
  if (const char* file = std::getenv("TROUPE_TEST_COMMIT_STALL"); file && *file) {
    stall_file_ = file;
    std::cerr << "troupe: store: TEST HOOK TROUPE_TEST_COMMIT_STALL is set: every commit waits "
                 "while "
              << stall_file_ << " exists" << std::endl;
  }
}

sqlite_store::~sqlite_store() { close(); }

void sqlite_store::close() noexcept {
  read_.reset();
  write_.reset();
  sqlite3_close_v2(reader_);
  sqlite3_close_v2(writer_);
  reader_ = writer_ = nullptr;
  if (lock_fd_ >= 0) ::close(lock_fd_); // releases the lock
  lock_fd_ = -1;
}

void sqlite_store::lock(const std::string& directory) {
  // Two engines on one directory would hand out the same seqs twice; the second refuses to
  // start. flock is released by the kernel when the process dies, kill -9 included.
  const std::string lock_path = (std::filesystem::path(directory) / "troupe.lock").string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    throw store_error("the data directory " + directory + " cannot be used: " + lock_path + ": " +
                      std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw store_error("the data directory " + directory +
                      (error == EWOULDBLOCK
                           ? " is in use by another engine"
                           : " cannot be locked: " + std::string(std::strerror(error))));
  }
}

void sqlite_store::refuse(int rc, const std::string& why) const {
  std::string advice;
  switch (rc & 0xff) {
  case SQLITE_NOTADB:
  case SQLITE_CORRUPT:
    advice = "; restore it from a backup or move it away";
    break;
  case SQLITE_OK: // `why` says what to do
    break;
  default:
    advice = "; check that it is a file the engine can read and write, on a disk with room";
  }
  throw store_error("the store " + path_ + " cannot be used: " + why + advice);
}

void sqlite_store::open(const sqlite_settings& settings) {
  constexpr int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  auto connect = [&](sqlite3*& db) {
    const int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) refuse(rc, error_text(db, rc));
    sqlite3_extended_result_codes(db, 1);
    // Waits out a checkpoint or another process's lock rather than failing at once.
    sqlite3_busy_timeout(db, 5000);
  };
  auto exec = [&](sqlite3* db, const char* sql) {
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) refuse(rc, error_text(db, rc));
  };
  auto rows = [&](sqlite3* db, const char* sql) {
    int rc = SQLITE_OK;
    auto result = column(db, sql, rc);
    if (rc != SQLITE_OK) refuse(rc, error_text(db, rc));
    return result;
  };

  connect(writer_);
  // Checked before anything writes to the file (setting WAL mode does).
  const auto problems = rows(writer_, "PRAGMA quick_check");
  if (problems.size() != 1 || problems.front() != "ok")
    refuse(SQLITE_CORRUPT, "it is damaged (quick_check: " +
                               (problems.empty() ? std::string("no answer") : problems.front()) +
                               (problems.size() > 1 ? ", and more" : "") + ")");
  const auto mode = rows(writer_, "PRAGMA journal_mode=WAL");
  if (mode.empty() || mode.front() != "wal")
    refuse(SQLITE_CANTOPEN, "it cannot use write-ahead logging (journal mode " +
                                (mode.empty() ? std::string("unknown") : mode.front()) + ")");
  exec(writer_, settings.full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
  // A WAL grown by one large transaction shrinks back after its checkpoint.
  exec(writer_, "PRAGMA journal_size_limit=67108864");

  const auto version = rows(writer_, "PRAGMA user_version");
  const long long schema = version.empty() ? -1 : std::stoll(version.front());
  if (schema == 0)
    create_schema();
  else if (schema > schema_version)
    refuse(SQLITE_OK, "schema version " + std::to_string(schema) +
                          " is newer than this engine knows (" + std::to_string(schema_version) +
                          "); run a newer engine");
  else if (schema == 1)
    migrate(schema);
  else if (schema != schema_version)
    refuse(SQLITE_CORRUPT, "schema version " + std::to_string(schema) + " is unknown");

  const auto epoch = rows(writer_, "SELECT value FROM meta WHERE key = 'epoch'");
  if (epoch.size() != 1 || epoch.front().empty()) refuse(SQLITE_CORRUPT, "it has no epoch");
  epoch_ = epoch.front();

  write_ = std::make_unique<statements>(writer_);
  auto prepare = [&](statements& st, sqlite3_stmt*& s, const char* sql) {
    if (const int rc = st.prepare(s, sql); rc != SQLITE_OK) refuse(rc, error_text(st.db, rc));
  };
  auto& w = *write_;
  prepare(w, w.begin, "BEGIN IMMEDIATE");
  prepare(w, w.commit, "COMMIT");
  prepare(w, w.rollback, "ROLLBACK");
  prepare(w, w.insert_message,
          "INSERT INTO messages(room, seq, ts, key, payload) VALUES(?, ?, ?, ?, ?)");
  prepare(w, w.upsert_room,
          "INSERT INTO rooms(room, epoch, seq) VALUES(?, ?, ?) "
          "ON CONFLICT(room) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq");
  prepare(w, w.trim_messages, "DELETE FROM messages WHERE room = ? AND seq < ?");
  prepare(w, w.ensure_document,
          "INSERT OR IGNORE INTO documents(room, epoch, rev, text) VALUES(?, ?, 0, '')");
  prepare(w, w.insert_operation,
          "INSERT INTO operations(room, rev, user, key, op, ops) VALUES(?, ?, ?, ?, ?, ?)");
  prepare(w, w.write_snapshot, "UPDATE documents SET rev = ?, text = ? WHERE room = ?");
  prepare(w, w.trim_operations, "DELETE FROM operations WHERE room = ? AND rev < ?");
  prepare(w, w.expire, "DELETE FROM messages WHERE ts < ?");

  connect(reader_);
  exec(reader_, "PRAGMA query_only=1");
  read_ = std::make_unique<statements>(reader_);
  auto& r = *read_;
  prepare(r, r.begin, "BEGIN");
  prepare(r, r.commit, "COMMIT");
  prepare(r, r.rollback, "ROLLBACK");
  prepare(r, r.select_room, "SELECT epoch, seq FROM rooms WHERE room = ?");
  prepare(r, r.select_messages,
          "SELECT seq, ts, key, payload FROM messages WHERE room = ? ORDER BY seq DESC LIMIT ?");
  prepare(r, r.select_document, "SELECT epoch, rev, text FROM documents WHERE room = ?");
  prepare(r, r.select_operations,
          "SELECT rev, user, key, op, ops FROM operations WHERE room = ? AND rev > ? "
          "ORDER BY rev");
}

void sqlite_store::create_schema() {
  auto exec = [&](const std::string& sql) {
    const int rc = sqlite3_exec(writer_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) refuse(rc, error_text(writer_, rc));
  };
  // An uncommitted transaction is rolled back when the connection closes on a throw.
  exec("BEGIN IMMEDIATE");
  int rc = SQLITE_OK;
  const auto tables = column(writer_, "SELECT count(*) FROM sqlite_schema", rc);
  if (rc != SQLITE_OK) refuse(rc, error_text(writer_, rc));
  if (tables.empty() || tables.front() != "0")
    refuse(SQLITE_OK, "it holds tables but no schema version: it is not Troupe's; use "
                      "another data directory or move it away");
  exec(schema_sql);
  exec("PRAGMA user_version = " + std::to_string(schema_version));
  // The epoch is 16 hex digits: safe to write into the statement.
  exec("INSERT INTO meta(key, value) VALUES('epoch', '" + core::new_epoch() + "')");
  exec("COMMIT");
}

void sqlite_store::migrate(long long from) {
  auto exec = [&](const std::string& sql) {
    const int rc = sqlite3_exec(writer_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) refuse(rc, error_text(writer_, rc));
  };
  // An uncommitted transaction is rolled back when the connection closes on a throw.
  exec("BEGIN IMMEDIATE");
  if (from == 1) // every row of schema 1 is one operation: a new column, no row rewritten
    exec("ALTER TABLE operations ADD COLUMN ops INTEGER NOT NULL DEFAULT 1");
  exec("PRAGMA user_version = " + std::to_string(schema_version));
  exec("COMMIT");
}

} // namespace troupe::store
