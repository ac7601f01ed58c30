// The publish script and the read helpers against a real redis-server, started by the test on
// a free loopback port with a fresh directory, over plain synchronous hiredis contexts.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include <hiredis/hiredis.h>

#include "tests/support/redis_server.hpp"
#include "cluster/publish_script.hpp"

extern char** environ;

using namespace troupe;
using namespace std::chrono_literals;
using cluster::redis_command;

namespace {

using context_ptr = std::unique_ptr<redisContext, decltype(&redisFree)>;
using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

// A synchronous hiredis context on the test's redis-server (tests/support/redis_server.hpp).
context_ptr connect(const test::redis_server& redis) {
  timeval timeout{5, 0};
  context_ptr c(redisConnectWithTimeout("127.0.0.1", redis.port(), timeout), &redisFree);
  if (!c || c->err) throw std::runtime_error("cannot connect to redis-server");
  redisSetTimeout(c.get(), timeout); // no read waits forever
  return c;
}

// Owned on the heap: decoded views point into it, and a moved string may move its bytes.
using owned_reply = std::unique_ptr<cluster::redis_reply>;

owned_reply run(redisContext* c, const redis_command& cmd) {
  auto argv = cmd.argv();
  auto lens = cmd.argvlen();
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) throw std::runtime_error(std::string("redis: ") + c->errstr);
  reply_ptr raw{r, &freeReplyObject};
  return std::make_unique<cluster::redis_reply>(cluster::redis_reply::from(*raw));
}

owned_reply run(redisContext* c, std::vector<std::string> args) {
  return run(c, redis_command{std::move(args)});
}

bool is_noscript(const cluster::redis_reply& r) {
  return r.is_error() && r.str.starts_with("NOSCRIPT");
}

// What the engine does (redis_connection::eval_script): EVALSHA, and on NOSCRIPT load the
// script and run it again.
owned_reply eval(redisContext* c, const cluster::redis_script& script,
                 const cluster::script_call& call) {
  auto r = run(c, cluster::eval_command(script, call));
  if (is_noscript(*r)) {
    run(c, {"SCRIPT", "LOAD", script.text()});
    r = run(c, cluster::eval_command(script, call));
  }
  return r;
}

cluster::publish_result publish(redisContext* c, std::string_view room,
                                const cluster::publish_args& args) {
  return cluster::decode_publish_reply(
      *eval(c, cluster::publish_script(), cluster::publish_call(cluster::keys_for(room), args)));
}

// A read script call; the entries are views into `reply`.
struct read_result {
  owned_reply reply;
  cluster::room_read read;
};
read_result read(redisContext* c, const cluster::script_call& call) {
  read_result out{eval(c, cluster::read_script(), call), {}};
  out.read = cluster::decode_read(*out.reply);
  return out;
}

cluster::publish_args message(std::string_view data, std::string_view key = {},
                              std::uint64_t history = 100, std::string_view epoch = "epoch-a") {
  return {epoch, history, "alice", key, data};
}

// A SUBSCRIBE connection: the published payloads on a room's channel, with a bounded wait.
class subscriber {
public:
  subscriber(const test::redis_server& redis, std::string_view room) : c_(connect(redis)) {
    auto r = run(c_.get(), {"SUBSCRIBE", cluster::keys_for(room).channel});
    EXPECT_TRUE(r->is_array());
  }
  /// The next payload, or nothing within `wait`.
  std::optional<std::string> next(std::chrono::milliseconds wait = 2000ms) {
    timeval t{static_cast<time_t>(wait.count() / 1000),
              static_cast<suseconds_t>(wait.count() % 1000 * 1000)};
    redisSetTimeout(c_.get(), t);
    void* raw = nullptr;
    if (redisGetReply(c_.get(), &raw) != REDIS_OK) {
      // A timeout leaves the context unusable: reconnecting is not needed by these tests.
      failed_ = true;
      return std::nullopt;
    }
    reply_ptr r(static_cast<redisReply*>(raw), &freeReplyObject);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        std::string_view(r->element[0]->str, r->element[0]->len) != "message")
      return std::nullopt;
    return std::string(r->element[2]->str, r->element[2]->len);
  }
  bool timed_out() const { return failed_; }

private:
  context_ptr c_;
  bool failed_ = false;
};

