// Presence across a cluster: a private redis-server (tests/support/redis_server.hpp) and two
// or three real engine processes started with --redis, real C++ clients on different nodes.
// One list with one pseq for everyone; a killed node's entries leave for the others within
// 10 s; a clean leave on one node shows on another within 1 s; a reconnect on another node
// within the grace period is one diff. Every wait is bounded and waits for an event.
#include <algorithm>
#include <map>
#include <string>

#include "support.hpp"
#include "tests/support/redis_server.hpp"

namespace troupe::test {
namespace {

using client::client_error;
using client::presence_event;
using client::presence_event_kind;
using client::presence_snapshot;
using Strings = std::vector<std::string>;
using StrMap = std::map<std::string, std::string>;

constexpr const char* kRoom = "cpres";

struct Member {
  std::unique_ptr<blocking_connection> c;
  std::string id;
  std::string sync;
  blocking_connection* operator->() const { return c.get(); }
};

Strings clients_of(const std::vector<client::presence_entry>& es) {
  Strings v;
  for (const auto& e : es)
    v.push_back(e.client);
  std::sort(v.begin(), v.end());
  return v;
}

Strings clients_of(const client::presence_list& l) {
  Strings v;
  for (const auto& [c, e] : l.by_client())
    v.push_back(c);
  return v;
}

std::string state_field(const client::presence_entry* e, const std::string& key) {
  if (!e || e->state.type() != msgpack::type::MAP) return "";
  auto m = e->state.as<StrMap>();
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

presence_event next_change(blocking_connection& c, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto ev = c.next_presence(std::max(left, 0ms));
    if (!ev) throw std::runtime_error("no presence change in time");
    if (ev->kind != presence_event_kind::snapshot) return *ev;
  }
}

class ClusterPresence : public ::testing::Test {
protected:
  virtual int nodes() const { return 2; }
  virtual std::vector<std::string> extra_args() const { return {}; }

  void SetUp() override {
    redis_ = std::make_unique<redis_server>();
    for (int i = 0; i < nodes(); ++i) {
      auto args = extra_args();
      args.insert(args.end(), {"--redis", redis_->url()});
      engines_.push_back(std::make_unique<EngineProcess>(args));
      engines_.back()->start();
    }
  }
  void TearDown() override {
    if (::testing::Test::HasFailure())
      for (std::size_t i = 0; i < engines_.size(); ++i)
        std::cerr << "--- node " << i << " stdout (tail) ---\n" << engines_[i]->output() << "\n";
    engines_.clear();
    redis_.reset();
  }

  EngineProcess& node(int i) { return *engines_.at(i); }

  // A client of `user` on node `i`, subscribed and, if `settle`, settled: it has seen its own
  // state change `sync` come back through Redis, so later events are past its arrival.
  Member member(const std::string& user, int i, bool settle = true) {
    Member m;
    m.c = std::make_unique<blocking_connection>(options_for(node(i), user));
    m.id = m.c->connect().client;
    m.c->subscribe(kRoom);
    if (!settle) return m;
    for (int k = 1; k <= 20; ++k) {
      m.sync = std::to_string(k);
      m.c->set_state(kRoom, value::from(StrMap{{"sync", m.sync}}));
      try {
        m.c->wait_view(
            kRoom,
            [&](const presence_snapshot& s) {
              return state_field(s.members.find(m.id), "sync") == m.sync;
            },
            2s);
        return m;
      } catch (const client_error&) {
        // that change shared a diff with its arrival: again
      }
    }
    throw std::runtime_error(user + " never heard its own state come back");
  }

  // Waits until `observer` sees each of `others` settled, then forgets its queued events.
  static presence_snapshot quiet(Member& observer, std::initializer_list<const Member*> others) {
    auto v = observer->wait_view(kRoom, [&](const presence_snapshot& s) {
      for (const auto* o : others)
        if (state_field(s.members.find(o->id), "sync") != o->sync) return false;
      return true;
    });
    while (observer->next_presence(0ms)) {}
    while (observer->next_typing(0ms)) {}
    return v;
  }

  std::unique_ptr<redis_server> redis_;
  std::vector<std::unique_ptr<EngineProcess>> engines_;
};

TEST_F(ClusterPresence, MembersOnTwoNodesShareOneListWithOnePseq) {
  auto a = member("alice", 0);
  auto b = member("bob", 1);
  auto av = quiet(a, {&a, &b});
  auto bv = b->wait_view(kRoom, [&](const presence_snapshot& s) { return s.pseq == av.pseq; });
  EXPECT_EQ(clients_of(av.members), clients_of(bv.members));
  EXPECT_EQ(av.members.users(), (Strings{"alice", "bob"}));
  while (b->next_presence(0ms)) {}
  const auto p0 = av.pseq;

  // A state change on node 1 is one diff, pseq + 1, on node 0.
  b->set_state(kRoom, value::from(StrMap{{"status", "away"}}));
  auto change = next_change(*a.c);
  EXPECT_EQ(change.pseq, p0 + 1);
  ASSERT_EQ(clients_of(change.updated), Strings{b.id});
  EXPECT_EQ(state_field(&change.updated[0], "status"), "away");
  EXPECT_TRUE(change.joined.empty() && change.left.empty());
  EXPECT_EQ(next_change(*b.c).pseq, p0 + 1);

  // A join on node 0 reaches node 1 with the next pseq; the joiner's snapshot is the version
  // before it and lists the joiner.
  auto c = member("carol", 0, /*settle=*/false);
  auto cv = c->view(kRoom);
  EXPECT_EQ(cv.members.users(), (Strings{"alice", "bob", "carol"}));
  auto join = next_change(*b.c);
  EXPECT_EQ(join.pseq, p0 + 2);
  EXPECT_EQ(clients_of(join.joined), Strings{c.id});
  EXPECT_EQ(cv.pseq + 1, join.pseq);
  EXPECT_EQ(next_change(*a.c).pseq, p0 + 2);

  // Typing crosses nodes, and is not stored.
  b->typing(kRoom, true);
  for (auto* who : {a.c.get(), c.c.get()}) {
    auto on = who->next_typing(10s);
    ASSERT_TRUE(on);
    EXPECT_TRUE(on->on);
    EXPECT_EQ(on->client, b.id);
  }
  b->typing(kRoom, false);
  auto off = a->next_typing(10s);
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->on);

