#include <gtest/gtest.h>

#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <msgpack.hpp>

#include "store/sqlite_store.hpp"
#include "protocol/codec.hpp"
#include "protocol/frame.hpp"

using namespace troupe;
namespace fs = std::filesystem;

namespace {

// The `msg` map of seq as the room pushes it. A NUL inside its data checks that payloads
// are stored as blobs, byte for byte.
std::string payload_of(std::uint64_t seq, std::size_t padding = 0) {
  std::string text("m\0", 2);
  text += std::to_string(seq);
  text.append(padding, 'x');
  msgpack::sbuffer data;
  msgpack::pack(data, text);
  protocol::frame_builder builder;
  protocol::encode_msg(builder, "r", seq, "ann", std::string_view(data.data(), data.size()), 1000,
                       "");
  return std::string(builder.finish()->payload());
}

core::stored_message message(std::uint64_t seq, std::string key = {}, std::uint64_t ts = 1000,
                             std::size_t padding = 0) {
  protocol::frame_builder builder;
  builder.write(payload_of(seq, padding));
  return {seq, std::move(key), builder.finish(), ts};
}

/// Messages first..last of `room`, published at ts = 1000 + seq, keyed "k<seq>".
store::room_writes messages(std::string room, std::string epoch, std::uint64_t first,
                            std::uint64_t last, std::uint64_t keep_from = 0) {
  store::room_writes batch{std::move(room), std::move(epoch), {}, keep_from, {}, {}};
  for (std::uint64_t seq = first; seq <= last; ++seq)
    batch.messages.push_back(message(seq, "k" + std::to_string(seq), 1000 + seq));
  return batch;
}

std::vector<std::uint64_t> seqs(const core::history_log& log) {
  std::vector<std::uint64_t> out;
  for (const auto& m : log.messages())
    out.push_back(m.seq);
  return out;
}

std::vector<std::uint64_t> revs(const core::document_sequencer& document) {
  std::vector<std::uint64_t> out;
  for (const auto& op : document.log())
    out.push_back(op.rev);
  return out;
}

/// A document edited the way the document actor does it: submit, then hand the accepted
/// operations to the store.
struct editor {
  core::document_sequencer document;
  std::vector<core::logged_operation> pending;

  void edit(ot::operation op, const std::string& key, const std::string& user = "ann") {
    auto result = document.submit(document.rev(), std::move(op), key, user);
    ASSERT_EQ(result.kind, core::document_sequencer::outcome::applied) << result.reason;
    pending.push_back(*result.accepted);
  }

  store::room_writes take(const std::string& room,
                          std::optional<store::document_snapshot> snapshot = {}) {
    store::room_writes batch{room, document.epoch(), {}, 0, std::move(snapshot), {}};
    for (const auto& accepted : pending)
      store::append_to_runs(batch.runs, accepted);
    pending.clear();
    return batch;
  }

  store::document_snapshot snapshot(std::uint64_t keep_from) const {
    return {document.rev(), document.text().to_string(), keep_from};
  }
};

class SqliteStore : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/troupe-store-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr) << std::strerror(errno);
    dir_ = pattern;
    data_ = dir_ + "/data";
  }

  void TearDown() override {
    store_.reset();
    if (!mount_point_.empty()) umount2(mount_point_.c_str(), MNT_DETACH);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  store::sqlite_store& open() {
    store_.reset();
    store_ = std::make_unique<store::sqlite_store>(store::sqlite_settings{data_, true});
    return *store_;
  }
  void close() { store_.reset(); }
  std::string db_path() const { return data_ + "/troupe.db"; }

  /// Runs `statement` through a connection of the test's own.
  void sql(const std::string& statement) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << statement << ": " << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  std::int64_t scalar(const std::string& query) {
    sqlite3* db = nullptr;
    std::int64_t value = -1;
    if (sqlite3_open(db_path().c_str(), &db) == SQLITE_OK) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db, query.c_str(), -1, &s, nullptr) == SQLITE_OK &&
          sqlite3_step(s) == SQLITE_ROW)
        value = sqlite3_column_int64(s, 0);
      sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return value;
  }

  /// The message of the store_error that opening throws, or "" when it opens.
  std::string open_error() {
    try {
      open();
    } catch (const store::store_error& e) {
      return e.what();
    }
    return {};
  }

  /// A database of a few dozen pages, closed.
  void write_some_pages() {
    auto& store = open();
    store::room_writes batch{"big", store.epoch(), {}, 0, {}, {}};
    for (std::uint64_t seq = 1; seq <= 60; ++seq)
      batch.messages.push_back(message(seq, {}, 1000, 2000));
    ASSERT_EQ(store.commit({batch}), "");
    close();
    ASSERT_GT(fs::file_size(db_path()), 30u * 4096);
  }

  std::string dir_;
  std::string data_;
  std::string mount_point_;
  std::unique_ptr<store::sqlite_store> store_;
};