std::uint64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class PublishScript : public ::testing::Test {
protected:
  static void SetUpTestSuite() { redis_ = new test::redis_server(); }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override {
    c_ = std::make_unique<context_ptr>(connect(*redis_));
    run(c(), {"FLUSHALL"});
    run(c(), {"SCRIPT", "FLUSH"});
  }
  redisContext* c() { return c_->get(); }

  static test::redis_server* redis_;
  std::unique_ptr<context_ptr> c_;
};
test::redis_server* PublishScript::redis_ = nullptr;

} // namespace

TEST(PublishScriptKeys, OneHashTagPerRoom) {
  const auto k = cluster::keys_for("chat:lobby");
  EXPECT_EQ(k.meta, "tr:{chat:lobby}:meta");
  EXPECT_EQ(k.stream, "tr:{chat:lobby}:stream");
  EXPECT_EQ(k.keys, "tr:{chat:lobby}:keys");
  EXPECT_EQ(k.channel, "tr:{chat:lobby}:ch");
}

TEST_F(PublishScript, EmbeddedTextIsTheLuaFileAndItsSha1IsRedis) {
  EXPECT_TRUE(cluster::scripts::publish_text().starts_with("-- One publish to a room"));
  EXPECT_TRUE(cluster::scripts::publish_text().ends_with("return {seq, epoch, ts, 0}\n"));
  auto r = run(c(), {"SCRIPT", "LOAD", std::string(cluster::scripts::publish_text())});
  ASSERT_TRUE(r->is_string()) << r->str;
  EXPECT_EQ(r->str, cluster::scripts::publish_sha1());
  EXPECT_EQ(cluster::publish_script().sha1(), cluster::scripts::publish_sha1());
}

TEST_F(PublishScript, SequentialPublishesAreNumberedWithoutHoles) {
  // The first EVALSHA meets NOSCRIPT (the cache was flushed): EVAL, then EVALSHA works.
  auto first =
      run(c(), cluster::eval_command(cluster::publish_script(),
                                     cluster::publish_call(cluster::keys_for("r"), message("x"))));
  EXPECT_TRUE(is_noscript(*first));
  const auto before = now_ms();
  for (std::uint64_t i = 1; i <= 50; ++i) {
    auto res = publish(c(), "r", message("m" + std::to_string(i)));
    EXPECT_EQ(res.seq, i);
    EXPECT_EQ(res.epoch, "epoch-a");
    EXPECT_FALSE(res.duplicate);
    EXPECT_GE(res.ts + 1000, before); // Redis's clock: same machine, so close to ours
    EXPECT_LE(res.ts, now_ms() + 1000);
  }
  auto top = read(c(), cluster::top_call(cluster::keys_for("r")));
  EXPECT_EQ(top.read.top.epoch, "epoch-a");
  EXPECT_EQ(top.read.top.seq, 50u);
  EXPECT_TRUE(top.read.entries.empty());
  // Another room has its own numbering.
  EXPECT_EQ(publish(c(), "other", message("y")).seq, 1u);
}

TEST_F(PublishScript, StreamKeepsHistoryEntriesWithIdsFromSeqs) {
  const auto keys = cluster::keys_for("r");
  for (int i = 1; i <= 12; ++i)
    publish(c(), "r", message("m" + std::to_string(i), "k" + std::to_string(i), 5));
  EXPECT_EQ(run(c(), {"XLEN", keys.stream})->integer, 5);
  auto ids = run(c(), {"XRANGE", keys.stream, "-", "+"});
  ASSERT_EQ(ids->elements.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i)
    EXPECT_EQ(ids->elements[i].elements[0].str, std::to_string(8 + i) + "-1");
  auto entries = cluster::decode_stream_entries(*ids);
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries[0].seq, 8u);
  EXPECT_EQ(entries[0].data, "m8");
  EXPECT_EQ(entries[0].key, "k8");
  EXPECT_EQ(entries[0].user, "alice");
  EXPECT_GT(entries[0].ts, 0u);
  // The keys are trimmed with the stream.
  EXPECT_EQ(run(c(), {"ZCARD", keys.keys})->integer, 5);
  // A range read: exactly the asked seqs that are kept.
  auto range = read(c(), cluster::read_call(keys, 6, 9));
  ASSERT_EQ(range.read.entries.size(), 2u);
  EXPECT_EQ(range.read.entries[0].seq, 8u);
  EXPECT_EQ(range.read.entries[1].seq, 9u);
  EXPECT_EQ(range.read.top.seq, 12u);
  // The newest n, oldest first; and a count that bounds a range read.
  auto newest = read(c(), cluster::newest_call(keys, 3));
  ASSERT_EQ(newest.read.entries.size(), 3u);
  EXPECT_EQ(newest.read.entries[0].seq, 10u);
  EXPECT_EQ(newest.read.entries[2].data, "m12");
  auto bounded = read(c(), cluster::read_call(keys, 9, 0, 2));
  ASSERT_EQ(bounded.read.entries.size(), 2u);
  EXPECT_EQ(bounded.read.entries[1].seq, 10u);
}

