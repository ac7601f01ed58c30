// Documents across a cluster: three engine processes sharing one redis-server (started by the
// test on a free port), real clients on every node. One document, one `rev`, transformed once
// in one order whichever node an editor uses: concurrent editors converge, a key resubmitted
// on another node is applied once, `since` recovers on another node. Every wait is bounded
// and waits for an event (a reply, an ack, a push, a revision reached).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "document_support.hpp"
#include "raw_ws.hpp"
#include "support.hpp"
#include "tests/support/redis_server.hpp"

namespace troupe::test {
namespace {

namespace ot = troupe::ot;
using client::open_kind;

// The status code of GET `path` on the node (0 if it did not answer within 2 s).
int http_status(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  int status = 0;
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[64] = {};
    const auto n = ::recv(fd, buf, sizeof buf - 1, 0);
    if (n > 12 && std::string_view(buf, 5) == "HTTP/") status = std::atoi(buf + 9);
  }
  ::close(fd);
  return status;
}

class ClusterDocumentTest : public ::testing::Test {
protected:
  static constexpr int kNodes = 3;

  void SetUp() override {
    redis_ = std::make_unique<redis_server>();
    for (int i = 0; i < kNodes; ++i) {
      // --rate 0: sixty editors typing as fast as the cluster acknowledges.
      nodes_.push_back(std::make_unique<EngineProcess>(
          std::vector<std::string>{"--redis", redis_->url(), "--rate", "0"}));
      nodes_.back()->start();
    }
    // A node listens before its links to Redis are up (and answers `unavailable` until then):
    // wait, bounded, until each says it is ready.
    for (auto& n : nodes_) {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (http_status(n->port(), "/health/ready") != 200) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "a node never got to Redis";
        std::this_thread::sleep_for(20ms); // polling the node's health, bounded above
      }
    }
  }
  void TearDown() override {
    if (::testing::Test::HasFailure())
      for (std::size_t i = 0; i < nodes_.size(); ++i)
        std::cerr << "--- node " << i << " stdout (tail) ---\n" << nodes_[i]->output() << "\n";
    nodes_.clear();
    redis_.reset();
  }
  EngineProcess& node(int i) { return *nodes_[static_cast<std::size_t>(i % kNodes)]; }

  std::unique_ptr<redis_server> redis_;
  std::vector<std::unique_ptr<EngineProcess>> nodes_;
};

// The `op` pushes a connection receives until one reaches `rev` (bounded), then everything
// else already sent to it (up to a ping's reply).
std::vector<reply> op_pushes_until(RawWs& ws, std::uint64_t rev, std::chrono::milliseconds wait) {
  std::vector<reply> ops;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  auto reached = [&] { return !ops.empty() && ops.back().map().u64("rev").value_or(0) >= rev; };
  while (!reached()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    auto f = ws.read(left);
    if (f.closed || !f.error.empty()) break;
    for (auto& m : f.maps)
      if (m.type() == "op") ops.push_back(m);
  }
  for (auto& m : maps_until_pong(ws))
    if (m.type() == "op") ops.push_back(m);
  return ops;
}

// --- (1) sixty editors on three nodes -------------------------------------------------------

