// The presence scripts (cluster/scripts/presence*.lua) against a real redis-server, started by
// the test on a free loopback port with a fresh directory, over synchronous hiredis contexts.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>

#include "tests/support/redis_server.hpp"
#include "cluster/node_script.hpp"
#include "cluster/presence_script.hpp"
#include "core/presence_list.hpp"

using namespace troupe;
using namespace std::chrono_literals;
using cluster::presence_change;
using cluster::redis_command;

namespace {

using context_ptr = std::unique_ptr<redisContext, decltype(&redisFree)>;
using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;
using Pairs = std::vector<std::pair<std::string, std::string>>;

context_ptr connect(const test::redis_server& redis) {
  timeval timeout{5, 0};
  context_ptr c(redisConnectWithTimeout("127.0.0.1", redis.port(), timeout), &redisFree);
  if (!c || c->err) throw std::runtime_error("cannot connect to redis-server");
  redisSetTimeout(c.get(), timeout);
  return c;
}

cluster::redis_reply run(redisContext* c, const redis_command& cmd) {
  auto argv = cmd.argv();
  auto lens = cmd.argvlen();
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) throw std::runtime_error(std::string("redis: ") + c->errstr);
  reply_ptr raw{r, &freeReplyObject};
  return cluster::redis_reply::from(*raw);
}

cluster::redis_reply run(redisContext* c, std::vector<std::string> args) {
  return run(c, redis_command{std::move(args)});
}

// EVALSHA, and on NOSCRIPT load and again: what redis_connection::eval_script does.
cluster::redis_reply eval(redisContext* c, const cluster::redis_script& script,
                          const cluster::script_call& call) {
  auto r = run(c, cluster::eval_command(script, call));
  if (r.is_error() && r.str.starts_with("NOSCRIPT")) {
    run(c, {"SCRIPT", "LOAD", script.text()});
    r = run(c, cluster::eval_command(script, call));
  }
  return r;
}

presence_change up(std::string client, std::string user, std::string entry) {
  return {presence_change::kind::upsert, std::move(client), std::move(user), std::move(entry)};
}
presence_change grace(std::string client, std::string user, std::string entry) {
  return {presence_change::kind::grace, std::move(client), std::move(user), std::move(entry)};
}
presence_change rm(std::string client) { return {presence_change::kind::remove, client, {}, {}}; }

// A diff as owned strings, for comparisons.
struct diff {
  std::uint64_t pseq = 0;
  Pairs joins, leaves;
};
diff own(const cluster::presence_diff_message& d) {
  diff out{d.pseq, {}, {}};
  for (auto [c, e] : d.joins)
    out.joins.emplace_back(c, e);
  for (auto [c, e] : d.leaves)
    out.leaves.emplace_back(c, e);
  return out;
}

// A SUBSCRIBE connection on one room's diff channel, with a bounded wait per message.
class subscriber {
public:
  subscriber(const test::redis_server& redis, std::string_view room) : c_(connect(redis)) {
    auto r = run(c_.get(), {"SUBSCRIBE", cluster::presence_keys_for(room).channel});
    EXPECT_TRUE(r.is_array());
  }
  std::optional<diff> next(std::chrono::milliseconds wait = 2000ms) {
    timeval t{static_cast<time_t>(wait.count() / 1000),
              static_cast<suseconds_t>(wait.count() % 1000 * 1000)};
    redisSetTimeout(c_.get(), t);
    void* raw = nullptr;
    if (redisGetReply(c_.get(), &raw) != REDIS_OK) return std::nullopt;
    reply_ptr r(static_cast<redisReply*>(raw), &freeReplyObject);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return std::nullopt;
    const std::string payload(r->element[2]->str, r->element[2]->len);
    return own(cluster::decode_presence_diff(payload));
  }

private:
  context_ptr c_;
};

class PresenceScript : public ::testing::Test {
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