TEST_F(PublishScript, RepairReadGivesEpochTopAndEntriesAtomically) {
  const auto keys = cluster::keys_for("r");
  for (int i = 1; i <= 6; ++i)
    publish(c(), "r", message("m" + std::to_string(i), {}, 4));
  auto got = read(c(), cluster::read_call(keys, 2, 5));
  EXPECT_EQ(got.read.top.epoch, "epoch-a");
  EXPECT_EQ(got.read.top.seq, 6u);
  ASSERT_EQ(got.read.entries.size(), 3u); // 2 was trimmed: the stream keeps 3..6
  EXPECT_EQ(got.read.entries.front().seq, 3u);
  EXPECT_EQ(got.read.entries.back().data, "m5");
  // A room with no log: no epoch, top 0, nothing.
  got = read(c(), cluster::read_call(cluster::keys_for("none"), 1, 5));
  EXPECT_EQ(got.read.top.epoch, "");
  EXPECT_EQ(got.read.top.seq, 0u);
  EXPECT_TRUE(got.read.entries.empty());
}

TEST_F(PublishScript, RepeatedKeyReturnsTheFirstSeqAndPublishesNothing) {
  subscriber sub(*redis_, "r");
  auto a = publish(c(), "r", message("first", "k1", 3));
  auto b = publish(c(), "r", message("second", "k2", 3));
  auto again = publish(c(), "r", message("other data", "k1", 3));
  EXPECT_EQ(again.seq, a.seq);
  EXPECT_EQ(again.ts, a.ts);
  EXPECT_EQ(again.epoch, a.epoch);
  EXPECT_TRUE(again.duplicate);
  auto c3 = publish(c(), "r", message("third", {}, 3));
  EXPECT_EQ(c3.seq, 3u); // the duplicate took no seq
  // The subscriber got 1, 2, 3: not the duplicate.
  for (std::uint64_t want : {a.seq, b.seq, c3.seq}) {
    auto payload = sub.next();
    ASSERT_TRUE(payload);
    EXPECT_EQ(cluster::decode_published(*payload).message.seq, want);
  }
  EXPECT_FALSE(sub.next(300ms)) << "the duplicate was published";
  // Remembered while its message is kept (3 kept: 1..3), and at least that long: an unkeyed
  // publish does not trim the keys (it costs nothing for them), the next keyed one does.
  EXPECT_TRUE(publish(c(), "r", message("x", "k1", 3)).duplicate);
  EXPECT_EQ(publish(c(), "r", message("fourth", {}, 3)).seq, 4u); // keeps 2..4
  EXPECT_TRUE(publish(c(), "r", message("x", "k1", 3)).duplicate);
  EXPECT_EQ(publish(c(), "r", message("fifth", "k5", 3)).seq, 5u); // keeps 3..5; trims 1, 2
  EXPECT_EQ(run(c(), {"ZCARD", cluster::keys_for("r").keys})->integer, 1);
  auto later = publish(c(), "r", message("x", "k1", 3));
  EXPECT_FALSE(later.duplicate);
  EXPECT_EQ(later.seq, 6u);
  EXPECT_FALSE(publish(c(), "r", message("x", "k2", 3)).duplicate); // 2 trimmed too
}

TEST_F(PublishScript, EpochPersistsAndALostLogGetsANewOne) {
  EXPECT_EQ(publish(c(), "r", message("1", {}, 100, "epoch-a")).epoch, "epoch-a");
  auto second = publish(c(), "r", message("2", {}, 100, "epoch-b"));
  EXPECT_EQ(second.epoch, "epoch-a"); // the candidate is used only when there is none
  EXPECT_EQ(second.seq, 2u);
  run(c(), {"FLUSHALL"});
  auto after = publish(c(), "r", message("3", {}, 100, "epoch-c"));
  EXPECT_EQ(after.epoch, "epoch-c");
  EXPECT_EQ(after.seq, 1u);
  // Only the meta lost (say, evicted): the old stream and keys go with the old epoch.
  publish(c(), "r", message("4", "k", 100, "epoch-c"));
  run(c(), {"DEL", cluster::keys_for("r").meta});
  auto fresh = publish(c(), "r", message("5", "k", 100, "epoch-d"));
  EXPECT_EQ(fresh.epoch, "epoch-d");
  EXPECT_EQ(fresh.seq, 1u);
  EXPECT_FALSE(fresh.duplicate);
  EXPECT_EQ(run(c(), {"XLEN", cluster::keys_for("r").stream})->integer, 1);
}

