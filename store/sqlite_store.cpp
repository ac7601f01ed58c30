#include "store/sqlite_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <msgpack.hpp>
#include <system_error>
#include <vector>

namespace troupe::store {

namespace {

constexpr int schema_version = 1;

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
  key TEXT NOT NULL, op BLOB NOT NULL, PRIMARY KEY(room, rev)) WITHOUT ROWID;
)sql";

const char* code_name(int rc) noexcept {
  switch (rc & 0xff) {
  case SQLITE_ERROR: return "SQLITE_ERROR";
  case SQLITE_PERM: return "SQLITE_PERM";
  case SQLITE_BUSY: return "SQLITE_BUSY";
  case SQLITE_LOCKED: return "SQLITE_LOCKED";
  case SQLITE_NOMEM: return "SQLITE_NOMEM";
  case SQLITE_READONLY: return "SQLITE_READONLY";
  case SQLITE_IOERR: return "SQLITE_IOERR";
  case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
  case SQLITE_FULL: return "SQLITE_FULL";
  case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN";
  case SQLITE_PROTOCOL: return "SQLITE_PROTOCOL";
  case SQLITE_NOTADB: return "SQLITE_NOTADB";
  case SQLITE_AUTH: return "SQLITE_AUTH";
  default: return "SQLite error";
  }
}

std::string error_text(sqlite3* db, int rc) {
  // errmsg is the connection's last error; errstr names the code when there is no message.
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return std::string(message) + " (" + code_name(rc) + ")";
}

struct blob {
  std::string_view bytes;
};

/// True when `payload` is exactly one MessagePack map with t == "msg" and this seq.
bool is_msg_map(std::string_view payload, std::uint64_t seq) {
  try {
    std::size_t offset = 0;
    auto handle = msgpack::unpack(payload.data(), payload.size(), offset);
    const msgpack::object& map = handle.get();
    if (offset != payload.size() || map.type != msgpack::type::MAP)
      return false;
    bool typed = false, numbered = false;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
      const auto& entry = map.via.map.ptr[i];
      if (entry.key.type != msgpack::type::STR)
        continue;
      const std::string_view key(entry.key.via.str.ptr, entry.key.via.str.size);
      if (key == "t")
        typed = entry.val.type == msgpack::type::STR &&
                std::string_view(entry.val.via.str.ptr, entry.val.via.str.size) == "msg";
      else if (key == "seq")
        numbered = entry.val.type == msgpack::type::POSITIVE_INTEGER &&
                   entry.val.via.u64 == seq;
    }
    return typed && numbered;
  } catch (const msgpack::unpack_error&) {
    return false;
  } catch (const msgpack::type_error&) {
    return false;
  }
}

// SQLITE_STATIC: every bound value outlives the step it is bound for. A null pointer
// would bind NULL, so empty values point at "".
int bind_one(sqlite3_stmt* s, int index, std::int64_t value) {
  return sqlite3_bind_int64(s, index, value);
}
int bind_one(sqlite3_stmt* s, int index, std::uint64_t value) {
  return sqlite3_bind_int64(s, index, static_cast<sqlite3_int64>(value));
}
int bind_one(sqlite3_stmt* s, int index, std::string_view text) {
  return sqlite3_bind_text64(s, index, text.data() ? text.data() : "", text.size(),
                             SQLITE_STATIC, SQLITE_UTF8);
}
int bind_one(sqlite3_stmt* s, int index, blob value) {
  return sqlite3_bind_blob64(s, index, value.bytes.data() ? value.bytes.data() : "",
                             value.bytes.size(), SQLITE_STATIC);
}

template <class... Args> int bind([[maybe_unused]] sqlite3_stmt* s, const Args&... args) {
  int rc = SQLITE_OK;
  int index = 0;
  ((rc = rc == SQLITE_OK ? bind_one(s, ++index, args) : rc), ...);
  return rc;
}

