// Webhooks through a real engine and a real HTTP backend (tests/support/http_backend.hpp):
// which events presence emits and in what order, per user not per tab, the grace period,
// batching, retries with the same ids, a dead and a hanging backend, and the queue's bound.
// Every wait is bounded and waits for a request or a connection state, not for time.
#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <set>

#include "support.hpp"
#include "tests/support/http_backend.hpp"
#include "tests/support/redis_server.hpp"

namespace troupe::test {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

struct Event {
  std::string id, name, room, user, client;
  bool operator==(const Event&) const = default;
};

using Names = std::vector<std::string>;

// The events of every accepted-or-not POST /events so far, in the order received (a retried
// batch shows once per attempt).
std::vector<Event> events_of(const std::vector<http_request>& requests) {
  std::vector<Event> out;
  for (const auto& r : requests) {
    if (r.target != "/events") continue;
    auto body = nlohmann::json::parse(r.body);
    for (const auto& e : body.at("events")) {
      EXPECT_TRUE(e.contains("time_ms"));
      out.push_back({e.at("id"), e.at("name"), e.at("room"), e.value("user", std::string()),
                     e.value("client", std::string())});
    }
  }
  return out;
}

// Deduplicated by id, as a backend would: the first sighting of each.
std::vector<Event> unique_events(const http_backend& backend) {
  std::vector<Event> out;
  std::set<std::string> seen;
  for (auto& e : events_of(backend.requests()))
    if (seen.insert(e.id).second) out.push_back(std::move(e));
  return out;
}

Names names_in(const std::vector<Event>& events, const std::string& room) {
  Names out;
  for (const auto& e : events)
    if (e.room == room) out.push_back(e.name + (e.user.empty() ? "" : ":" + e.user));
  return out;
}

// Waits (bounded) until the backend's deduplicated events in `room` are `n` or more.
Names wait_names(const http_backend& backend, const std::string& room, std::size_t n,
                 std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto names = names_in(unique_events(backend), room);
    if (names.size() >= n) return names;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) return names;
    backend.wait_for(backend.count() + 1, left); // the next request, or the deadline
  }
}

// A value from GET /metrics, or -1.
long long metric(const EngineProcess& engine, const std::string& name) {
  net::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(5s);
  boost::system::error_code ec;
  stream.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                              static_cast<unsigned short>(engine.port())),
                       [&](boost::system::error_code e) { ec = e; });
  io.run();
  if (ec) return -1;
  http::request<http::string_body> request{http::verb::get, "/metrics", 11};
  request.set(http::field::host, "127.0.0.1");
  http::async_write(stream, request, [&](boost::system::error_code e, std::size_t) { ec = e; });
  io.restart();
  io.run();
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::async_read(stream, buffer, response,
                   [&](boost::system::error_code e, std::size_t) { ec = e; });
  io.restart();
  io.run();
  if (ec) return -1;
  const std::string needle = "\n" + name + " ";
  auto pos = response.body().find(needle);
  return pos == std::string::npos ? -1 : std::stoll(response.body().substr(pos + needle.size()));
}

// An engine with --backend pointing at a test backend of its own.
class Webhooks : public EngineTest {
protected:
  virtual std::vector<std::string> more_args() const { return {}; }
  std::vector<std::string> extra_args() const override {
    std::vector<std::string> args{"--backend", backend_.url(), "--backend-timeout", "1"};
    for (auto& a : more_args())
      args.push_back(a);
    return args;
  }
  std::unique_ptr<blocking_connection> in_room(const std::string& user, const std::string& room) {
    auto c = client(user);
    c->subscribe(room);
    return c;
  }
  mutable http_backend backend_;
};

TEST_F(Webhooks, TwoTabsOfOneUserAreOneMemberAndACleanLeaveIsAtOnce) {
  auto tab1 = in_room("alice", "r1");
  auto tab2 = in_room("alice", "r1");
  auto bob = in_room("bob", "r1");
  EXPECT_EQ(wait_names(backend_, "r1", 3),
            (Names{"room_occupied", "member_added:alice", "member_added:bob"}));
  tab1->close();
  bob->close();
  EXPECT_EQ(wait_names(backend_, "r1", 4), (Names{"room_occupied", "member_added:alice",
                                                  "member_added:bob", "member_removed:bob"}));
  // alice's last tab closes: member_removed then room_vacated, without waiting for a grace.
  const auto closed = std::chrono::steady_clock::now();
  tab2->close();
  auto names = wait_names(backend_, "r1", 6);
  EXPECT_LT(std::chrono::steady_clock::now() - closed, 2s);
  EXPECT_EQ(names, (Names{"room_occupied", "member_added:alice", "member_added:bob",
                          "member_removed:bob", "member_removed:alice", "room_vacated"}));
  for (const auto& r : backend_.requests())
    EXPECT_EQ(r.method, "POST");
}