  cluster::presence_write write(std::string_view room, std::string_view incarnation,
                                const std::vector<presence_change>& changes) {
    return cluster::decode_presence_write(
        eval(c(), cluster::presence_script(),
             cluster::presence_call(cluster::presence_keys_for(room), room, incarnation, changes)));
  }
  std::pair<std::uint64_t, std::map<std::string, std::string>> read(std::string_view room) {
    auto r = cluster::decode_presence_read(
        eval(c(), cluster::presence_read_script(),
             cluster::presence_read_call(cluster::presence_keys_for(room))));
    return {r.pseq, {r.entries.begin(), r.entries.end()}};
  }
  std::uint64_t sweep(std::string_view incarnation) {
    return cluster::decode_presence_sweep(eval(c(), cluster::presence_sweep_script(),
                                               cluster::presence_sweep_call(incarnation)))
        .removed;
  }

  static test::redis_server* redis_;
  std::unique_ptr<context_ptr> c_;
};
test::redis_server* PresenceScript::redis_ = nullptr;

} // namespace

TEST(PresenceScriptKeys, TheRoomsHashTagAndTheNodesIndex) {
  const auto k = cluster::presence_keys_for("chat:lobby");
  EXPECT_EQ(k.entries, "tr:{chat:lobby}:pres");
  EXPECT_EQ(k.owners, "tr:{chat:lobby}:powner");
  EXPECT_EQ(k.grace, "tr:{chat:lobby}:pgrace");
  EXPECT_EQ(k.meta, "tr:{chat:lobby}:pmeta");
  EXPECT_EQ(k.channel, "tr:{chat:lobby}:pch");
  EXPECT_EQ(k.typing, "tr:{chat:lobby}:tch");
  EXPECT_EQ(cluster::node_rooms_key("n1"), "tr:node:n1:rooms");
}

TEST_F(PresenceScript, EmbeddedTextsAreTheFilesAndTheirSha1sAreRedis) {
  for (const auto* script : {&cluster::presence_script(), &cluster::presence_read_script(),
                             &cluster::presence_sweep_script()}) {
    auto r = run(c(), {"SCRIPT", "LOAD", script->text()});
    ASSERT_TRUE(r.is_string()) << r.str;
    EXPECT_EQ(r.str, script->sha1());
  }
  EXPECT_EQ(cluster::presence_script().sha1(), cluster::scripts::presence_sha1());
  EXPECT_EQ(cluster::presence_sweep_script().sha1(), cluster::scripts::presence_sweep_sha1());
}

TEST_F(PresenceScript, ABatchIsOneDiffWithOnePseqAndNoChangeIsNoDiff) {
  subscriber sub(*redis_, "r");
  auto w = write("r", "n1", {up("c1", "alice", "E1"), up("c2", "bob", "E2")});
  EXPECT_EQ(w.pseq, 1u);
  EXPECT_TRUE(w.changed);
  auto d = sub.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pseq, 1u);
  EXPECT_EQ(d->joins, (Pairs{{"c1", "E1"}, {"c2", "E2"}}));
  EXPECT_TRUE(d->leaves.empty());

  // The same entries again (a re-assertion): nothing changes, nothing is published.
  w = write("r", "n1", {up("c1", "alice", "E1")});
  EXPECT_EQ(w.pseq, 1u);
  EXPECT_FALSE(w.changed);

  // A state change is the old entry leaving and the new joining, in one diff.
  w = write("r", "n1", {up("c2", "bob", "E2b"), rm("c1")});
  EXPECT_EQ(w.pseq, 2u);
  d = sub.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pseq, 2u);
  EXPECT_EQ(d->joins, (Pairs{{"c2", "E2b"}}));
  EXPECT_EQ(d->leaves, (Pairs{{"c2", "E2"}, {"c1", "E1"}}));

  auto [pseq, list] = read("r");
  EXPECT_EQ(pseq, 2u);
  EXPECT_EQ(list, (std::map<std::string, std::string>{{"c2", "E2b"}}));
  EXPECT_EQ(run(c(), {"HGET", "tr:{r}:powner", "c2"}).str, "n1");
  EXPECT_EQ(run(c(), {"SISMEMBER", "tr:node:n1:rooms", "r"}).integer, 1);

  // Removing what is not there changes nothing.
  EXPECT_FALSE(write("r", "n1", {rm("nobody")}).changed);
  // An empty room reads as pseq 0 and no entries.
  auto empty = read("elsewhere");
  EXPECT_EQ(empty.first, 0u);
  EXPECT_TRUE(empty.second.empty());
}

