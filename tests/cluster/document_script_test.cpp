// The document scripts (cluster/scripts/doc_commit.lua, doc_read.lua) against a real
// redis-server started by the test on a free loopback port, over synchronous hiredis
// contexts: the epoch made by the first read, the revision check, dedup by key, trimming
// with the snapshot, and what the channel carries.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>

#include "cluster/document_script.hpp"
#include "tests/support/redis_server.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

using context_ptr = std::unique_ptr<redisContext, decltype(&redisFree)>;
using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

context_ptr connect(const test::redis_server& redis) {
  timeval timeout{5, 0};
  context_ptr c(redisConnectWithTimeout("127.0.0.1", redis.port(), timeout), &redisFree);
  if (!c || c->err) throw std::runtime_error("cannot connect to redis-server");
  redisSetTimeout(c.get(), timeout); // no read waits forever
  return c;
}

cluster::redis_reply run(redisContext* c, const cluster::redis_command& cmd) {
  auto argv = cmd.argv();
  auto lens = cmd.argvlen();
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) throw std::runtime_error(std::string("redis: ") + c->errstr);
  reply_ptr raw{r, &freeReplyObject};
  return cluster::redis_reply::from(*raw);
}

cluster::redis_reply run(redisContext* c, std::vector<std::string> args) {
  return run(c, cluster::redis_command{std::move(args)});
}

// As the engine does: EVALSHA, and on NOSCRIPT load the script and run it again.
cluster::redis_reply eval(redisContext* c, const cluster::redis_script& script,
                          const cluster::script_call& call) {
  auto r = run(c, cluster::eval_command(script, call));
  if (r.is_error() && r.str.starts_with("NOSCRIPT")) {
    run(c, {"SCRIPT", "LOAD", script.text()});
    r = run(c, cluster::eval_command(script, call));
  }
  return r;
}

ot::operation insert_at(std::size_t pos, std::string_view text) {
  ot::operation op;
  op.retain(pos).insert(text);
  return op;
}