TEST_F(ClusterDocumentTest, SixtyEditorsOnThreeNodesConvergeToOneRevAndText) {
  constexpr int kEditors = 60; // 20 per node
  constexpr int kEdits = 60;
  const std::string room = "cdoc-race";
  const auto started = std::chrono::steady_clock::now();
  std::vector<Editor> eds;
  for (int i = 0; i < kEditors; ++i)
    eds.push_back(editor(node(i), "u" + std::to_string(i), room));

  std::vector<std::thread> threads;
  for (int i = 0; i < kEditors; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(7000 + static_cast<unsigned>(i));
      for (int k = 0; k < kEdits; ++k) {
        eds[static_cast<std::size_t>(i)]->edit_with(
            [&](const ot::rope& t) { return random_edit(rng, t.size()); });
        // Typing cadence, not synchronisation.
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 20000));
      }
    });
  }
  for (auto& t : threads)
    t.join();

  std::uint64_t made = 0;
  for (auto& e : eds) {
    e->wait_synced(60s);
    e.doc->doc().inspect([&](const client::document_state& st) { made += st.ops_made(); });
  }
  const auto [rev, text] = fresh_view(node(0), room);
  EXPECT_EQ(rev, made) << "every operation applied exactly once";
  for (int n = 1; n < kNodes; ++n) {
    SCOPED_TRACE("node " + std::to_string(n));
    EXPECT_EQ(fresh_view(node(n), room), std::make_pair(rev, text));
  }
  for (auto& e : eds) {
    SCOPED_TRACE(e.id);
    e->wait_rev(rev, 30s);
    EXPECT_EQ(e->text(), text);
    EXPECT_EQ(e->rev(), rev);
    while (auto ev = e->next_opened(0ms))
      EXPECT_NE(ev->kind, open_kind::rebuilt);
  }
  EXPECT_GT(ot::utf8_count(text), 0u);
  std::cout << "[ cluster  ] " << kEditors << " editors on " << kNodes << " nodes, " << made
            << " operations, converged at rev " << rev << " in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count()
            << " ms" << std::endl;
}

// --- (2) a key resubmitted on another node ---------------------------------------------------