TEST_F(PresenceScript, ASameUserJoinOnAnotherNodeReplacesAnEntryInGraceInOneDiff) {
  subscriber sub(*redis_, "r");
  write("r", "n1", {up("a1", "alice", "A1"), up("b1", "bob", "B1")});
  ASSERT_TRUE(sub.next());
  // a1's connection vanished on n1: a grace mark, no diff.
  auto w = write("r", "n1", {grace("a1", "alice", "A1")});
  EXPECT_FALSE(w.changed);
  // alice comes back on n2: a1 leaves in the diff a2 joins in; bob, not in grace, stays.
  w = write("r", "n2", {up("a2", "alice", "A2")});
  EXPECT_EQ(w.pseq, 2u);
  auto d = sub.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->joins, (Pairs{{"a2", "A2"}}));
  EXPECT_EQ(d->leaves, (Pairs{{"a1", "A1"}}));
  EXPECT_EQ(read("r").second, (std::map<std::string, std::string>{{"a2", "A2"}, {"b1", "B1"}}));
  EXPECT_EQ(run(c(), {"HLEN", "tr:{r}:pgrace"}).integer, 0);
  // n1's grace timer ends later: removing it again is no diff.
  EXPECT_FALSE(write("r", "n1", {rm("a1")}).changed);
  // A member that came back before its grace ended is no longer replaceable.
  write("r", "n1", {grace("b1", "bob", "B1")});
  write("r", "n1", {up("b1", "bob", "B1")});
  EXPECT_TRUE(write("r", "n2", {up("b2", "bob", "B2")}).changed);
  d = sub.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->joins, (Pairs{{"b2", "B2"}}));
  EXPECT_TRUE(d->leaves.empty());
}

TEST_F(PresenceScript, TheSweepRemovesADeadNodesEntriesInEveryRoomOnceWithOneDiffEach) {
  write("r1", "dead", {up("d1", "dan", "D1"), up("d2", "dora", "D2")});
  write("r1", "live", {up("l1", "lea", "L1")});
  write("r2", "dead", {up("d3", "dan", "D3")});
  write("r3", "live", {up("l2", "lea", "L2")});
  run(c(), {"ZADD", "tr:nodes", "1", "dead"});
  run(c(), {"ZADD", "tr:nodes", "2", "live"});
  subscriber s1(*redis_, "r1");
  subscriber s2(*redis_, "r2");

  EXPECT_EQ(sweep("dead"), 3u);
  auto d = s1.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pseq, 3u);
  EXPECT_TRUE(d->joins.empty());
  auto leaves = d->leaves;
  std::sort(leaves.begin(), leaves.end());
  EXPECT_EQ(leaves, (Pairs{{"d1", "D1"}, {"d2", "D2"}}));
  d = s2.next();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->pseq, 2u);
  EXPECT_EQ(d->leaves, (Pairs{{"d3", "D3"}}));

  EXPECT_EQ(read("r1").second, (std::map<std::string, std::string>{{"l1", "L1"}}));
  EXPECT_TRUE(read("r2").second.empty());
  EXPECT_EQ(read("r3").first, 1u);
  EXPECT_EQ(run(c(), {"EXISTS", "tr:node:dead:rooms"}).integer, 0);
  EXPECT_EQ(run(c(), {"ZSCORE", "tr:nodes", "dead"}).type, cluster::redis_reply::kind::nil);
  EXPECT_EQ(run(c(), {"ZSCORE", "tr:nodes", "live"}).str, "2");
  EXPECT_EQ(run(c(), {"HLEN", "tr:{r1}:powner"}).integer, 1);

  // Several nodes sweep the same death: the second removes nothing, publishes nothing.
  EXPECT_EQ(sweep("dead"), 0u);
  EXPECT_EQ(read("r1").first, 3u);
  EXPECT_FALSE(s1.next(300ms));

  // A node swept while it was only cut off asserts its entries again: they are its own again.
  write("r1", "dead", {up("d1", "dan", "D1")});
  EXPECT_EQ(run(c(), {"HGET", "tr:{r1}:powner", "d1"}).str, "dead");
  EXPECT_EQ(sweep("dead"), 1u);
}