class DocumentScript : public ::testing::Test {
protected:
  static void SetUpTestSuite() { redis_ = new test::redis_server(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override {
    c_ = std::make_unique<context_ptr>(connect(*redis_));
    run(c(), {"FLUSHALL"});
  }
  redisContext* c() { return c_->get(); }

  cluster::document_read load(std::string_view candidate = "epoch-a") {
    return cluster::decode_document_read(
        eval(c(), cluster::doc_read_script(), cluster::load_call(keys_, candidate)));
  }
  cluster::document_read range(std::uint64_t from) {
    return cluster::decode_document_read(
        eval(c(), cluster::doc_read_script(), cluster::range_call(keys_, from)));
  }
  cluster::commit_result commit(std::uint64_t base, const ot::operation& op, std::string_view key,
                                std::uint64_t log = 100, std::string_view epoch = "epoch-a",
                                std::optional<std::string_view> snapshot = std::nullopt) {
    const auto packed = cluster::pack_op(op);
    return cluster::decode_commit_reply(
        eval(c(), cluster::doc_commit_script(),
             cluster::commit_call(keys_, {epoch, log, base, "alice", key,
                                          "node-1:" + std::string(key), packed, snapshot})));
  }

  static test::redis_server* redis_;
  std::unique_ptr<context_ptr> c_;
  cluster::document_keys keys_ = cluster::document_keys_for("notes");
};
test::redis_server* DocumentScript::redis_ = nullptr;

} // namespace

TEST(DocumentScriptKeys, OneHashTagPerRoom) {
  const auto k = cluster::document_keys_for("team:7");
  EXPECT_EQ(k.meta, "tr:{team:7}:dmeta");
  EXPECT_EQ(k.ops, "tr:{team:7}:dops");
  EXPECT_EQ(k.keys, "tr:{team:7}:dkeys");
  EXPECT_EQ(k.snapshot, "tr:{team:7}:dsnap");
  EXPECT_EQ(k.channel, "tr:{team:7}:dch");
}

TEST_F(DocumentScript, TheFirstLoadMakesTheEpochAndACommitNeedsIt) {
  // No document yet: a commit is refused (the node must load it first).
  EXPECT_EQ(commit(0, insert_at(0, "x"), "k0").status, cluster::commit_status::epoch);
  auto first = load("epoch-a");
  EXPECT_EQ(first.epoch, "epoch-a");
  EXPECT_EQ(first.rev, 0u);
  EXPECT_TRUE(first.entries.empty());
  EXPECT_EQ(load("epoch-b").epoch, "epoch-a") << "a later candidate changes nothing";
  EXPECT_TRUE(range(1).epoch == "epoch-a");

  const auto other = commit(0, insert_at(0, "x"), "k1", 100, "epoch-z");
  EXPECT_EQ(other.status, cluster::commit_status::epoch) << "another epoch's operation";
  EXPECT_EQ(other.epoch, "epoch-a");

  // Redis lost the document: the next load starts a new epoch over whatever was left.
  ASSERT_EQ(commit(0, insert_at(0, "x"), "k1").status, cluster::commit_status::accepted);
  run(c(), {"DEL", keys_.meta});
  EXPECT_EQ(range(1).epoch, "") << "a range read creates nothing";
  const auto again = load("epoch-b");
  EXPECT_EQ(again.epoch, "epoch-b");
  EXPECT_EQ(again.rev, 0u);
  EXPECT_TRUE(again.entries.empty());
  EXPECT_EQ(commit(0, insert_at(0, "y"), "k1", 100, "epoch-b").rev, 1u)
      << "the lost epoch's keys are gone with it";
}

TEST_F(DocumentScript, AStaleBaseIsRefusedWithTheCurrentRevAndTheMissedOperations) {
  load();
  EXPECT_EQ(commit(0, insert_at(0, "a"), "k1").rev, 1u);
  EXPECT_EQ(commit(1, insert_at(1, "b"), "k2").rev, 2u);
  EXPECT_EQ(commit(2, insert_at(2, "c"), "k3").rev, 3u);

  const auto stale = commit(1, insert_at(0, "z"), "k4");
  EXPECT_EQ(stale.status, cluster::commit_status::stale);
  EXPECT_EQ(stale.rev, 3u);
  ASSERT_EQ(stale.missed.size(), 2u);
  EXPECT_EQ(stale.missed[0].rev, 2u);
  EXPECT_EQ(stale.missed[0].key, "k2");
  EXPECT_EQ(stale.missed[0].user, "alice");
  EXPECT_EQ(stale.missed[0].cid, "node-1:k2");
  EXPECT_EQ(stale.missed[0].op, insert_at(1, "b"));
  EXPECT_EQ(stale.missed[1].rev, 3u);

  const auto ahead = commit(7, insert_at(0, "z"), "k5");
  EXPECT_EQ(ahead.status, cluster::commit_status::stale);
  EXPECT_EQ(ahead.rev, 3u);
  EXPECT_TRUE(ahead.missed.empty());

  // Nothing of the refused ones was kept.
  const auto doc = load();
  EXPECT_EQ(doc.rev, 3u);
  ASSERT_EQ(doc.entries.size(), 3u);
  EXPECT_EQ(commit(3, insert_at(0, "z"), "k4").rev, 4u) << "transformed and retried";
}

TEST_F(DocumentScript, AKnownKeyIsAcknowledgedWithItsFirstRevWhateverItsBase) {
  load();
  EXPECT_EQ(commit(0, insert_at(0, "a"), "k1").rev, 1u);
  EXPECT_EQ(commit(1, insert_at(1, "b"), "k2").rev, 2u);
  for (std::uint64_t base : {0u, 1u, 2u, 9u}) {
    const auto dup = commit(base, insert_at(0, "a"), "k1");
    EXPECT_EQ(dup.status, cluster::commit_status::duplicate) << base;
    EXPECT_EQ(dup.rev, 1u);
  }
  EXPECT_EQ(load().rev, 2u) << "applied once";
  // No key: never deduplicated.
  EXPECT_EQ(commit(2, insert_at(0, "c"), "").rev, 3u);
  EXPECT_EQ(commit(3, insert_at(0, "c"), "").rev, 4u);
  EXPECT_EQ(run(c(), {"ZCARD", keys_.keys}).integer, 2);
}

TEST_F(DocumentScript, TheLogIsTrimmedToItsLengthButNeverPastTheSnapshot) {
  load();
  // log 3, no snapshot yet: everything from rev 1 stays (a load replays from the empty text).
  for (std::uint64_t r = 0; r < 6; ++r)
    ASSERT_EQ(commit(r, insert_at(r, "x"), "k" + std::to_string(r + 1), 3).rev, r + 1);
  EXPECT_EQ(run(c(), {"XLEN", keys_.ops}).integer, 6);

  // A snapshot at rev 7: now the last 3 are kept, and their keys only.
  ASSERT_EQ(commit(6, insert_at(6, "x"), "k7", 3, "epoch-a", std::string_view("xxxxxxx")).rev, 7u);
  ASSERT_EQ(commit(7, insert_at(7, "y"), "k8", 3).rev, 8u);
  auto doc = load();
  EXPECT_EQ(doc.rev, 8u);
  EXPECT_EQ(doc.snapshot_rev, 7u);
  EXPECT_EQ(doc.snapshot_text, "xxxxxxx");
  std::vector<std::uint64_t> revs;
  for (const auto& e : doc.entries)
    revs.push_back(e.rev);
  EXPECT_EQ(revs, (std::vector<std::uint64_t>{6, 7, 8}));
  EXPECT_EQ(run(c(), {"ZCARD", keys_.keys}).integer, 3);
  EXPECT_EQ(run(c(), {"ZSCORE", keys_.keys, "k5"}).is_nil(), true) << "trimmed with its op";

  // A trimmed key is no longer known: its resubmission would be new (as on one node, where
  // the client's base is then older than the log and the node answers `conflict` first).
  EXPECT_EQ(commit(8, insert_at(0, "q"), "k1", 3).status, cluster::commit_status::accepted);
  EXPECT_EQ(range(7).entries.size(), 3u);
  EXPECT_EQ(range(7).entries.front().rev, 7u);
}

TEST_F(DocumentScript, EachCommitIsPublishedOnTheDocumentsChannel) {
  load();
  context_ptr sub = connect(*redis_);
  auto r = run(sub.get(), {"SUBSCRIBE", keys_.channel});
  ASSERT_TRUE(r.is_array());
  ASSERT_EQ(commit(0, insert_at(0, "hé"), "k1").rev, 1u);
  commit(0, insert_at(0, "no"), "k2"); // stale: not published
  ASSERT_EQ(commit(1, insert_at(2, "!"), "k2").rev, 2u);

  std::vector<cluster::published_op> got;
  for (int i = 0; i < 2; ++i) {
    void* raw = nullptr;
    ASSERT_EQ(redisGetReply(sub.get(), &raw), REDIS_OK); // bounded by the context's timeout
    reply_ptr m(static_cast<redisReply*>(raw), &freeReplyObject);
    ASSERT_EQ(m->type, REDIS_REPLY_ARRAY);
    got.push_back(
        cluster::decode_published_op(std::string_view(m->element[2]->str, m->element[2]->len)));
  }
  EXPECT_EQ(got[0].epoch, "epoch-a");
  EXPECT_EQ(got[0].entry.rev, 1u);
  EXPECT_EQ(got[0].entry.key, "k1");
  EXPECT_EQ(got[0].entry.cid, "node-1:k1");
  EXPECT_EQ(got[0].entry.user, "alice");
  EXPECT_EQ(got[0].entry.op, insert_at(0, "hé"));
  EXPECT_EQ(got[1].entry.rev, 2u);
  EXPECT_EQ(got[1].entry.op, insert_at(2, "!"));
}