TEST_F(ClusterDocumentTest, AKeyResubmittedOnAnotherNodeGetsItsFirstRevAndIsAppliedOnce) {
  const std::string room = "cdoc-dedup";
  RawWs a(node(0).port()), b(node(1).port()), watcher(node(2).port());
  a.hello("a");
  b.hello("b");
  watcher.hello("w");
  EXPECT_EQ(raw_open(a, room).map().u64("rev"), 0u);
  raw_open(b, room);
  raw_open(watcher, room);

  EXPECT_EQ(acked_rev(raw_op(a, room, 0, make_op(0, 0, "hé"), "k1")), 1u);
  // Node 1 may not have seen rev 1 yet: Redis's key table answers then.
  EXPECT_EQ(acked_rev(raw_op(b, room, 0, make_op(0, 0, "hé"), "k1")), 1u) << "on another node";
  EXPECT_EQ(acked_rev(raw_op(b, room, 1, make_op(2, 0, "hé"), "k1")), 1u)
      << "again, against a later rev";
  EXPECT_EQ(acked_rev(raw_op(b, room, 1, make_op(2, 0, "!"), "k2")), 2u);
  EXPECT_EQ(acked_rev(raw_op(a, room, 1, make_op(0, 0, "hé"), "k1")), 1u) << "and on the first";

  std::vector<std::string> keys;
  std::vector<std::uint64_t> revs;
  for (const auto& m : op_pushes_until(watcher, 2, 10s)) {
    keys.emplace_back(m.map().str("key").value_or(""));
    revs.push_back(m.map().u64("rev").value_or(0));
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(revs, (std::vector<std::uint64_t>{1, 2}));
  for (int n = 0; n < kNodes; ++n)
    EXPECT_EQ(fresh_view(node(n), room), std::make_pair(std::uint64_t{2}, std::string("hé!")))
        << "node " << n;
}

// --- (3) recovery with `since` on another node -----------------------------------------------

TEST_F(ClusterDocumentTest, OpenWithSinceOnAnotherNodeRecoversTheMissedOps) {
  const std::string room = "cdoc-recover";
  RawWs a(node(0).port());
  a.hello("a");
  const auto first = raw_open(a, room);
  const std::string epoch(first.map().str("epoch").value_or(""));
  ASSERT_FALSE(epoch.empty());
  ASSERT_EQ(acked_rev(raw_op(a, room, 0, make_op(0, 0, "ab"), "r1")), 1u);
  ASSERT_EQ(acked_rev(raw_op(a, room, 1, make_op(2, 0, "c"), "r2")), 2u);
  ASSERT_EQ(acked_rev(raw_op(a, room, 2, make_op(0, 1, ""), "r3")), 3u);
  ASSERT_EQ(acked_rev(raw_op(a, room, 3, make_op(0, 0, "😀"), "r4")), 4u);

  for (int n = 1; n < kNodes; ++n) {
    SCOPED_TRACE("node " + std::to_string(n));
    RawWs b(node(n).port());
    b.hello("b");
    // Right after the acks: the node reads what it has not seen before answering.
    auto r = raw_open(b, room, std::make_pair(std::uint64_t{1}, epoch));
    EXPECT_EQ(r.map().boolean("recovered"), true);
    EXPECT_EQ(r.map().u64("rev"), 4u);
    EXPECT_EQ(r.map().str("epoch").value_or(""), epoch);
    EXPECT_FALSE(r.map().has("text"));
    const auto ops = r.map().array("ops");
    ASSERT_TRUE(ops);
    std::vector<std::uint64_t> revs;
    std::vector<std::string> keys;
    for (std::uint32_t i = 0; i < ops->size; ++i) {
      client::map_view m(ops->ptr[i]);
      revs.push_back(m.u64("rev").value_or(0));
      keys.emplace_back(m.str("key").value_or(""));
      EXPECT_EQ(m.str("user").value_or(""), "a");
    }
    EXPECT_EQ(revs, (std::vector<std::uint64_t>{2, 3, 4}));
    EXPECT_EQ(keys, (std::vector<std::string>{"r2", "r3", "r4"}));

    // Another epoch: the text instead.
    RawWs c(node(n).port());
    c.hello("c");
    auto t = raw_open(c, room, std::make_pair(std::uint64_t{1}, std::string("other-epoch")));
    EXPECT_NE(t.map().boolean("recovered"), true);
    EXPECT_EQ(t.map().str("text").value_or(""), "😀bc");
  }

  // An editor on node 1 that misses an operation made on node 0 while it is away recovers it.
  auto x = editor(node(1), "x", room);
  ASSERT_EQ(x->rev(), 4u);
  auto initial = x->next_opened(0ms);
  ASSERT_TRUE(initial);
  EXPECT_EQ(initial->kind, open_kind::initial);
  x.c->drop_connection(false);
  x.c->wait_state(client::connection_state::disconnected);
  ASSERT_EQ(acked_rev(raw_op(a, room, 4, make_op(0, 0, "-"), "r5")), 5u);
  x.c->reconnect_now();
  auto ev = x->next_opened();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, open_kind::recovered);
  x->wait_rev(5, 10s);
  EXPECT_EQ(x->text(), "-😀bc");
}

// --- (4) Redis lost, then back with or without its data ---------------------------------------

TEST_F(ClusterDocumentTest, WithoutRedisAnOpIsUnavailableAndALostDocumentResetsItsHolders) {
  const std::string room = "cdoc-outage";
  RawWs a(node(0).port()), b(node(1).port());
  a.hello("a");
  b.hello("b");
  raw_open(a, room);
  raw_open(b, room);
  EXPECT_EQ(acked_rev(raw_op(a, room, 0, make_op(0, 0, "x"), "k1")), 1u);
  redis_->stop();
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(code_of(raw_op(a, room, 1, make_op(1, 0, "y"), "k2")), "unavailable");
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 6s);
  redis_->start(); // no persistence: the document is gone
  // Each holder is told to reconnect (4500): its copy belongs to a lost epoch.
  for (RawWs* ws : {&a, &b}) {
    auto end = ws->read_until_closed(20s);
    EXPECT_TRUE(end.closed);
    EXPECT_EQ(end.close_code, 4500);
  }
  RawWs c(node(2).port());
  c.hello("c");
  const auto reopened = raw_open(c, room);
  EXPECT_EQ(reopened.map().u64("rev"), 0u) << "a new document under a new epoch";
}

} // namespace
} // namespace troupe::test
