#include "store/sqlite_access.hpp"

#include <algorithm>
#include <limits>

namespace troupe::store::sqlite {

namespace {

const char* code_name(int rc) noexcept {
  switch (rc & 0xff) {
  case SQLITE_ERROR:
    return "SQLITE_ERROR";
  case SQLITE_PERM:
    return "SQLITE_PERM";
  case SQLITE_BUSY:
    return "SQLITE_BUSY";
  case SQLITE_LOCKED:
    return "SQLITE_LOCKED";
  case SQLITE_NOMEM:
    return "SQLITE_NOMEM";
  case SQLITE_READONLY:
    return "SQLITE_READONLY";
  case SQLITE_IOERR:
    return "SQLITE_IOERR";
  case SQLITE_CORRUPT:
    return "SQLITE_CORRUPT";
  case SQLITE_FULL:
    return "SQLITE_FULL";
  case SQLITE_CANTOPEN:
    return "SQLITE_CANTOPEN";
  case SQLITE_PROTOCOL:
    return "SQLITE_PROTOCOL";
  case SQLITE_NOTADB:
    return "SQLITE_NOTADB";
  case SQLITE_AUTH:
    return "SQLITE_AUTH";
  default:
    return "SQLite error";
  }
}

} // namespace

std::string error_text(sqlite3* db, int rc) {
  // errmsg is the connection's last error; errstr names the code when there is no message.
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return std::string(message) + " (" + code_name(rc) + ")";
}

int bind_one(sqlite3_stmt* s, int index, std::int64_t value) {
  return sqlite3_bind_int64(s, index, value);
}
int bind_one(sqlite3_stmt* s, int index, std::uint64_t value) {
  return sqlite3_bind_int64(s, index, static_cast<sqlite3_int64>(value));
}
int bind_one(sqlite3_stmt* s, int index, std::string_view text) {
  return sqlite3_bind_text64(s, index, text.data() ? text.data() : "", text.size(), SQLITE_STATIC,
                             SQLITE_UTF8);
}
int bind_one(sqlite3_stmt* s, int index, blob value) {
  return sqlite3_bind_blob64(s, index, value.bytes.data() ? value.bytes.data() : "",
                             value.bytes.size(), SQLITE_STATIC);
}

std::vector<std::string> column(sqlite3* db, const char* sql, int& rc) {
  std::vector<std::string> rows;
  sqlite3_stmt* s = nullptr;
  rc = sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  if (rc != SQLITE_OK) return rows;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    rows.emplace_back(text ? text : "");
  }
  if (rc == SQLITE_DONE) rc = SQLITE_OK;
  sqlite3_finalize(s);
  return rows;
}

std::int64_t row_limit(std::size_t n) noexcept {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(n, std::numeric_limits<std::int64_t>::max()));
}

read_transaction::read_transaction(sqlite3* db, sqlite3_stmt* begin, sqlite3_stmt* end)
    : db_(db), end_(end) {
  if (!sqlite3_get_autocommit(db_))
    run(end_); // a transaction left open would make every later BEGIN fail
  rc_ = run(begin);
  if (rc_ != SQLITE_OK) error_ = error_text(db_, rc_);
}

read_transaction::~read_transaction() {
  if (rc_ == SQLITE_OK) run(end_);
}

} // namespace troupe::store::sqlite