TEST(PresenceMessages, TypingRoundTripsAndGarbageIsRefused) {
  const auto payload = cluster::encode_typing_message("n1", "c1", "alice", true);
  const auto t = cluster::decode_typing_message(payload);
  EXPECT_EQ(t.incarnation, "n1");
  EXPECT_EQ(t.client, "c1");
  EXPECT_EQ(t.user, "alice");
  EXPECT_TRUE(t.on);
  EXPECT_FALSE(
      cluster::decode_typing_message(cluster::encode_typing_message("n1", "c1", "alice", false))
          .on);
  EXPECT_THROW(cluster::decode_typing_message("\x93"), cluster::bad_reply);
  EXPECT_THROW(cluster::decode_presence_diff("garbage"), cluster::bad_reply);
}

namespace webhook_events {

using cluster::presence_event;
using Events = std::vector<std::string>;

std::string entry(const std::string& client, const std::string& user) {
  return core::encode_entry({client, user, {}, {}, {}});
}
Events names(const std::vector<presence_event>& events) {
  Events out;
  for (const auto& e : events)
    out.push_back((e.room.empty() ? "" : e.room + "/") + e.name +
                  (e.user.empty() ? "" : ":" + e.user + "@" + e.client));
  return out;
}

} // namespace webhook_events

// The webhook events come from the script, against the whole cluster's list: per user across
// nodes, a reconnect within grace is neither a removal nor an addition, and a dead node's
// sweep reports what it removed.
TEST_F(PresenceScript, EventsCountUsersAcrossNodesOnce) {
  using namespace webhook_events;
  auto w = write("r", "n1", {up("c1", "alice", entry("c1", "alice"))});
  EXPECT_EQ(names(w.events), (Events{"room_occupied", "member_added:alice@c1"}));
  // alice on another node, and bob: only bob is new.
  w = write("r", "n2",
            {up("c2", "alice", entry("c2", "alice")), up("c3", "bob", entry("c3", "bob"))});
  EXPECT_EQ(names(w.events), (Events{"member_added:bob@c3"}));
  // alice's first tab drops (grace), she comes back on n2 with c4: nothing.
  w = write("r", "n1", {grace("c1", "alice", "")});
  EXPECT_TRUE(w.events.empty());
  w = write("r", "n2", {up("c4", "alice", entry("c4", "alice"))});
  EXPECT_TRUE(w.events.empty());
  // Her two tabs leave: removed once, with the last.
  w = write("r", "n2", {rm("c2")});
  EXPECT_TRUE(w.events.empty());
  w = write("r", "n2", {rm("c4")});
  EXPECT_EQ(names(w.events), (Events{"member_removed:alice@c4"}));
  // Removing again changes nothing.
  EXPECT_TRUE(write("r", "n2", {rm("c4")}).events.empty());
  // bob's node dies: the sweep reports his removal and the room's vacancy, once.
  auto sweep_reply = [&](const std::string& dead) {
    return cluster::decode_presence_sweep(
        eval(c(), cluster::presence_sweep_script(), cluster::presence_sweep_call(dead)));
  };
  EXPECT_EQ(names(sweep_reply("n2").events), (Events{"r/member_removed:bob@c3", "r/room_vacated"}));
  EXPECT_TRUE(sweep_reply("n2").events.empty());
  // The room fills again.
  w = write("r", "n1", {up("c5", "carol", entry("c5", "carol"))});
  EXPECT_EQ(names(w.events), (Events{"room_occupied", "member_added:carol@c5"}));
}
