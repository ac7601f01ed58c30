// The links to Redis against a real redis-server started by the test (tests/support/
// redis_server.hpp): replies of every type, binary safety, EVALSHA with its NOSCRIPT fallback,
// pub/sub order, and the faults (a killed subscriber link, Redis stopped, frozen, restarted).
// Every wait runs the io_context in this thread until a condition holds or a deadline passes.

#include <utility> // before Boost 1.74's Asio
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "cluster/redis_connection.hpp"
#include "cluster/redis_subscriber.hpp"
#include "cluster/redis_url.hpp"
#include "tests/support/redis_server.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using troupe::cluster::link_state;
using troupe::cluster::parse_redis_url;
using troupe::cluster::redis_connection;
using troupe::cluster::redis_errc;
using troupe::cluster::redis_options;
using troupe::cluster::redis_reply;
using troupe::cluster::redis_script;
using troupe::cluster::redis_subscriber;
using troupe::test::redis_server;
using kind = redis_reply::kind;

namespace {

struct result {
  bool done = false;
  std::error_code ec;
  redis_reply reply;
};

class Redis : public ::testing::Test {
protected:
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::unique_ptr<redis_server> server = std::make_unique<redis_server>();

  // Runs the io_context here until `done()` or the deadline; true if done.
  template <class Done>
  bool run_until(Done done, steady::duration limit = 5s) {
    const auto deadline = steady::now() + limit;
    while (!done()) {
      const auto now = steady::now();
      if (now >= deadline) return false;
      io.run_one_for(deadline - now);
    }
    return true;
  }

  // Runs every handler that is ready, without waiting for timers.
  void drain() {
    while (io.poll() > 0) {}
  }

  struct link {
    std::unique_ptr<redis_connection> conn;
    std::vector<std::pair<link_state, std::string>> states;
    bool up() const { return !states.empty() && states.back().first == link_state::up; }
    bool down() const { return !states.empty() && states.back().first == link_state::down; }
  };

  std::unique_ptr<link> connect(const std::string& url, redis_options options = {},
                                bool wait_up = true) {
    auto l = std::make_unique<link>();
    l->conn = std::make_unique<redis_connection>(io.get_executor(), parse_redis_url(url), options);
    l->conn->on_state([s = l.get()](link_state st, std::string_view why) {
      s->states.emplace_back(st, std::string(why));
    });
    l->conn->start();
    if (wait_up) {
      EXPECT_TRUE(run_until([&] { return l->up(); })) << "the connection never came up";
    }
    return l;
  }

  struct subscription {
    std::unique_ptr<redis_subscriber> sub;
    std::vector<std::pair<redis_subscriber::event, std::string>> events;
    std::vector<std::pair<std::string, std::string>> messages;
    bool saw(redis_subscriber::event e) const {
      for (auto& [ev, why] : events)
        if (ev == e) return true;
      return false;
    }
  };

  std::unique_ptr<subscription> subscriber(redis_options options = {}) {
    auto s = std::make_unique<subscription>();
    s->sub = std::make_unique<redis_subscriber>(io.get_executor(), parse_redis_url(server->url()),
                                                options);
    s->sub->on_event([p = s.get()](redis_subscriber::event e, std::string_view why) {
      p->events.emplace_back(e, std::string(why));
    });
    s->sub->on_message([p = s.get()](std::string_view channel, std::string_view payload) {
      p->messages.emplace_back(std::string(channel), std::string(payload));
    });
    s->sub->start();
    EXPECT_TRUE(run_until([&] { return s->saw(redis_subscriber::event::up); }));
    return s;
  }

  // Subscribes and waits for Redis's confirmation.
  void subscribe(subscription& s, const std::string& channel) {
    bool done = false;
    std::error_code ec = make_error_code(redis_errc::timeout);
    s.sub->subscribe(channel, [&](std::error_code e) { done = true, ec = e; });
    ASSERT_TRUE(run_until([&] { return done; }));
    ASSERT_FALSE(ec) << ec.message();
  }

  result run(redis_connection& c, std::vector<std::string> argv) {
    auto r = std::make_shared<result>();
    c.command(std::move(argv), [r](std::error_code ec, redis_reply reply) {
      r->done = true, r->ec = ec, r->reply = std::move(reply);
    });
    EXPECT_TRUE(run_until([&] { return r->done; })) << "no completion";
    return *r;
  }