TEST_F(SqliteStore, NewDatabaseGivesFreshStateWithItsEpochAcrossRestarts) {
  data_ = dir_ + "/not/yet/there";
  auto& store = open();
  EXPECT_TRUE(fs::is_regular_file(db_path()));
  EXPECT_EQ(store.path(), db_path());
  EXPECT_TRUE(store.durable());
  const std::string epoch = store.epoch();
  EXPECT_EQ(epoch.size(), 16u);

  auto log = store.load_log("lobby", 10);
  ASSERT_TRUE(log.ok()) << log.error;
  EXPECT_EQ(log.state->seq(), 0u);
  EXPECT_EQ(log.state->epoch(), epoch);
  EXPECT_EQ(log.state->capacity(), 10u);
  auto document = store.load_document("lobby", 5);
  ASSERT_TRUE(document.ok()) << document.error;
  EXPECT_EQ(document.state->rev(), 0u);
  EXPECT_EQ(document.state->epoch(), epoch);
  EXPECT_TRUE(document.state->text().empty());
  EXPECT_EQ(store.commit({}), "");
  EXPECT_EQ(scalar("SELECT count(*) FROM rooms") + scalar("SELECT count(*) FROM documents"), 0);

  close();
  auto& again = open();
  EXPECT_EQ(again.epoch(), epoch);
  EXPECT_EQ(again.load_log("lobby", 10).state->epoch(), epoch);
  EXPECT_EQ(again.load_document("lobby", 5).state->epoch(), epoch);
  // The mode is kept in the file: another connection sees it too.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST_F(SqliteStore, MessagesSurviveARestart) {
  auto& store = open();
  ASSERT_EQ(store.commit({messages("r", "room-epoch", 1, 5)}), "");
  ASSERT_EQ(store.commit({messages("r", "room-epoch", 6, 8)}), "");
  close();

  auto& again = open();
  auto log = again.load_log("r", 100);
  ASSERT_TRUE(log.ok()) << log.error;
  EXPECT_EQ(log.state->epoch(), "room-epoch");
  EXPECT_EQ(log.state->seq(), 8u);
  ASSERT_EQ(seqs(*log.state), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  for (const auto& m : log.state->messages()) {
    EXPECT_EQ(m.frame->payload(), payload_of(m.seq));
    EXPECT_EQ(m.key, "k" + std::to_string(m.seq));
    EXPECT_EQ(m.ts, 1000 + m.seq);
  }
  EXPECT_EQ(log.state->find_key("k3"), 3u);
  EXPECT_EQ(log.state->find_key("k8"), 8u);
  EXPECT_FALSE(log.state->find_key("k9"));
  EXPECT_TRUE(log.state->covers(0));
  // Another room is untouched, and has the database's epoch.
  auto other = again.load_log("s", 100);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other.state->seq(), 0u);
  EXPECT_EQ(other.state->epoch(), again.epoch());
}

TEST_F(SqliteStore, RetentionByCountAndCapacityOnLoad) {
  auto& store = open();
  ASSERT_EQ(store.commit({messages("r", "e", 1, 10, 7)}), "");
  EXPECT_EQ(scalar("SELECT count(*) FROM messages"), 4); // 7..10

  auto all = store.load_log("r", 100);
  ASSERT_TRUE(all.ok()) << all.error;
  EXPECT_EQ(seqs(*all.state), (std::vector<std::uint64_t>{7, 8, 9, 10}));
  EXPECT_FALSE(all.state->covers(5));
  EXPECT_TRUE(all.state->covers(6));
  EXPECT_FALSE(all.state->find_key("k6"));

  auto two = store.load_log("r", 2);
  ASSERT_TRUE(two.ok()) << two.error;
  EXPECT_EQ(seqs(*two.state), (std::vector<std::uint64_t>{9, 10}));
  EXPECT_EQ(two.state->seq(), 10u);
  EXPECT_FALSE(two.state->find_key("k8"));
  EXPECT_EQ(two.state->find_key("k9"), 9u);

  auto none = store.load_log("r", 0);
  ASSERT_TRUE(none.ok()) << none.error;
  EXPECT_EQ(none.state->seq(), 10u);
  EXPECT_EQ(none.state->size(), 0u);

  // Every message gone: the seq stays.
  ASSERT_EQ(store.commit({messages("r", "e", 11, 11, 12)}), "");
  EXPECT_EQ(scalar("SELECT count(*) FROM messages"), 0);
  close();
  auto empty = open().load_log("r", 100);
  ASSERT_TRUE(empty.ok()) << empty.error;
  EXPECT_EQ(empty.state->seq(), 11u);
  EXPECT_EQ(empty.state->epoch(), "e");
  EXPECT_EQ(empty.state->size(), 0u);
  EXPECT_TRUE(empty.state->covers(11));
  EXPECT_FALSE(empty.state->covers(10));
}