  // A leave on node 1: one diff for both nodes' members.
  b->unsubscribe(kRoom);
  auto leave = next_change(*a.c);
  EXPECT_EQ(leave.pseq, p0 + 3);
  EXPECT_EQ(clients_of(leave.left), Strings{b.id});
  auto cv2 = c->wait_view(kRoom, [&](const presence_snapshot& s) { return s.pseq == p0 + 3; });
  EXPECT_EQ(clients_of(cv2.members), clients_of(a->view(kRoom).members));

  // A fetch on either node is the same list at the same pseq.
  auto outsider = connected_client(node(1), "eve");
  auto fetched = outsider->presence(kRoom);
  EXPECT_EQ(fetched.pseq, p0 + 3);
  EXPECT_EQ(clients_of(fetched.members), clients_of(a->view(kRoom).members));
}

class ClusterPresenceThreeNodes : public ClusterPresence {
protected:
  int nodes() const override { return 3; }
};

TEST_F(ClusterPresenceThreeNodes, AKilledNodesEntriesLeaveForTheOthersWithinTenSeconds) {
  auto a = member("alice", 0);
  auto b = member("bob", 1);
  auto v1 = member("victor", 2);
  auto v2 = member("vera", 2);
  quiet(a, {&a, &b, &v1, &v2});
  quiet(b, {&a, &b, &v1, &v2});

  node(2).kill_now();
  const auto t0 = std::chrono::steady_clock::now();
  auto gone = [&](const presence_snapshot& s) {
    return !s.members.find(v1.id) && !s.members.find(v2.id);
  };
  auto av = a->wait_view(kRoom, gone, 10s);
  auto bv = b->wait_view(kRoom, gone,
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             10s - (std::chrono::steady_clock::now() - t0)));
  EXPECT_LE(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_EQ(clients_of(av.members), (Strings{std::min(a.id, b.id), std::max(a.id, b.id)}));
  EXPECT_EQ(clients_of(bv.members), clients_of(av.members));
  // Both victims left in one diff (one sweep per room), seen by both survivors.
  Strings victims{v1.id, v2.id};
  std::sort(victims.begin(), victims.end());
  bool one_diff = false;
  while (auto ev = a->next_presence(0ms))
    if (clients_of(ev->left) == victims) one_diff = true;
  EXPECT_TRUE(one_diff);
  // Redis forgets the dead node.
  EXPECT_EQ(redis_->command({"ZCARD", "tr:nodes"}), "2");
}

TEST_F(ClusterPresence, ACleanLeaveOnOneNodeShowsOnAnotherWithinOneSecond) {
  auto a = member("alice", 0);
  auto b = member("bob", 1);
  auto c = member("carol", 1);
  quiet(a, {&a, &b, &c});

  auto t0 = std::chrono::steady_clock::now();
  b->unsubscribe(kRoom);
  a->wait_view(
      kRoom, [&](const presence_snapshot& s) { return !s.members.find(b.id); }, 1s);
  EXPECT_LE(std::chrono::steady_clock::now() - t0, 1s);

  // A clean close of the connection too.
  t0 = std::chrono::steady_clock::now();
  c->close();
  a->wait_view(
      kRoom, [&](const presence_snapshot& s) { return !s.members.find(c.id); }, 1s);
  EXPECT_LE(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(clients_of(a->view(kRoom).members), Strings{a.id});
}

class ClusterPresenceGrace : public ClusterPresence {
protected:
  std::vector<std::string> extra_args() const override { return {"--grace", "30"}; }
};

TEST_F(ClusterPresenceGrace, ASameUserBackOnAnotherNodeWithinTheGraceIsOneDiff) {
  auto a = member("alice", 0);
  auto b1 = member("bob", 1);
  quiet(a, {&a, &b1});

  b1->drop_connection(/*reconnect=*/false); // RST: node 1 starts bob's grace period
  // Node 1 marks the entry as waiting out its grace in Redis; wait (bounded) for the mark.
  const auto grace_key = std::string("tr:{") + kRoom + "}:pgrace";
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (redis_->command({"HEXISTS", grace_key, b1.id}) != "1") {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no grace mark for " << b1.id;
    std::this_thread::sleep_for(20ms); // polling Redis: no event to wait for from a test
  }

  auto b2 = member("bob", 0, /*settle=*/false);
  auto ev = next_change(*a.c);
  EXPECT_EQ(clients_of(ev.left), Strings{b1.id});
  EXPECT_EQ(clients_of(ev.joined), Strings{b2.id});
  EXPECT_TRUE(ev.users_left.empty());
  EXPECT_TRUE(ev.users_joined.empty());
  EXPECT_EQ(a->view(kRoom).members.tabs("bob"), 1u);
}

} // namespace
} // namespace troupe::test