  result eval(redis_connection& c, const redis_script& s, std::vector<std::string> keys,
              std::vector<std::string> args) {
    auto r = std::make_shared<result>();
    c.eval_script(s, std::move(keys), std::move(args), [r](std::error_code ec, redis_reply reply) {
      r->done = true, r->ec = ec, r->reply = std::move(reply);
    });
    EXPECT_TRUE(run_until([&] { return r->done; })) << "no completion";
    return *r;
  }
};

std::string all_bytes(std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    s[i] = static_cast<char>(i * 7 % 256);
  return s;
}

} // namespace

TEST_F(Redis, RepliesOfEveryType) {
  auto l = connect(server->url());
  auto& c = *l->conn;

  auto r = run(c, {"SET", "k", "v"});
  ASSERT_FALSE(r.ec);
  EXPECT_EQ(r.reply.type, kind::status);
  EXPECT_EQ(r.reply.str, "OK");

  r = run(c, {"GET", "k"});
  EXPECT_EQ(r.reply.type, kind::string);
  EXPECT_EQ(r.reply.str, "v");

  r = run(c, {"GET", "missing"});
  EXPECT_EQ(r.reply.type, kind::nil);

  r = run(c, {"INCRBY", "n", "-42"});
  EXPECT_EQ(r.reply.type, kind::integer);
  EXPECT_EQ(r.reply.integer, -42);

  r = run(c, {"LPUSH", "k", "x"}); // k holds a string
  ASSERT_FALSE(r.ec);
  EXPECT_EQ(r.reply.type, kind::error);
  EXPECT_TRUE(r.reply.str.starts_with("WRONGTYPE")) << r.reply.str;

  r = run(c, {"NOSUCHCOMMAND"});
  EXPECT_TRUE(r.reply.is_error());

  r = run(c, {"MGET", "k", "missing"});
  ASSERT_EQ(r.reply.type, kind::array);
  ASSERT_EQ(r.reply.elements.size(), 2u);
  EXPECT_EQ(r.reply.elements[0].str, "v");
  EXPECT_TRUE(r.reply.elements[1].is_nil());

  r = run(c, {"EVAL", "return {1, 'two', {3, 'four'}, redis.status_reply('FINE')}", "0"});
  ASSERT_EQ(r.reply.type, kind::array);
  ASSERT_EQ(r.reply.elements.size(), 4u);
  EXPECT_EQ(r.reply.elements[0].integer, 1);
  EXPECT_EQ(r.reply.elements[1].str, "two");
  ASSERT_TRUE(r.reply.elements[2].is_array());
  EXPECT_EQ(r.reply.elements[2].elements[0].integer, 3);
  EXPECT_EQ(r.reply.elements[2].elements[1].str, "four");
  EXPECT_TRUE(r.reply.elements[3].is_status());
  EXPECT_EQ(r.reply.elements[3].str, "FINE");

  r = run(c, {"LRANGE", "nolist", "0", "-1"});
  ASSERT_TRUE(r.reply.is_array());
  EXPECT_TRUE(r.reply.elements.empty());

  // Refused without sending: nothing, and what would make this a pub/sub link.
  EXPECT_EQ(run(c, {}).ec, redis_errc::invalid_command);
  EXPECT_EQ(run(c, {"subscribe", "ch"}).ec, redis_errc::invalid_command);
  EXPECT_EQ(run(c, {"GET", "k"}).reply.str, "v"); // still a command link
}

TEST_F(Redis, RepliesComeInOrderAndCallbacksNeverRunInsideTheCall) {
  auto l = connect(server->url());
  std::vector<long long> got;
  bool inside = false, ran_inside = false;
  for (int i = 0; i < 5000; ++i) {
    inside = true;
    l->conn->command({"INCR", "counter"}, [&](std::error_code ec, redis_reply r) {
      ran_inside |= inside;
      EXPECT_FALSE(ec);
      got.push_back(r.integer);
    });
    inside = false;
  }
  ASSERT_TRUE(run_until([&] { return got.size() == 5000; }));
  EXPECT_FALSE(ran_inside);
  for (long long i = 0; i < 5000; ++i)
    ASSERT_EQ(got[i], i + 1);
}

