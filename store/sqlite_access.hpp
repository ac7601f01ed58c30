#pragma once
// The SQLite store's access to SQLite: binding and running prepared statements, reading
// rows, the prepared statements of a connection and read transactions. Internal to store/.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/string_sink.hpp"
#include "store/sqlite_store.hpp"

namespace troupe::store::sqlite {

/// The connection's last error (or the code's text without one), naming the code.
std::string error_text(sqlite3* db, int rc);

/// A value bound as a BLOB rather than TEXT.
struct blob {
  std::string_view bytes;
};

// SQLITE_STATIC: every bound value outlives the step it is bound for. A null pointer
// would bind NULL, so empty values point at "".
int bind_one(sqlite3_stmt* s, int index, std::int64_t value);
int bind_one(sqlite3_stmt* s, int index, std::uint64_t value);
int bind_one(sqlite3_stmt* s, int index, std::string_view text);
int bind_one(sqlite3_stmt* s, int index, blob value);

template <class... Args>
int bind([[maybe_unused]] sqlite3_stmt* s, const Args&... args) {
  int rc = SQLITE_OK;
  int index = 0;
  ((rc = rc == SQLITE_OK ? bind_one(s, ++index, args) : rc), ...);
  return rc;
}

/// Runs a statement that returns no rows: SQLITE_OK or the error.
template <class... Args>
int run(sqlite3_stmt* s, const Args&... args) {
  int rc = bind(s, args...);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) rc = SQLITE_OK;
  }
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc;
}

/// The rows of a prepared statement; reset when it goes out of scope.
class query {
public:
  template <class... Args>
  explicit query(sqlite3_stmt* s, const Args&... args) : s_(s), rc_(bind(s, args...)) {
    if (rc_ != SQLITE_OK) error_ = error_text(sqlite3_db_handle(s_), rc_);
  }
  ~query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  query(const query&) = delete;
  query& operator=(const query&) = delete;

  /// The next row: false at the end or on an error (then failed()).
  bool next() {
    if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW) return false;
    rc_ = sqlite3_step(s_);
    if (rc_ != SQLITE_ROW && rc_ != SQLITE_DONE) error_ = error_text(sqlite3_db_handle(s_), rc_);
    return rc_ == SQLITE_ROW;
  }
  bool failed() const noexcept { return !error_.empty(); }
  const std::string& error() const noexcept { return error_; }

  int type(int column) const { return sqlite3_column_type(s_, column); }
  /// A non-negative integer column, or nullopt when the row holds something else.
  std::optional<std::uint64_t> count(int column) const {
    if (type(column) != SQLITE_INTEGER) return std::nullopt;
    const sqlite3_int64 value = sqlite3_column_int64(s_, column);
    if (value < 0) return std::nullopt;
    return static_cast<std::uint64_t>(value);
  }
  std::string_view text(int column) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, column));
    return {p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s_, column))};
  }
  std::string_view bytes(int column) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, column));
    return {p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(s_, column))};
  }

private:
  sqlite3_stmt* s_;
  int rc_;
  std::string error_;
};

/// The first column of every row of `sql`, on a connection being opened.
std::vector<std::string> column(sqlite3* db, const char* sql, int& rc);

/// `n` rows as a LIMIT: SQLite's integers are signed.
std::int64_t row_limit(std::size_t n) noexcept;

/// A read transaction: the loads of one room see one snapshot, even while a commit runs.
class read_transaction {
public:
  read_transaction(sqlite3* db, sqlite3_stmt* begin, sqlite3_stmt* end);
  ~read_transaction();
  read_transaction(const read_transaction&) = delete;
  read_transaction& operator=(const read_transaction&) = delete;

  const std::string& error() const noexcept { return error_; }

private:
  sqlite3* db_;
  sqlite3_stmt* end_;
  int rc_;
  std::string error_;
};

} // namespace troupe::store::sqlite

namespace troupe::store {

/// A connection's prepared statements, finalized with it.
struct sqlite_store::statements {
  sqlite3* db;
  std::vector<sqlite3_stmt*> all;
  protocol::string_sink buffer; // an encoded operation, reused

  sqlite3_stmt* begin = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;
  // writer
  sqlite3_stmt* insert_message = nullptr;
  sqlite3_stmt* upsert_room = nullptr;
  sqlite3_stmt* trim_messages = nullptr;
  sqlite3_stmt* ensure_document = nullptr;
  sqlite3_stmt* insert_operation = nullptr;
  sqlite3_stmt* write_snapshot = nullptr;
  sqlite3_stmt* trim_operations = nullptr;
  sqlite3_stmt* expire = nullptr;
  // reader
  sqlite3_stmt* select_room = nullptr;
  sqlite3_stmt* select_messages = nullptr;
  sqlite3_stmt* select_document = nullptr;
  sqlite3_stmt* select_operations = nullptr;

  explicit statements(sqlite3* connection) : db(connection) {}
  ~statements() {
    for (auto* s : all)
      sqlite3_finalize(s);
  }

  /// SQLITE_OK, or the error (the statement stays null).
  int prepare(sqlite3_stmt*& s, const char* sql) {
    const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc == SQLITE_OK) all.push_back(s);
    return rc;
  }
};

} // namespace troupe::store