TEST_F(PublishScript, BinaryDataRoundTrips) {
  std::string data;
  for (int i = 0; i < 70000; ++i)
    data.push_back(static_cast<char>(i * 7 % 256)); // NULs, 0xff, invalid UTF-8
  data.replace(0, 4, std::string("\0\xc1\xff\0", 4));
  const std::string key("k\0ey", 4);
  subscriber sub(*redis_, "bin");
  auto res = publish(c(), "bin", message(data, key));
  EXPECT_EQ(res.seq, 1u);
  auto payload = sub.next();
  ASSERT_TRUE(payload);
  auto p = cluster::decode_published(*payload);
  EXPECT_EQ(p.message.data, data);
  EXPECT_EQ(p.message.key, key);
  auto range = read(c(), cluster::read_call(cluster::keys_for("bin"), 1, 1));
  const auto& entries = range.read.entries; // views into range.reply
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].data, data);
  EXPECT_EQ(entries[0].key, key);
  EXPECT_TRUE(publish(c(), "bin", message("other", key)).duplicate);
}

TEST_F(PublishScript, PubSubPayloadDecodesToWhatWasPublished) {
  subscriber sub(*redis_, "r");
  auto res = publish(c(), "r", message("\x92\x01\xa1x", "key-1")); // [1, "x"] packed
  auto payload = sub.next();
  ASSERT_TRUE(payload);
  auto p = cluster::decode_published(*payload);
  EXPECT_EQ(p.message.seq, res.seq);
  EXPECT_EQ(p.epoch, res.epoch);
  EXPECT_EQ(p.message.ts, res.ts);
  EXPECT_EQ(p.message.user, "alice");
  EXPECT_EQ(p.message.key, "key-1");
  EXPECT_EQ(p.message.data, "\x92\x01\xa1x");
  // The views point into the payload: no copy of the data.
  EXPECT_GE(p.message.data.data(), payload->data());
  EXPECT_LE(p.message.data.data() + p.message.data.size(), payload->data() + payload->size());
  EXPECT_THROW(cluster::decode_published("\x93\x01\x02\x03"), cluster::bad_reply);
  EXPECT_THROW(cluster::decode_published("\xc1"), cluster::bad_reply);
}

TEST_F(PublishScript, ConcurrentPublishersGetOneTotalOrder) {
  constexpr int publishers = 4, each = 150;
  subscriber sub(*redis_, "r");
  std::vector<std::vector<std::uint64_t>> seqs(publishers);
  std::vector<std::thread> threads;
  for (int p = 0; p < publishers; ++p)
    threads.emplace_back([&, p] {
      auto conn = connect(*redis_);
      for (int i = 0; i < each; ++i) {
        const std::string id = std::to_string(p) + "/" + std::to_string(i);
        auto res = publish(conn.get(), "r", message(id, id, 1000));
        seqs[p].push_back(res.seq);
        if (i % 10 == 0) { // a retry with the same key, as after `unavailable`
          EXPECT_EQ(publish(conn.get(), "r", message(id, id, 1000)).seq, res.seq);
        }
      }
    });
  for (auto& t : threads)
    t.join();
  std::set<std::uint64_t> all;
  for (const auto& s : seqs) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end())); // each publisher's own order kept
    all.insert(s.begin(), s.end());
  }
  ASSERT_EQ(all.size(), std::size_t(publishers * each)); // no seq given twice
  EXPECT_EQ(*all.begin(), 1u);
  EXPECT_EQ(*all.rbegin(), std::uint64_t(publishers * each)); // and no hole
  // Every node's subscription sees that one order.
  std::map<std::uint64_t, std::string> stream;
  auto range = read(c(), cluster::read_call(cluster::keys_for("r"), 1, 0));
  for (auto& e : range.read.entries)
    stream[e.seq] = std::string(e.data);
  for (std::uint64_t want = 1; want <= std::uint64_t(publishers * each); ++want) {
    auto payload = sub.next();
    ASSERT_TRUE(payload) << "seq " << want;
    auto p = cluster::decode_published(*payload);
    ASSERT_EQ(p.message.seq, want);
    EXPECT_EQ(p.message.data, stream[want]);
  }
}