TEST_F(Redis, BinarySafeKeysValuesAndScriptArguments) {
  auto l = connect(server->url());
  auto& c = *l->conn;
  const std::string key = std::string("k\0\r\n\xff", 5);
  const std::string small = all_bytes(256);
  const std::string big = all_bytes(3 * 1024 * 1024 + 17); // several reads and writes

  ASSERT_EQ(run(c, {"SET", key, small}).reply.str, "OK");
  EXPECT_EQ(run(c, {"GET", key}).reply.str, small);
  ASSERT_EQ(run(c, {"SET", key, big}).reply.str, "OK");
  EXPECT_EQ(run(c, {"GET", key}).reply.str, big);
  EXPECT_EQ(run(c, {"SET", "empty", ""}).reply.str, "OK");
  auto r = run(c, {"GET", "empty"});
  EXPECT_EQ(r.reply.type, kind::string);
  EXPECT_EQ(r.reply.str, "");

  redis_script echo("return {KEYS[1], ARGV[1]}");
  r = eval(c, echo, {key}, {small});
  ASSERT_TRUE(r.reply.is_array()) << r.reply.str;
  EXPECT_EQ(r.reply.elements[0].str, key);
  EXPECT_EQ(r.reply.elements[1].str, small);
}

TEST_F(Redis, EvalshaFallsBackToScriptLoadOnNoscript) {
  auto l = connect(server->url());
  auto& c = *l->conn;
  redis_script script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}");

  // The SHA1 is Redis's own name for the script.
  EXPECT_EQ(run(c, {"SCRIPT", "LOAD", script.text()}).reply.str, script.sha1());
  ASSERT_EQ(run(c, {"SCRIPT", "FLUSH"}).reply.str, "OK");
  ASSERT_EQ(run(c, {"SCRIPT", "EXISTS", script.sha1()}).reply.elements.at(0).integer, 0);
  ASSERT_EQ(run(c, {"CONFIG", "RESETSTAT"}).reply.str, "OK");

  auto r = eval(c, script, {"n"}, {"a"}); // NOSCRIPT, SCRIPT LOAD, EVALSHA
  ASSERT_FALSE(r.ec);
  ASSERT_TRUE(r.reply.is_array()) << r.reply.str;
  EXPECT_EQ(r.reply.elements[0].str, "n");
  EXPECT_EQ(r.reply.elements[1].str, "a");
  EXPECT_EQ(r.reply.elements[2].integer, 1);
  EXPECT_EQ(run(c, {"SCRIPT", "EXISTS", script.sha1()}).reply.elements.at(0).integer, 1);

  r = eval(c, script, {"n"}, {"b"}); // cached: EVALSHA alone
  EXPECT_EQ(r.reply.elements.at(2).integer, 2);

  ASSERT_EQ(run(c, {"SCRIPT", "FLUSH"}).reply.str, "OK"); // as after a Redis restart
  r = eval(c, script, {"n"}, {"c"});
  EXPECT_EQ(r.reply.elements.at(2).integer, 3);

  // Three EVALSHA succeeded, two were refused with NOSCRIPT, two loads.
  const std::string stats = run(c, {"INFO", "commandstats"}).reply.str;
  EXPECT_NE(stats.find("cmdstat_evalsha:calls=5,"), std::string::npos) << stats;
  EXPECT_NE(stats.find("cmdstat_script|load:calls=2,"), std::string::npos) << stats;

  // A script that does not compile: the load's error, once, no loop.
  r = eval(c, redis_script("return {"), {}, {});
  ASSERT_FALSE(r.ec);
  ASSERT_TRUE(r.reply.is_error());
  EXPECT_NE(r.reply.str.find("compil"), std::string::npos) << r.reply.str;
  // A script's own error passes through.
  r = eval(c, redis_script("return redis.error_reply('MINE failed')"), {}, {});
  ASSERT_TRUE(r.reply.is_error());
  EXPECT_EQ(r.reply.str, "MINE failed");
}

TEST_F(Redis, AuthAndSelect) {
  server = std::make_unique<redis_server>(redis_server::options{.password = "s3 cret"});
  auto db3 = connect(server->url(3));
  ASSERT_EQ(run(*db3->conn, {"SET", "where", "three"}).reply.str, "OK");
  auto db0 = connect(server->url(0));
  EXPECT_TRUE(run(*db0->conn, {"GET", "where"}).reply.is_nil());
  EXPECT_EQ(run(*db3->conn, {"GET", "where"}).reply.str, "three");

  // A wrong password: down with Redis's reason, and commands fail fast.
  std::string url = server->url();
  url.replace(url.find("s3 cret"), 7, "wrong");
  auto bad = connect(url, {}, false);
  ASSERT_TRUE(run_until([&] { return bad->down(); }));
  EXPECT_NE(bad->states.back().second.find("WRONGPASS"), std::string::npos)
      << bad->states.back().second;
  EXPECT_EQ(run(*bad->conn, {"PING"}).ec, redis_errc::not_connected);
}