/// Runs a statement that returns no rows: SQLITE_OK or the error.
template <class... Args> int run(sqlite3_stmt* s, const Args&... args) {
  int rc = bind(s, args...);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
      rc = SQLITE_OK;
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
    if (rc_ != SQLITE_OK)
      error_ = error_text(sqlite3_db_handle(s_), rc_);
  }
  ~query() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  query(const query&) = delete;
  query& operator=(const query&) = delete;

  /// The next row: false at the end or on an error (then failed()).
  bool next() {
    if (rc_ != SQLITE_OK && rc_ != SQLITE_ROW)
      return false;
    rc_ = sqlite3_step(s_);
    if (rc_ != SQLITE_ROW && rc_ != SQLITE_DONE)
      error_ = error_text(sqlite3_db_handle(s_), rc_);
    return rc_ == SQLITE_ROW;
  }
  bool failed() const noexcept { return !error_.empty(); }
  const std::string& error() const noexcept { return error_; }

  int type(int column) const { return sqlite3_column_type(s_, column); }
  /// A non-negative integer column, or nullopt when the row holds something else.
  std::optional<std::uint64_t> count(int column) const {
    if (type(column) != SQLITE_INTEGER)
      return std::nullopt;
    const sqlite3_int64 value = sqlite3_column_int64(s_, column);
    if (value < 0)
      return std::nullopt;
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
std::vector<std::string> column(sqlite3* db, const char* sql, int& rc) {
  std::vector<std::string> rows;
  sqlite3_stmt* s = nullptr;
  rc = sqlite3_prepare_v2(db, sql, -1, &s, nullptr);
  if (rc != SQLITE_OK)
    return rows;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    rows.emplace_back(text ? text : "");
  }
  if (rc == SQLITE_DONE)
    rc = SQLITE_OK;
  sqlite3_finalize(s);
  return rows;
}

struct string_sink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

/// An operation as MessagePack: the array of its wire components, plus its trailing
/// retain when it has one, so base_length() (which replay's fits() checks) round-trips.
void encode_operation(const ot::operation& op, std::string& out) {
  using kind = ot::component::kind;
  out.clear();
  string_sink sink{out};
  msgpack::packer<string_sink> packer(sink);
  std::size_t spanned = 0;
  for (const auto& c : op.components())
    if (c.type != kind::insert)
      spanned += c.count;
  const std::size_t trailing = op.base_length() - spanned;
  packer.pack_array(static_cast<std::uint32_t>(op.components().size() + (trailing > 0)));
  for (const auto& c : op.components()) {
    switch (c.type) {
    case kind::retain:
      packer.pack_int64(static_cast<std::int64_t>(c.count));
      break;
    case kind::remove:
      packer.pack_int64(-static_cast<std::int64_t>(c.count));
      break;
    case kind::insert:
      packer.pack_str(static_cast<std::uint32_t>(c.text.size()));
      packer.pack_str_body(c.text.data(), static_cast<std::uint32_t>(c.text.size()));
      break;
    }
  }
  if (trailing > 0)
    packer.pack_int64(static_cast<std::int64_t>(trailing));
}