TEST_F(SqliteStore, ExpiryKeepsTheNewestConsecutiveRun) {
  auto& store = open();
  // Publication times need not grow with seq (clocks move): 2 outlives 1 and 3.
  store::room_writes batch{"r", "e", {}, 0, {}, {}};
  const std::uint64_t ts[] = {10, 50, 20, 60, 70, 80};
  for (std::uint64_t seq = 1; seq <= 6; ++seq)
    batch.messages.push_back(message(seq, "k" + std::to_string(seq), ts[seq - 1]));
  ASSERT_EQ(store.commit({batch}), "");

  store.expire_messages(30);
  EXPECT_EQ(scalar("SELECT count(*) FROM messages"), 4); // 2, 4, 5, 6
  auto log = store.load_log("r", 100);
  ASSERT_TRUE(log.ok()) << log.error;
  EXPECT_EQ(seqs(*log.state), (std::vector<std::uint64_t>{4, 5, 6}));
  EXPECT_EQ(log.state->seq(), 6u);
  EXPECT_FALSE(log.state->find_key("k2"));

  store.expire_messages(1000);
  EXPECT_EQ(scalar("SELECT count(*) FROM messages"), 0);
  auto empty = store.load_log("r", 100);
  ASSERT_TRUE(empty.ok()) << empty.error;
  EXPECT_EQ(empty.state->seq(), 6u);
  EXPECT_EQ(empty.state->size(), 0u);

  // The newest one expired before older ones: none is kept (the log must end at its seq).
  store::room_writes late{"r", "e", {}, 0, {}, {}};
  late.messages.push_back(message(7, {}, 5000));
  late.messages.push_back(message(8, {}, 10));
  ASSERT_EQ(store.commit({late}), "");
  store.expire_messages(100);
  EXPECT_EQ(scalar("SELECT count(*) FROM messages"), 1);
  auto gap = store.load_log("r", 100);
  ASSERT_TRUE(gap.ok()) << gap.error;
  EXPECT_EQ(gap.state->seq(), 8u);
  EXPECT_EQ(gap.state->size(), 0u);
}

TEST_F(SqliteStore, DocumentSurvivesARestartWithItsLogAndKeys) {
  auto& store = open();
  auto fresh = store.load_document("d", 100);
  ASSERT_TRUE(fresh.ok()) << fresh.error;
  editor live{std::move(*fresh.state), {}};

  live.edit(ot::operation().insert("héllo wörld 😀"), "k1", "ann");
  live.edit(ot::operation().retain(5).insert(", 🎉"), "k2", "bob");
  live.edit(ot::operation().insert("H").remove(1), "k3", "ann");
  ASSERT_EQ(store.commit({live.take("d")}), "");
  live.edit(ot::operation().retain(2).remove(2).insert("𝄞"), "k4", "bob");
  // A trailing retain: kept only in base_length, which must come back too.
  live.edit(ot::operation().retain(1).insert("x").retain(3), "k5", "ann");
  ASSERT_EQ(live.pending.back().op.base_length(), 4u);
  ASSERT_EQ(store.commit({live.take("d", live.snapshot(3))}), "");
  EXPECT_EQ(scalar("SELECT rev FROM documents WHERE room = 'd'"), 5);
  EXPECT_EQ(scalar("SELECT min(rev) FROM operations WHERE room = 'd'"), 3);
  live.edit(ot::operation().retain(3).insert("😀😀"), "", "bob");
  live.edit(ot::operation().remove(1), "k7", "ann");
  ASSERT_EQ(store.commit({live.take("d")}), "");
  const std::string text = live.document.text().to_string();
  ASSERT_EQ(text, "xé😀😀𝄞o, 🎉 wörld 😀");
  close();

  auto& again = open();
  auto small = again.load_document("d", 3);
  ASSERT_TRUE(small.ok()) << small.error;
  auto& document = *small.state;
  EXPECT_EQ(document.rev(), 7u);
  EXPECT_EQ(document.text().to_string(), text);
  EXPECT_EQ(document.epoch(), again.epoch());
  EXPECT_EQ(revs(document), (std::vector<std::uint64_t>{5, 6, 7}));
  EXPECT_TRUE(document.covers(4));
  EXPECT_FALSE(document.covers(3));
  const auto& original = live.document.log();
  for (const auto& op : document.log()) {
    const auto& expected = original[op.rev - 1];
    EXPECT_EQ(op.op, expected.op) << op.rev;
    EXPECT_EQ(op.op.base_length(), expected.op.base_length()) << op.rev;
    EXPECT_EQ(op.user, expected.user) << op.rev;
    EXPECT_EQ(op.key, expected.key) << op.rev;
  }
  // Keys from the snapshot's history and from the replayed operations both deduplicate.
  auto again5 = document.submit(2, ot::operation().insert("?"), "k5", "ann");
  EXPECT_EQ(again5.kind, core::document_sequencer::outcome::duplicate);
  EXPECT_EQ(again5.rev, 5u);
  auto again7 = document.submit(7, ot::operation().insert("?"), "k7", "ann");
  EXPECT_EQ(again7.kind, core::document_sequencer::outcome::duplicate);
  EXPECT_EQ(again7.rev, 7u);

  // A larger log holds every operation compaction left: 3..7.
  auto large = again.load_document("d", 10);
  ASSERT_TRUE(large.ok()) << large.error;
  EXPECT_EQ(revs(*large.state), (std::vector<std::uint64_t>{3, 4, 5, 6, 7}));
  EXPECT_EQ(large.state->text().to_string(), text);
  EXPECT_TRUE(large.state->covers(2));
  EXPECT_FALSE(large.state->covers(1));
  auto again3 = large.state->submit(7, ot::operation().insert("?"), "k3", "ann");
  EXPECT_EQ(again3.kind, core::document_sequencer::outcome::duplicate);
  EXPECT_EQ(again3.rev, 3u);
}