class WebhooksGrace : public Webhooks {
protected:
  std::vector<std::string> more_args() const override { return {"--grace", "2"}; }
};

TEST_F(WebhooksGrace, AReconnectWithinGraceSendsNothingADropWithoutReturnSendsAfterGrace) {
  auto alice = in_room("alice", "g1");
  auto bob = in_room("bob", "g1");
  ASSERT_EQ(wait_names(backend_, "g1", 3).size(), 3u);

  // alice drops (no close frame) and comes back by herself within the grace.
  alice->drop_connection(/*reconnect=*/true);
  const auto back = alice->wait_state(client::connection_state::connected).info.client;
  alice->wait_view("g1", [&](const client::presence_snapshot& s) {
    return s.members.find(back) != nullptr && s.members.tabs("alice") == 1;
  });

  // bob drops for good: member_removed once the grace (2 s) has passed, not before.
  const auto dropped = std::chrono::steady_clock::now();
  bob->drop_connection(/*reconnect=*/false);
  auto names = wait_names(backend_, "g1", 4, 10s);
  const auto after = std::chrono::steady_clock::now() - dropped;
  EXPECT_GE(after, 1500ms);
  EXPECT_EQ(names, (Names{"room_occupied", "member_added:alice", "member_added:bob",
                          "member_removed:bob"}));
  // alice's reconnect was neither removed nor added again.
}

TEST_F(Webhooks, ManyEventsGoInFewCallsOfAtMostAHundredInOrderPerRoom) {
  // 60 rooms, each occupied and vacated by one user: 240 events.
  for (int i = 0; i < 60; ++i) {
    auto c = in_room("u" + std::to_string(i), "b" + std::to_string(i));
    c->close();
  }
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (unique_events(backend_).size() < 240 && std::chrono::steady_clock::now() < deadline)
    backend_.wait_for(backend_.count() + 1, 1s);
  auto events = unique_events(backend_);
  ASSERT_EQ(events.size(), 240u);
  std::size_t calls = 0;
  for (const auto& r : backend_.requests()) {
    auto n = nlohmann::json::parse(r.body).at("events").size();
    EXPECT_LE(n, 100u);
    ++calls;
  }
  EXPECT_LE(calls, 30u); // batched: far fewer calls than events
  for (int i = 0; i < 60; ++i) {
    const auto u = "u" + std::to_string(i);
    EXPECT_EQ(names_in(events, "b" + std::to_string(i)),
              (Names{"room_occupied", "member_added:" + u, "member_removed:" + u, "room_vacated"}));
  }
}

TEST_F(Webhooks, AFailedBatchIsRetriedWithTheSameIdsThenSucceeds) {
  std::atomic<int> failures{2};
  backend_.on("/events", [&](const http_request&) {
    http_reply reply;
    if (failures-- > 0) reply.status = 503;
    return reply;
  });
  auto c = in_room("alice", "x1");
  ASSERT_TRUE(backend_.wait_for(3, 15s)); // 503, 503 (after ~1 s), then 200 (after ~2 s more)
  auto requests = backend_.requests();
  ASSERT_GE(requests.size(), 3u);
  auto first = events_of({requests[0]});
  EXPECT_EQ(events_of({requests[1]}), first);
  EXPECT_EQ(events_of({requests[2]}), first);
  EXPECT_GE(metric(engine(), "troupe_webhook_batches_retried_total"), 2);
  // Delivered once the backend accepts: the next event follows in a new batch.
  c->close();
  EXPECT_EQ(wait_names(backend_, "x1", 4),
            (Names{"room_occupied", "member_added:alice", "member_removed:alice", "room_vacated"}));
}

TEST_F(Webhooks, ABackendThatWasDownGetsTheEventsWhenItIsBack) {
  backend_.stop();
  auto c = in_room("alice", "d1");
  c->close();
  // Connection refused meanwhile: nothing is lost, the queue holds the events.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (metric(engine(), "troupe_webhook_batches_retried_total") < 1 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms); // polling a counter: no event to await
  EXPECT_GE(metric(engine(), "troupe_webhook_queue_length"), 4);
  backend_.start();
  EXPECT_EQ(wait_names(backend_, "d1", 4, 20s),
            (Names{"room_occupied", "member_added:alice", "member_removed:alice", "room_vacated"}));
  EXPECT_EQ(metric(engine(), "troupe_webhook_events_dropped_total"), 0);
}

class WebhooksSigned : public Webhooks {
protected:
  std::vector<std::string> more_args() const override { return {"--backend-secret", "s3cret"}; }
};

TEST_F(WebhooksSigned, EveryAttemptIsSigned) {
  std::atomic<int> failures{1};
  backend_.on("/events", [&](const http_request&) {
    http_reply reply;
    if (failures-- > 0) reply.status = 500;
    return reply;
  });
  auto c = in_room("alice", "s1");
  ASSERT_TRUE(backend_.wait_for(2, 10s)); // the failure and its retry
  for (const auto& r : backend_.requests())
    EXPECT_TRUE(verify_signature(r.header("x-troupe-signature"), r.body, "s3cret")) << r.body;
}