TEST_F(Redis, NoServerFailsFastAndReportsDown) {
  const std::string url = server->url();
  server.reset(); // nothing listens on that port any more
  auto l = connect(url, {}, false);
  auto r = run(*l->conn, {"PING"});
  EXPECT_EQ(r.ec, redis_errc::not_connected);
  ASSERT_TRUE(run_until([&] { return l->down(); }));
  EXPECT_EQ(l->states.size(), 1u);
  EXPECT_FALSE(l->conn->is_up());
}

TEST_F(Redis, PubSubDeliversInOrder) {
  auto l = connect(server->url());
  auto s = subscriber();
  subscribe(*s, "room:1");
  const std::string binary = all_bytes(1000);
  constexpr int n = 3000;
  for (int i = 0; i < n; ++i)
    l->conn->command(
        {"PUBLISH", "room:1", i % 100 == 0 ? binary + std::to_string(i) : "m" + std::to_string(i)},
        [](std::error_code ec, redis_reply r) { EXPECT_EQ(r.integer, 1); });
  ASSERT_TRUE(run_until([&] { return s->messages.size() == n; }));
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(s->messages[i].first, "room:1");
    ASSERT_EQ(s->messages[i].second,
              i % 100 == 0 ? binary + std::to_string(i) : "m" + std::to_string(i));
  }
}

TEST_F(Redis, SubscriptionsAreReferenceCounted) {
  auto l = connect(server->url());
  auto s = subscriber();
  subscribe(*s, "a");
  subscribe(*s, "a"); // already live: confirmed at once
  s->sub->unsubscribe("a");
  s->sub->unsubscribe("never"); // not subscribed: nothing
  // Redis runs a connection's commands in order: once "b" is confirmed, whatever was sent
  // before it has been done.
  subscribe(*s, "b");
  EXPECT_EQ(run(*l->conn, {"PUBLISH", "a", "still"}).reply.integer, 1);
  // Received before the last unsubscribe: one still in the socket after it would be dropped.
  ASSERT_TRUE(run_until([&] { return s->messages.size() == 1; }));
  s->sub->unsubscribe("a");
  subscribe(*s, "c");
  EXPECT_EQ(run(*l->conn, {"PUBLISH", "a", "gone"}).reply.integer, 0);
  EXPECT_EQ(run(*l->conn, {"PUBLISH", "b", "here"}).reply.integer, 1);
  ASSERT_TRUE(run_until([&] { return s->messages.size() == 2; }));
  EXPECT_EQ(s->messages[0], std::make_pair(std::string("a"), std::string("still")));
  EXPECT_EQ(s->messages[1], std::make_pair(std::string("b"), std::string("here")));
}