// A run of one author's operations is one row (at most max_run_row); a load whose range
// starts inside a row takes only the row's operations from there, with their keys.
TEST_F(SqliteStore, RunsAreRowsAndLoadsSplitThemWithTheirKeys) {
  constexpr std::size_t row = store::sqlite_store::max_run_row;
  auto& store = open();
  auto fresh = store.load_document("d", 10);
  ASSERT_TRUE(fresh.ok()) << fresh.error;
  editor live{std::move(*fresh.state), {}};
  const std::size_t ann_ops = row + 44;
  for (std::size_t i = 1; i <= ann_ops; ++i)
    live.edit(ot::operation().retain(i - 1).insert(i % 2 ? "é" : "😀"), "a" + std::to_string(i));
  for (std::size_t i = 1; i <= 3; ++i)
    live.edit(ot::operation().insert("b"), "b" + std::to_string(i), "bob");
  live.edit(ot::operation().remove(1), "", "ann"); // no key
  const auto written = live.pending;               // every operation, by rev - 1
  ASSERT_EQ(store.commit({live.take("d")}), "");
  const std::int64_t top = static_cast<std::int64_t>(ann_ops + 4);
  EXPECT_EQ(scalar("SELECT count(*) FROM operations WHERE room = 'd'"), 4); // row, 44, 3, 1
  EXPECT_EQ(scalar("SELECT sum(ops) FROM operations WHERE room = 'd'"), top);
  EXPECT_EQ(scalar("SELECT max(rev) FROM operations WHERE room = 'd'"), top);
  EXPECT_EQ(scalar("SELECT ops FROM operations WHERE room = 'd' AND rev = " + std::to_string(row)),
            static_cast<std::int64_t>(row));
  // A snapshot keeping the last 10: the first row goes, the second (row+1 … ann_ops) stays
  // whole although most of it is older.
  const std::uint64_t keep_from = static_cast<std::uint64_t>(top) - 10 + 1;
  ASSERT_EQ(store.commit({live.take("d", live.snapshot(keep_from))}), "");
  EXPECT_EQ(scalar("SELECT count(*) FROM operations WHERE room = 'd'"), 3);
  const std::string text = live.document.text().to_string();
  close();

  auto& again = open();
  for (const std::size_t capacity : {std::size_t{10}, std::size_t{100}}) {
    SCOPED_TRACE(capacity);
    auto loaded = again.load_document("d", capacity);
    ASSERT_TRUE(loaded.ok()) << loaded.error;
    auto& document = *loaded.state;
    EXPECT_EQ(document.rev(), static_cast<std::uint64_t>(top));
    EXPECT_EQ(document.text().to_string(), text);
    // From inside the second row: 10 kept, or everything from the row's start.
    const std::uint64_t first = capacity == 10 ? keep_from : row + 1;
    const auto kept = revs(document);
    ASSERT_FALSE(kept.empty());
    EXPECT_EQ(kept.front(), first);
    EXPECT_EQ(kept.back(), static_cast<std::uint64_t>(top));
    EXPECT_EQ(kept.size(), static_cast<std::size_t>(top) - first + 1);
    EXPECT_TRUE(document.covers(first - 1));
    EXPECT_FALSE(document.covers(first - 2));
    for (const auto& op : document.log()) {
      const auto& expected = written[op.rev - 1];
      ASSERT_EQ(expected.rev, op.rev);
      EXPECT_EQ(op.op, expected.op) << op.rev;
      EXPECT_EQ(op.user, expected.user) << op.rev;
      EXPECT_EQ(op.key, expected.key) << op.rev;
    }
    // Catch-up from a revision inside a run: exactly the operations after it.
    const auto after = document.after(first + 1);
    ASSERT_EQ(after.size(), static_cast<std::size_t>(top) - first - 1);
    EXPECT_EQ(after.front()->rev, first + 2);
    // A retry after the restart, with a key from inside the run: its first revision.
    const std::string key = "a" + std::to_string(ann_ops - 1);
    auto retry =
        document.submit(static_cast<std::uint64_t>(top), ot::operation().insert("?"), key, "ann");
    EXPECT_EQ(retry.kind, core::document_sequencer::outcome::duplicate);
    EXPECT_EQ(retry.rev, ann_ops - 1);
    auto bob =
        document.submit(static_cast<std::uint64_t>(top), ot::operation().insert("?"), "b2", "bob");
    EXPECT_EQ(bob.kind, core::document_sequencer::outcome::duplicate);
    EXPECT_EQ(bob.rev, ann_ops + 2);
  }

  // The document goes on after the restart: a new run follows the old rows.
  auto loaded = again.load_document("d", 10);
  ASSERT_TRUE(loaded.ok()) << loaded.error;
  editor more{std::move(*loaded.state), {}};
  for (int i = 0; i < 5; ++i)
    more.edit(ot::operation().insert("z"), "c" + std::to_string(i));
  ASSERT_EQ(again.commit({more.take("d")}), "");
  const std::string later = more.document.text().to_string();
  close();
  auto& third = open();
  auto reloaded = third.load_document("d", 10);
  ASSERT_TRUE(reloaded.ok()) << reloaded.error;
  EXPECT_EQ(reloaded.state->rev(), static_cast<std::uint64_t>(top) + 5);
  EXPECT_EQ(reloaded.state->text().to_string(), later);
}