class WebhooksBound : public Webhooks {
protected:
  std::vector<std::string> more_args() const override { return {"--webhook-queue", "10"}; }
};

TEST_F(WebhooksBound, AHangingBackendNeitherSlowsPublishingNorLosesEventsSilently) {
  backend_.on("/events", [](const http_request&) {
    http_reply reply;
    reply.hang = true;
    return reply;
  });
  auto pub = in_room("pub", "h0");
  // 20 rooms × 2 events (occupied, added) beyond the bound of 10: dropped and counted.
  std::vector<std::unique_ptr<blocking_connection>> held;
  for (int i = 0; i < 20; ++i)
    held.push_back(in_room("u" + std::to_string(i), "h" + std::to_string(i + 1)));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i)
    pub->publish("h0", value::from(std::string("m")));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s); // acks stay fast
  EXPECT_EQ(metric(engine(), "troupe_webhook_queue_length"), 10);
  EXPECT_EQ(metric(engine(), "troupe_webhook_events_dropped_total"), 42 - 10);
}

// Two nodes sharing Redis, both sending to one backend: the events are the cluster's, emitted
// once (presence.lua computes them), so a user with a tab on each node is one member.
TEST(WebhooksCluster, AUserOnTwoNodesIsOneMemberAddedAndRemovedOnce) {
  redis_server redis;
  http_backend backend;
  std::vector<std::unique_ptr<EngineProcess>> nodes;
  for (int i = 0; i < 2; ++i) {
    nodes.push_back(std::make_unique<EngineProcess>(std::vector<std::string>{
        "--redis", redis.url(), "--backend", backend.url(), "--backend-timeout", "1"}));
    nodes.back()->start();
  }
  auto on1 = connected_client(*nodes[0], "alice");
  on1->subscribe("c1");
  auto on2 = connected_client(*nodes[1], "alice");
  on2->subscribe("c1");
  // Events from different nodes are ordered per node only: bob comes once alice's are in.
  ASSERT_EQ(wait_names(backend, "c1", 2), (Names{"room_occupied", "member_added:alice"}));
  auto bob = connected_client(*nodes[1], "bob");
  bob->subscribe("c1");
  EXPECT_EQ(wait_names(backend, "c1", 3),
            (Names{"room_occupied", "member_added:alice", "member_added:bob"}));
  on1->close();
  // Its leave is in Redis (node 2 shows it) before the rest leave through node 2.
  on2->wait_view("c1",
                 [](const client::presence_snapshot& s) { return s.members.tabs("alice") == 1; });
  bob->close();
  // Leaves in one window of a node are one batch, in no set order: one at a time.
  ASSERT_EQ(wait_names(backend, "c1", 4).back(), "member_removed:bob");
  on2->close();
  EXPECT_EQ(wait_names(backend, "c1", 6),
            (Names{"room_occupied", "member_added:alice", "member_added:bob", "member_removed:bob",
                   "member_removed:alice", "room_vacated"}));
  // Nothing more comes: no node sent its own copy (a duplicate would have a new id).
  backend.wait_for(backend.count() + 1, 1s); // absence can only be awaited for a while
  EXPECT_EQ(names_in(unique_events(backend), "c1").size(), 6u);
}

// A node killed with its members: the sweep by a surviving node reports their departure, once.
TEST(WebhooksCluster, ADeadNodesMembersAreRemovedOnceBySweep) {
  redis_server redis;
  http_backend backend;
  std::vector<std::unique_ptr<EngineProcess>> nodes;
  for (int i = 0; i < 2; ++i) {
    nodes.push_back(std::make_unique<EngineProcess>(std::vector<std::string>{
        "--redis", redis.url(), "--backend", backend.url(), "--backend-timeout", "1"}));
    nodes.back()->start();
  }
  auto alice = connected_client(*nodes[0], "alice");
  alice->subscribe("k1");
  ASSERT_EQ(wait_names(backend, "k1", 2), (Names{"room_occupied", "member_added:alice"}));
  auto bob = connected_client(*nodes[1], "bob");
  bob->subscribe("k1");
  ASSERT_EQ(wait_names(backend, "k1", 3).back(), "member_added:bob");
  nodes[1]->kill_now();
  EXPECT_EQ(wait_names(backend, "k1", 4, 20s), (Names{"room_occupied", "member_added:alice",
                                                      "member_added:bob", "member_removed:bob"}));
  alice->close();
  EXPECT_EQ(wait_names(backend, "k1", 6),
            (Names{"room_occupied", "member_added:alice", "member_added:bob", "member_removed:bob",
                   "member_removed:alice", "room_vacated"}));
}

} // namespace
} // namespace troupe::test