ot::parse_result decode_operation(std::string_view bytes) {
  std::vector<ot::wire_component> wire;
  try {
    std::size_t offset = 0;
    const msgpack::object_handle handle = msgpack::unpack(bytes.data(), bytes.size(), offset);
    if (offset != bytes.size())
      return {std::nullopt, "bytes after the operation"};
    const msgpack::object& array = handle.get();
    if (array.type != msgpack::type::ARRAY)
      return {std::nullopt, "not an array"};
    wire.reserve(array.via.array.size);
    for (std::uint32_t i = 0; i < array.via.array.size; ++i) {
      const msgpack::object& c = array.via.array.ptr[i];
      if (c.type == msgpack::type::POSITIVE_INTEGER &&
          c.via.u64 <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        wire.emplace_back(static_cast<std::int64_t>(c.via.u64));
      else if (c.type == msgpack::type::NEGATIVE_INTEGER)
        wire.emplace_back(c.via.i64);
      else if (c.type == msgpack::type::STR)
        wire.emplace_back(std::string(c.via.str.ptr, c.via.str.size));
      else
        return {std::nullopt, "component " + std::to_string(i) + " is not a count or a text"};
    }
  } catch (const std::exception& e) {
    return {std::nullopt, std::string("not MessagePack (") + e.what() + ")"};
  }
  return ot::parse(wire);
}

/// True when `s` is valid UTF-8 (what the rope requires): no overlong forms, surrogates or
/// code points above U+10FFFF.
bool valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t size = s.size();
  for (std::size_t i = 0; i < size;) {
    const unsigned char lead = p[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length;
    std::uint32_t cp;
    if (lead >= 0xC2 && lead <= 0xDF)
      length = 2, cp = lead & 0x1F;
    else if (lead >= 0xE0 && lead <= 0xEF)
      length = 3, cp = lead & 0x0F;
    else if (lead >= 0xF0 && lead <= 0xF4)
      length = 4, cp = lead & 0x07;
    else
      return false;
    if (size - i < length)
      return false;
    for (std::size_t k = 1; k < length; ++k) {
      if ((p[i + k] & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += length;
  }
  return true;
}

std::int64_t row_limit(std::size_t n) noexcept {
  return static_cast<std::int64_t>(
      std::min<std::uint64_t>(n, std::numeric_limits<std::int64_t>::max()));
}

} // namespace

struct sqlite_store::statements {
  sqlite3* db;
  std::vector<sqlite3_stmt*> all;
  std::string buffer; // an encoded operation, reused

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
    if (rc == SQLITE_OK)
      all.push_back(s);
    return rc;
  }
};

namespace {

/// A read transaction: the loads of one room see one snapshot, even while a commit runs.
class read_transaction {
public:
  explicit read_transaction(sqlite3* db, sqlite3_stmt* begin, sqlite3_stmt* end)
      : db_(db), end_(end) {
    if (!sqlite3_get_autocommit(db_))
      run(end_); // a transaction left open would make every later BEGIN fail
    rc_ = run(begin);
    if (rc_ != SQLITE_OK)
      error_ = error_text(db_, rc_);
  }
  ~read_transaction() {
    if (rc_ == SQLITE_OK)
      run(end_);
  }
  read_transaction(const read_transaction&) = delete;
  read_transaction& operator=(const read_transaction&) = delete;

  const std::string& error() const noexcept { return error_; }

private:
  sqlite3* db_;
  sqlite3_stmt* end_;
  int rc_;
  std::string error_;
};

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
}

sqlite_store::~sqlite_store() { close(); }

void sqlite_store::close() noexcept {
  read_.reset();
  write_.reset();
  sqlite3_close_v2(reader_);
  sqlite3_close_v2(writer_);
  reader_ = writer_ = nullptr;
  if (lock_fd_ >= 0)
    ::close(lock_fd_); // releases the lock
  lock_fd_ = -1;
}

void sqlite_store::lock(const std::string& directory) {
  // Two engines on one directory would hand out the same seqs twice; the second refuses to
  // start. flock is released by the kernel when the process dies, kill -9 included.
  const std::string lock_path = (std::filesystem::path(directory) / "troupe.lock").string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    throw store_error("the data directory " + directory + " cannot be used: " + lock_path +
                      ": " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw store_error("the data directory " + directory +
                      (error == EWOULDBLOCK ? " is in use by another engine"
                                            : " cannot be locked: " +
                                                  std::string(std::strerror(error))));
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
    if (rc != SQLITE_OK)
      refuse(rc, error_text(db, rc));
    sqlite3_extended_result_codes(db, 1);
    // Waits out a checkpoint or another process's lock rather than failing at once.
    sqlite3_busy_timeout(db, 5000);
  };
  auto exec = [&](sqlite3* db, const char* sql) {
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
      refuse(rc, error_text(db, rc));
  };
  auto rows = [&](sqlite3* db, const char* sql) {
    int rc = SQLITE_OK;
    auto result = column(db, sql, rc);
    if (rc != SQLITE_OK)
      refuse(rc, error_text(db, rc));
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
                          " is newer than this engine knows (" +
                          std::to_string(schema_version) + "); run a newer engine");
  else if (schema != schema_version)
    refuse(SQLITE_CORRUPT, "schema version " + std::to_string(schema) + " is unknown");

  const auto epoch = rows(writer_, "SELECT value FROM meta WHERE key = 'epoch'");
  if (epoch.size() != 1 || epoch.front().empty())
    refuse(SQLITE_CORRUPT, "it has no epoch");
  epoch_ = epoch.front();

  write_ = std::make_unique<statements>(writer_);
  auto prepare = [&](statements& st, sqlite3_stmt*& s, const char* sql) {
    if (const int rc = st.prepare(s, sql); rc != SQLITE_OK)
      refuse(rc, error_text(st.db, rc));
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
          "INSERT INTO operations(room, rev, user, key, op) VALUES(?, ?, ?, ?, ?)");
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
          "SELECT rev, user, key, op FROM operations WHERE room = ? AND rev > ? ORDER BY rev");
}

void sqlite_store::create_schema() {
  auto exec = [&](const std::string& sql) {
    const int rc = sqlite3_exec(writer_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
      refuse(rc, error_text(writer_, rc));
  };
  // An uncommitted transaction is rolled back when the connection closes on a throw.
  exec("BEGIN IMMEDIATE");
  int rc = SQLITE_OK;
  const auto tables = column(writer_, "SELECT count(*) FROM sqlite_schema", rc);
  if (rc != SQLITE_OK)
    refuse(rc, error_text(writer_, rc));
  if (tables.empty() || tables.front() != "0")
    refuse(SQLITE_OK, "it holds tables but no schema version: it is not Troupe's; use "
                      "another data directory or move it away");
  exec(schema_sql);
  exec("PRAGMA user_version = " + std::to_string(schema_version));
  // The epoch is 16 hex digits: safe to write into the statement.
  exec("INSERT INTO meta(key, value) VALUES('epoch', '" + core::new_epoch() + "')");
  exec("COMMIT");
}

int sqlite_store::write_batch(const room_writes& batch) {
  auto& w = *write_;
  int rc = SQLITE_OK;
  for (const auto& message : batch.messages) {
    const std::string_view payload = message.frame ? message.frame->payload() : std::string_view{};
    rc = run(w.insert_message, batch.room, message.seq, message.ts, message.key, blob{payload});
    if (rc != SQLITE_OK)
      return rc;
  }
  // The room's row holds its top seq, which outlives its messages.
  if (!batch.messages.empty()) {
    rc = run(w.upsert_room, batch.room, batch.epoch, batch.messages.back().seq);
    if (rc != SQLITE_OK)
      return rc;
  }
  if (batch.keep_messages_from > 0) {
    rc = run(w.trim_messages, batch.room, batch.keep_messages_from);
    if (rc != SQLITE_OK)
      return rc;
  }

  if (batch.operations.empty() && !batch.snapshot)
    return SQLITE_OK;
  rc = run(w.ensure_document, batch.room, batch.epoch);
  if (rc != SQLITE_OK)
    return rc;
  for (const auto& accepted : batch.operations) {
    encode_operation(accepted.op, w.buffer);
    rc = run(w.insert_operation, batch.room, accepted.rev, accepted.user, accepted.key,
             blob{w.buffer});
    if (rc != SQLITE_OK)
      return rc;
  }
  if (const auto& snapshot = batch.snapshot) {
    rc = run(w.write_snapshot, snapshot->rev, snapshot->text, batch.room);
    if (rc == SQLITE_OK && snapshot->keep_operations_from > 0)
      rc = run(w.trim_operations, batch.room, snapshot->keep_operations_from);
  }
  return rc;
}

std::string sqlite_store::commit(const std::vector<room_writes>& batches) {
  if (batches.empty())
    return {};
  auto& w = *write_;
  int rc = run(w.begin);
  for (std::size_t i = 0; rc == SQLITE_OK && i < batches.size(); ++i)
    rc = write_batch(batches[i]);
  if (rc == SQLITE_OK)
    rc = run(w.commit);
  if (rc == SQLITE_OK)
    return {};
  // Read before the rollback replaces the connection's error.
  std::string why = (rc & 0xff) == SQLITE_FULL ? std::string("disk is full")
                                                : std::string(sqlite3_errmsg(writer_));
  // SQLITE_FULL and SQLITE_IOERR may have rolled back already.
  if (!sqlite3_get_autocommit(writer_))
    run(w.rollback);
  return "the store could not write: " + why;
}

void sqlite_store::expire_messages(std::uint64_t cutoff_ms) {
  // A failure leaves the rows for the next expiry; loads keep only a consecutive run anyway.
  run(write_->expire, cutoff_ms);
}

loaded<core::history_log> sqlite_store::load_log(std::string_view room, std::size_t capacity) {
  auto fail = [&](const std::string& why) {
    return loaded<core::history_log>{std::nullopt, "room " + std::string(room) + ": " + why};
  };
  std::lock_guard lock(read_mutex_);
  auto& r = *read_;
  read_transaction transaction(reader_, r.begin, r.rollback);
  if (!transaction.error().empty())
    return fail(transaction.error());

  std::string epoch;
  std::uint64_t top = 0;
  {
    query row(r.select_room, room);
    if (row.next()) {
      epoch = row.text(0);
      const auto seq = row.count(1);
      if (!seq || epoch.empty())
        return fail("its sequence number is damaged in the store");
      top = *seq;
    } else if (row.failed()) {
      return fail(row.error());
    }
  }
  if (epoch.empty()) {
    query any(r.select_messages, room, std::int64_t{1});
    if (any.next())
      return fail("it has messages but no sequence number: the store is damaged");
    if (any.failed())
      return fail(any.error());
    return {core::history_log(capacity, epoch_), {}};
  }

  // Newest first: the run of consecutive seqs ending at the top one (expiry by age may have
  // deleted any message; older ones before a gap are not kept).
  std::vector<core::stored_message> kept;
  if (capacity > 0) {
    query rows(r.select_messages, room, row_limit(capacity));
    while (rows.next()) {
      const auto seq = rows.count(0);
      const auto ts = rows.count(1);
      if (!seq || !ts || rows.type(3) != SQLITE_BLOB)
        return fail("a message is damaged in the store");
      if (*seq > top)
        return fail("message " + std::to_string(*seq) + " is newer than its sequence number " +
                    std::to_string(top) + ": the store is damaged");
      if (*seq != (kept.empty() ? top : kept.back().seq - 1) || *seq == 0)
        break;
      // The bytes go to clients as they are: they must be this message's `msg` map.
      if (!is_msg_map(rows.bytes(3), *seq))
        return fail("message " + std::to_string(*seq) + " is damaged in the store");
      protocol::frame_builder builder;
      builder.write(rows.bytes(3));
      kept.push_back({*seq, std::string(rows.text(2)), builder.finish(), *ts});
    }
    if (rows.failed())
      return fail(rows.error());
  }

  core::history_log log(capacity, std::move(epoch), kept.empty() ? top : kept.back().seq - 1);
  for (auto it = kept.rbegin(); it != kept.rend(); ++it)
    log.append(std::move(*it));
  if (log.seq() != top)
    return fail("its messages do not end at its sequence number: the store is damaged");
  return {std::move(log), {}};
}

loaded<core::document_sequencer> sqlite_store::load_document(std::string_view room,
                                                   std::size_t log_capacity) {
  auto fail = [&](const std::string& why) {
    return loaded<core::document_sequencer>{std::nullopt,
                                  "document of room " + std::string(room) + ": " + why};
  };
  auto missing = [&](std::uint64_t rev) {
    return fail("operation " + std::to_string(rev) + " is missing: the store is damaged");
  };
  std::lock_guard lock(read_mutex_);
  auto& r = *read_;
  read_transaction transaction(reader_, r.begin, r.rollback);
  if (!transaction.error().empty())
    return fail(transaction.error());

  std::string epoch;
  std::string text;
  std::uint64_t snapshot_rev = 0;
  {
    query row(r.select_document, room);
    if (row.next()) {
      epoch = row.text(0);
      const auto rev = row.count(1);
      if (!rev || epoch.empty() || row.type(2) != SQLITE_TEXT)
        return fail("its snapshot is damaged in the store");
      snapshot_rev = *rev;
      text = row.text(2);
    } else if (row.failed()) {
      return fail(row.error());
    }
  }
  if (epoch.empty()) {
    query any(r.select_operations, room, std::int64_t{-1});
    if (any.next())
      return fail("it has operations but no text: the store is damaged");
    if (any.failed())
      return fail(any.error());
    return {core::document_sequencer(log_capacity, epoch_), {}};
  }
  if (!valid_utf8(text))
    return fail("its text at rev " + std::to_string(snapshot_rev) +
                " is not valid UTF-8: the store is damaged");

  // The kept log up to the snapshot (at most the capacity), then the operations since,
  // replayed onto the text.
  const std::size_t capacity = std::max<std::size_t>(log_capacity, 1);
  const std::uint64_t from = snapshot_rev > capacity ? snapshot_rev - capacity : 0;
  std::vector<core::logged_operation> history;
  std::optional<core::document_sequencer> document;
  query rows(r.select_operations, room, from);
  while (rows.next()) {
    const auto rev = rows.count(0);
    if (!rev || rows.type(3) != SQLITE_BLOB)
      return fail("an operation is damaged in the store");
    auto decoded = decode_operation(rows.bytes(3));
    if (!decoded.op)
      return fail("operation " + std::to_string(*rev) + " cannot be read (" + decoded.error +
                  "): the store is damaged");
    core::logged_operation accepted{*rev, std::move(*decoded.op), std::string(rows.text(1)),
                              std::string(rows.text(2))};
    if (*rev <= snapshot_rev) {
      if (!history.empty() && *rev != history.back().rev + 1)
        return missing(history.back().rev + 1);
      history.push_back(std::move(accepted));
      continue;
    }
    if (!document) {
      if (!history.empty() && history.back().rev != snapshot_rev)
        return missing(history.back().rev + 1);
      document.emplace(log_capacity, epoch, snapshot_rev, text, std::move(history));
    }
    if (*rev != document->rev() + 1)
      return missing(document->rev() + 1);
    if (!document->replay(std::move(accepted)))
      return fail("operation " + std::to_string(*rev) +
                  " does not fit the text: the store is damaged");
  }
  if (rows.failed())
    return fail(rows.error());
  if (!document) {
    if (!history.empty() && history.back().rev != snapshot_rev)
      return missing(history.back().rev + 1);
    document.emplace(log_capacity, std::move(epoch), snapshot_rev, text, std::move(history));
  }
  return {std::move(document), {}};
}

} // namespace troupe::store