TEST_F(Redis, KilledSubscriberLinkResubscribesAndReportsIt) {
  auto l = connect(server->url());
  auto s = subscriber();
  for (int i = 0; i < 50; ++i)
    subscribe(*s, "room:" + std::to_string(i));

  auto killed = run(*l->conn, {"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(killed.reply.is_integer()) << killed.reply.str;
  EXPECT_EQ(killed.reply.integer, 1);

  ASSERT_TRUE(run_until([&] { return s->saw(redis_subscriber::event::resubscribed); }, 10s));
  ASSERT_GE(s->events.size(), 3u);
  EXPECT_EQ(s->events[1].first, redis_subscriber::event::down);
  EXPECT_EQ(s->events[2].first, redis_subscriber::event::resubscribed);
  EXPECT_TRUE(s->sub->is_up());
  EXPECT_TRUE(l->up()); // the command link was not touched

  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(run(*l->conn, {"PUBLISH", "room:" + std::to_string(i), "after"}).reply.integer, 1);
  ASSERT_TRUE(run_until([&] { return s->messages.size() == 50; }));
  EXPECT_EQ(s->messages[49].first, "room:49");
}

TEST_F(Redis, RedisStoppedFailsFastThenComesBackByItself) {
  auto l = connect(server->url());
  auto s = subscriber();
  subscribe(*s, "room");

  const auto stopped_at = steady::now();
  server->stop();
  ASSERT_TRUE(run_until([&] { return l->down() && s->saw(redis_subscriber::event::down); }, 5s));
  EXPECT_LT(steady::now() - stopped_at, 5s);
  EXPECT_FALSE(l->conn->is_up());

  // Fail fast: completes on the next turn of the loop, without waiting for anything.
  auto r = std::make_shared<result>();
  l->conn->command({"GET", "k"},
                   [r](std::error_code ec, redis_reply) { r->done = true, r->ec = ec; });
  drain();
  ASSERT_TRUE(r->done);
  EXPECT_EQ(r->ec, redis_errc::not_connected);
  // A subscription asked while down: not live now, live after the reconnection.
  std::error_code sub_ec;
  s->sub->subscribe("later", [&](std::error_code ec) { sub_ec = ec; });
  drain();
  EXPECT_EQ(sub_ec, redis_errc::not_connected);

  const auto restarted_at = steady::now();
  server->start();
  ASSERT_TRUE(
      run_until([&] { return l->up() && s->saw(redis_subscriber::event::resubscribed); }, 10s));
  EXPECT_LT(steady::now() - restarted_at, 10s);
  EXPECT_EQ(l->states.size(), 3u); // up, down, up: repeated failed attempts are not reported

  EXPECT_EQ(run(*l->conn, {"PUBLISH", "room", "back"}).reply.integer, 1);
  EXPECT_EQ(run(*l->conn, {"PUBLISH", "later", "too"}).reply.integer, 1);
  ASSERT_TRUE(run_until([&] { return s->messages.size() == 2; }));
  EXPECT_EQ(s->messages[0].second, "back");
  EXPECT_EQ(s->messages[1].second, "too");
}

TEST_F(Redis, NoReplyWithinTheTimeoutBreaksTheLink) {
  redis_options fast;
  fast.command_timeout = 300ms;
  fast.connect_timeout = 300ms;
  fast.backoff_max = 500ms;
  auto l = connect(server->url(), fast);
  server->pause(); // Redis frozen: the kernel keeps the socket, nothing answers

  auto first = std::make_shared<result>(), second = std::make_shared<result>();
  const auto sent_at = steady::now();
  l->conn->command({"SET", "a", "1"}, [first](std::error_code ec, redis_reply) {
    first->done = true, first->ec = ec;
  });
  l->conn->command({"SET", "b", "2"}, [second](std::error_code ec, redis_reply) {
    second->done = true, second->ec = ec;
  });
  ASSERT_TRUE(run_until([&] { return first->done && second->done; }, 3s));
  EXPECT_GE(steady::now() - sent_at, 300ms);
  EXPECT_EQ(first->ec, redis_errc::timeout);
  EXPECT_EQ(second->ec, redis_errc::link_lost);
  ASSERT_TRUE(run_until([&] { return l->down(); }));
  EXPECT_NE(l->states.back().second.find("timeout"), std::string::npos);

  // While frozen, reconnection attempts time out and "up" is not reported: TCP alone is not up.
  run_until([] { return false; }, 1s);
  EXPECT_TRUE(l->down());

  server->resume();
  ASSERT_TRUE(run_until([&] { return l->up(); }, 10s));
  EXPECT_EQ(run(*l->conn, {"GET", "a"}).reply.str, "1"); // sent before the timeout: it ran
}

TEST_F(Redis, ClosingOrDestroyingWithCommandsInFlight) {
  auto l = connect(server->url());
  int closed = 0, other = 0;
  for (int i = 0; i < 1000; ++i)
    l->conn->command({"INCR", "x"}, [&](std::error_code ec, redis_reply) {
      ec == redis_errc::closed ? ++closed : ++other;
    });
  l->conn->close();
  ASSERT_TRUE(run_until([&] { return closed + other == 1000; }));
  EXPECT_EQ(closed, 1000); // never written: the writes wait for the loop
  EXPECT_EQ(run(*l->conn, {"PING"}).ec, redis_errc::closed);

  // Destroyed with commands in flight and a link up: no callback runs afterwards.
  auto m = connect(server->url());
  auto s = subscriber();
  subscribe(*s, "room");
  int called = 0;
  for (int i = 0; i < 1000; ++i)
    m->conn->command({"INCR", "y"}, [&](std::error_code, redis_reply) { ++called; });
  s->sub->subscribe("other", [&](std::error_code) { ++called; });
  run_until([&] { return called > 0; }); // some replies in, most in flight
  const int before = called;
  m.reset();
  s.reset();
  drain();
  EXPECT_EQ(called, before);
  EXPECT_LT(before, 1001);
}