// The document actor hands its operations over in runs (store::operation_run): a run is a
// row, a lone operation keeps schema 1's row, and they load as the operations were applied.
TEST_F(SqliteStore, RunsAreRowsAndLoadAsApplied) {
  auto& store = open();
  editor live{core::document_sequencer(1000, store.epoch()), {}};
  const std::size_t row = store::operation_run::max_ops;
  for (std::size_t i = 1; i <= row + 10; ++i)
    live.edit(ot::operation().retain(i - 1).insert(i % 3 ? "a" : "😀"), "k" + std::to_string(i));
  live.edit(ot::operation().insert("b"), "b1", "bob"); // a lone operation
  live.edit(ot::operation().insert("c"), "", "ann");   // no key
  live.edit(ot::operation().remove(1), "c2", "ann");
  const auto applied = live.pending;
  auto in_runs = live.take("runs");
  ASSERT_EQ(in_runs.runs.size(), 4u); // row, 10, bob's, ann's two
  EXPECT_EQ(in_runs.operation_count(), applied.size());
  ASSERT_EQ(store.commit({in_runs}), "");
  EXPECT_EQ(scalar("SELECT count(*) FROM operations WHERE room = 'runs'"), 4);
  EXPECT_EQ(scalar("SELECT count(*) FROM operations WHERE room = 'runs' AND ops = 1 AND "
                   "key = 'b1' AND user = 'bob'"),
            1);
  close();

  auto& again = open();
  auto runs = again.load_document("runs", 1000);
  ASSERT_TRUE(runs.ok()) << runs.error;
  EXPECT_EQ(runs.state->text().to_string(), live.document.text().to_string());
  EXPECT_EQ(runs.state->rev(), live.document.rev());
  ASSERT_EQ(runs.state->log().size(), applied.size());
  for (std::size_t i = 0; i < applied.size(); ++i) {
    const auto& a = runs.state->log()[i];
    const auto& b = applied[i];
    EXPECT_EQ(a.rev, b.rev);
    EXPECT_EQ(a.op, b.op) << a.rev;
    EXPECT_EQ(a.user, b.user) << a.rev;
    EXPECT_EQ(a.key, b.key) << a.rev;
  }
  auto retry = runs.state->submit(0, ot::operation().insert("?"), "k7", "ann");
  EXPECT_EQ(retry.kind, core::document_sequencer::outcome::duplicate);
  EXPECT_EQ(retry.rev, 7u);
}

// A data directory of schema 1 (one row per operation, no `ops` column) opens: it is
// migrated, its operations load with their keys, and new runs are written beside them.
TEST_F(SqliteStore, ASchemaOneDatabaseIsMigrated) {
  auto& store = open();
  editor live{core::document_sequencer(10, store.epoch()), {}};
  live.edit(ot::operation().insert("ab"), "x1", "ann");
  live.edit(ot::operation().retain(2).insert("c"), "x2", "bob");
  live.edit(ot::operation().retain(3).insert("d"), "x3", "ann");
  ASSERT_EQ(store.commit({live.take("d")}), "");
  close();
  // Schema 1's shape exactly: the table as it created it, the rows as it wrote them.
  sql("BEGIN;"
      "CREATE TABLE old(room TEXT NOT NULL, rev INTEGER NOT NULL, user TEXT NOT NULL,"
      "  key TEXT NOT NULL, op BLOB NOT NULL, PRIMARY KEY(room, rev)) WITHOUT ROWID;"
      "INSERT INTO old SELECT room, rev, user, key, op FROM operations;"
      "DROP TABLE operations; ALTER TABLE old RENAME TO operations;"
      "PRAGMA user_version = 1; COMMIT;");
  ASSERT_EQ(scalar("SELECT count(*) FROM pragma_table_info('operations') WHERE name = 'ops'"), 0);

  auto& again = open();
  EXPECT_EQ(scalar("PRAGMA user_version"), 2);
  auto loaded = again.load_document("d", 10);
  ASSERT_TRUE(loaded.ok()) << loaded.error;
  EXPECT_EQ(loaded.state->text().to_string(), "abcd");
  EXPECT_EQ(revs(*loaded.state), (std::vector<std::uint64_t>{1, 2, 3}));
  auto retry = loaded.state->submit(3, ot::operation().insert("?"), "x2", "bob");
  EXPECT_EQ(retry.kind, core::document_sequencer::outcome::duplicate);
  EXPECT_EQ(retry.rev, 2u);
  editor more{std::move(*loaded.state), {}};
  for (int i = 0; i < 3; ++i)
    more.edit(ot::operation().insert("z"), "c" + std::to_string(i));
  ASSERT_EQ(again.commit({more.take("d")}), "");
  close();

  auto& third = open();
  auto reloaded = third.load_document("d", 10);
  ASSERT_TRUE(reloaded.ok()) << reloaded.error;
  EXPECT_EQ(reloaded.state->text().to_string(), "zzzabcd");
  EXPECT_EQ(revs(*reloaded.state), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(scalar("SELECT count(*) FROM operations WHERE room = 'd'"), 4);
}

TEST_F(SqliteStore, ManyRoomsInOneCommit) {
  auto& store = open();
  editor live{core::document_sequencer(10, store.epoch()), {}};
  live.edit(ot::operation().insert("abc"), "a1");
  live.edit(ot::operation().retain(3).insert("d"), "a2");
  std::vector<store::room_writes> batches;
  batches.push_back(messages("a", "ea", 1, 2));
  batches.push_back(messages("b", "eb", 1, 3));
  batches.push_back(live.take("doc", live.snapshot(0)));
  batches.push_back(messages("a", "ea", 3, 4, 2)); // the same room again, in order
  ASSERT_EQ(store.commit(batches), "");
  close();

  auto& again = open();
  auto a = again.load_log("a", 10);
  auto b = again.load_log("b", 10);
  auto doc = again.load_document("doc", 10);
  ASSERT_TRUE(a.ok() && b.ok() && doc.ok()) << a.error << b.error << doc.error;
  EXPECT_EQ(seqs(*a.state), (std::vector<std::uint64_t>{2, 3, 4}));
  EXPECT_EQ(a.state->epoch(), "ea");
  EXPECT_EQ(seqs(*b.state), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(b.state->epoch(), "eb");
  EXPECT_EQ(doc.state->rev(), 2u);
  EXPECT_EQ(doc.state->text().to_string(), "abcd");
  EXPECT_EQ(revs(*doc.state), (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(SqliteStore, AFailedCommitWritesNothingOfItsTransaction) {
  auto& store = open();
  ASSERT_EQ(store.commit({messages("a", "e", 1, 2)}), "");
  // "a" seq 2 again, after batches that would work: the duplicate fails the whole commit.
  auto error =
      store.commit({messages("a", "e", 3, 3), messages("c", "e", 1, 1), messages("a", "e", 2, 2)});
  EXPECT_NE(error.find("the store could not write: "), std::string::npos) << error;
  EXPECT_EQ(store.load_log("a", 10).state->seq(), 2u);
  EXPECT_EQ(store.load_log("c", 10).state->seq(), 0u);
  ASSERT_EQ(store.commit({messages("a", "e", 3, 3)}), "");
  EXPECT_EQ(store.load_log("a", 10).state->seq(), 3u);
}

TEST_F(SqliteStore, AFullDiskFailsTheCommitAndTheNextOneWorks) {
  mount_point_ = dir_ + "/disk";
  fs::create_directory(mount_point_);
  if (mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=512k") != 0) {
    const int error = errno;
    mount_point_.clear();
    if (error == EPERM) GTEST_SKIP() << "mounting a tmpfs needs privileges";
    FAIL() << "mount: " << std::strerror(error);
  }
  data_ = mount_point_ + "/data";
  auto& store = open();
  ASSERT_EQ(store.commit({messages("a", "e", 1, 1)}), "");

  store::room_writes big{"b", "e", {}, 0, {}, {}};
  big.messages.push_back(message(1, {}, 1000, 2 << 20));
  const auto error = store.commit({messages("a", "e", 2, 2), big});
  EXPECT_EQ(error, "the store could not write: disk is full");
  EXPECT_EQ(store.load_log("a", 10).state->seq(), 1u);
  EXPECT_EQ(store.load_log("b", 10).state->seq(), 0u);

  ASSERT_EQ(store.commit({messages("a", "e", 2, 3)}), "");
  auto a = store.load_log("a", 10);
  ASSERT_TRUE(a.ok()) << a.error;
  EXPECT_EQ(seqs(*a.state), (std::vector<std::uint64_t>{1, 2, 3}));
  close();
  auto reopened = open().load_log("a", 10);
  ASSERT_TRUE(reopened.ok()) << reopened.error;
  EXPECT_EQ(reopened.state->seq(), 3u);
}

TEST_F(SqliteStore, AWriteErrorFailsTheCommitAndTheNextOneWorks) {
  auto& store = open();
  ASSERT_EQ(store.commit({messages("a", "e", 1, 1)}), "");
  // A file size limit makes the WAL's growth fail (EFBIG: SQLITE_IOERR), as a bad disk would.
  struct limit_guard {
    rlimit old{};
    void (*old_handler)(int) = nullptr;
    limit_guard() {
      getrlimit(RLIMIT_FSIZE, &old);
      old_handler = std::signal(SIGXFSZ, SIG_IGN);
      rlimit small = old;
      small.rlim_cur = 512 << 10;
      setrlimit(RLIMIT_FSIZE, &small);
    }
    ~limit_guard() {
      setrlimit(RLIMIT_FSIZE, &old);
      std::signal(SIGXFSZ, old_handler);
    }
  };
  std::string error;
  {
    limit_guard guard;
    store::room_writes big{"b", "e", {}, 0, {}, {}};
    big.messages.push_back(message(1, {}, 1000, 2 << 20));
    error = store.commit({messages("a", "e", 2, 2), big});
  }
  EXPECT_EQ(error.rfind("the store could not write: ", 0), 0u) << error;
  EXPECT_EQ(store.load_log("a", 10).state->seq(), 1u);
  EXPECT_EQ(store.load_log("b", 10).state->seq(), 0u);
  ASSERT_EQ(store.commit({messages("a", "e", 2, 2)}), "");
  EXPECT_EQ(store.load_log("a", 10).state->seq(), 2u);
}

TEST_F(SqliteStore, DamagedRowsFailOnlyTheirRoom) {
  auto& store = open();
  std::vector<store::room_writes> batches;
  for (const char* room : {"healthy", "garbage", "hole", "orphan", "misfit", "badtext"}) {
    editor live{core::document_sequencer(10, store.epoch()), {}};
    // Authors take turns: one row per operation.
    live.edit(ot::operation().insert("ab"), "x1", "ann");
    live.edit(ot::operation().retain(2).insert("c"), "x2", "bob");
    live.edit(ot::operation().retain(3).insert("d"), "x3", "ann");
    batches.push_back(live.take(room));
  }
  // One author's run: one row of three operations.
  for (const char* room : {"cut", "toomany", "tooshort", "runmisfit"}) {
    editor live{core::document_sequencer(10, store.epoch()), {}};
    live.edit(ot::operation().insert("ab"), "x1");
    live.edit(ot::operation().retain(2).insert("c"), "x2");
    live.edit(ot::operation().retain(3).insert("d"), "x3");
    batches.push_back(live.take(room));
  }
  batches.push_back(messages("fine", "e", 1, 3));
  batches.push_back(messages("ahead", "e", 1, 3));
  batches.push_back(messages("lost", "e", 1, 3));
  ASSERT_EQ(store.commit(batches), "");
  close();

  sql("UPDATE operations SET op = x'c1' WHERE room = 'garbage' AND rev = 2;"
      "DELETE FROM operations WHERE room = 'hole' AND rev = 2;"
      "DELETE FROM documents WHERE room = 'orphan';"
      "UPDATE operations SET op = x'91d09c' WHERE room = 'misfit' AND rev = 2;" // [-100]
      "UPDATE documents SET text = CAST(x'ff' AS TEXT) WHERE room = 'badtext';"
      "UPDATE rooms SET seq = 2 WHERE room = 'ahead';"
      "UPDATE operations SET op = substr(op, 1, length(op) - 1) WHERE room = 'cut';"
      "UPDATE operations SET ops = 4 WHERE room = 'toomany';"
      "UPDATE operations SET ops = 2 WHERE room = 'tooshort';"
      // The second entry's [2, "c"] becomes [9, "c"]: retains past the end.
      "UPDATE operations SET op = CAST(replace(op, x'9202a163', x'9209a163') AS BLOB) WHERE room = "
      "'runmisfit';"
      "DELETE FROM rooms WHERE room = 'lost';");

  auto& again = open();
  auto expect_failure = [&](const std::string& room, const std::string& why, bool document) {
    const std::string error =
        document ? again.load_document(room, 10).error : again.load_log(room, 10).error;
    EXPECT_NE(error.find(room), std::string::npos) << error;
    EXPECT_NE(error.find(why), std::string::npos) << error;
  };
  expect_failure("garbage", "operation 2 cannot be read", true);
  expect_failure("hole", "operation 2 is missing", true);
  expect_failure("orphan", "operations but no text", true);
  expect_failure("misfit", "operation 2 does not fit the text", true);
  expect_failure("badtext", "not valid UTF-8", true);
  expect_failure("ahead", "message 3 is newer than its sequence number 2", false);
  expect_failure("lost", "messages but no sequence number", false);
  expect_failure("cut", "operations 1 to 3 cannot be read", true);
  expect_failure("toomany", "an operation is damaged", true);
  expect_failure("tooshort", "operations 2 to 3 cannot be read (bytes after", true);
  expect_failure("runmisfit", "operation 2 does not fit the text", true);
  EXPECT_FALSE(again.load_document("garbage", 10).ok());
  EXPECT_FALSE(again.load_log("lost", 10).ok());

  auto healthy = again.load_document("healthy", 10);
  ASSERT_TRUE(healthy.ok()) << healthy.error;
  EXPECT_EQ(healthy.state->text().to_string(), "abcd");
  auto fine = again.load_log("fine", 10);
  ASSERT_TRUE(fine.ok()) << fine.error;
  EXPECT_EQ(fine.state->seq(), 3u);
}

TEST_F(SqliteStore, LoadsFromSeveralThreadsSeeWholeCommits) {
  auto& store = open();
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<int> loads{0};
  auto load = [&] {
    std::uint64_t last = 0;
    // At least a few loads even if the commits finish first.
    for (int i = 0; !done.load() || i < 20; ++i) {
      auto log = store.load_log("r", 4);
      ++loads;
      // Each commit adds two messages and keeps four: a load that mixed two commits would
      // fail, or show a log not ending at its seq.
      if (!log.ok() || log.state->seq() % 2 != 0 || log.state->seq() < last ||
          log.state->size() != std::min<std::uint64_t>(4, log.state->seq()) ||
          (log.state->size() > 0 && log.state->messages().back().seq != log.state->seq()))
        ++failures;
      if (log.ok()) last = log.state->seq();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i)
    threads.emplace_back(load);
  std::string errors;
  for (std::uint64_t seq = 1; seq < 200; seq += 2)
    errors += store.commit({messages("r", "e", seq, seq + 1, seq > 3 ? seq - 2 : 0)});
  done = true;
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(errors, "");
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(loads.load(), 60);
  EXPECT_EQ(store.load_log("r", 4).state->seq(), 200u);
}

TEST_F(SqliteStore, RandomBytesAreRefused) {
  fs::create_directories(data_);
  std::mt19937 random(7);
  std::string bytes(16384, '\0');
  for (auto& c : bytes)
    c = static_cast<char>(random());
  std::ofstream(db_path(), std::ios::binary) << bytes;
  const auto error = open_error();
  EXPECT_NE(error.find(db_path()), std::string::npos) << error;
  EXPECT_NE(error.find("not a database"), std::string::npos) << error;
  EXPECT_NE(error.find("restore it from a backup or move it away"), std::string::npos) << error;
}

TEST_F(SqliteStore, DamagedPagesAreRefused) {
  write_some_pages();
  {
    std::fstream file(db_path(), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(4096 * 3);
    const std::string junk(4096 * 3, '\xa5');
    file.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  const auto error = open_error();
  EXPECT_NE(error.find(db_path()), std::string::npos) << error;
  EXPECT_NE(error.find("restore it from a backup"), std::string::npos) << error;
}

TEST_F(SqliteStore, ATruncatedDatabaseIsRefused) {
  write_some_pages();
  fs::resize_file(db_path(), fs::file_size(db_path()) / 2);
  const auto error = open_error();
  EXPECT_NE(error.find(db_path()), std::string::npos) << error;
}

TEST_F(SqliteStore, ANewerSchemaIsRefused) {
  open();
  close();
  sql("PRAGMA user_version = 3");
  const auto error = open_error();
  EXPECT_NE(error.find(db_path()), std::string::npos) << error;
  EXPECT_NE(error.find("schema version 3 is newer than this engine knows"), std::string::npos)
      << error;
}

TEST_F(SqliteStore, AnotherApplicationsDatabaseIsRefused) {
  fs::create_directories(data_);
  sql("CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES('mine')");
  const auto error = open_error();
  EXPECT_NE(error.find(db_path()), std::string::npos) << error;
  EXPECT_NE(error.find("not Troupe's"), std::string::npos) << error;
  EXPECT_EQ(scalar("SELECT count(*) FROM sqlite_schema"), 1); // left as it was
}

TEST_F(SqliteStore, UnusablePathsAreRefused) {
  std::ofstream(data_) << "a file where the data directory should be";
  auto error = open_error();
  EXPECT_NE(error.find("the data directory " + data_), std::string::npos) << error;

  fs::remove(data_);
  fs::create_directories(db_path()); // a directory where the database should be
  error = open_error();
  EXPECT_NE(error.find("the store " + db_path() + " cannot be used"), std::string::npos) << error;
}

} // namespace

TEST_F(SqliteStore, OneEngineAtATimePerDataDirectory) {
  auto& first = open();
  const std::string epoch = first.epoch();
  try {
    store::sqlite_store second(store::sqlite_settings{data_, true});
    FAIL() << "a second store opened the same directory";
  } catch (const store::store_error& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another engine"), std::string::npos)
        << e.what();
  }
  close(); // the lock goes with the store
  EXPECT_EQ(open().epoch(), epoch);
}
