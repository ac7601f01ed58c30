// Tokens, per-request authorization, the request budget and the rooms-per-connection
// limit, against a real engine started with --secret / --rate / --max-rooms.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "clients/cpp/map_writer.hpp"
#include "raw_ws.hpp"
#include "support.hpp"
#include "tests/support/tokens.hpp"

namespace troupe::test {
namespace {

using client::map_writer;
using client::reply;
using json = nlohmann::json;

const std::string kSecret = "integration-test-secret";

// A valid map of each request kind on `room` (typing has no id).
std::string request_for(const std::string& kind, std::uint64_t id, const std::string& room) {
  map_writer w(kind);
  if (kind != "typing") w.u64("id", id);
  w.str("room", room);
  if (kind == "pub") w.str("data", "hello");
  if (kind == "history") w.u64("since", 0);
  if (kind == "typing") w.boolean("on", true);
  if (kind == "pset") {
    auto& pk = w.begin("state");
    pk.pack_map(1);
    pk.pack(std::string("status"));
    pk.pack(std::string("away"));
  }
  if (kind == "op") {
    w.u64("rev", 0).str("key", "k" + std::to_string(id));
    auto& pk = w.begin("op");
    pk.pack_array(1);
    pk.pack(std::string("x"));
  }
  return w.finish();
}

const std::vector<std::string> kReads = {"sub", "history", "presence", "open"};
const std::vector<std::string> kWrites = {"pub", "pset", "typing", "op"};

std::string code_of(const reply& r) { return std::string(r.map().str("code").value_or("")); }

std::string ping(std::uint64_t id) {
  map_writer w("ping");
  w.u64("id", id);
  return w.finish();
}

// Sends `frame` followed by a ping, and returns every map that came until each of `ids`
// and the ping were answered, but the ping's answer. The connection answers what it
// refuses in the frame's own reply (with the pong); rooms answer later.
std::vector<reply> exchange(RawWs& raw, const std::string& frame, std::set<std::uint64_t> ids) {
  const auto pong_id = raw.next_id();
  raw.send_binary(frame + ping(pong_id));
  ids.insert(pong_id);
  std::vector<reply> maps;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!ids.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("not every request was answered in time");
    auto f = raw.read(left);
    if (f.closed || !f.error.empty())
      throw std::runtime_error("closed: " + std::to_string(f.close_code));
    for (auto& m : f.maps) {
      const auto id = m.map().u64("id");
      if (id) ids.erase(*id);
      if (id != pong_id) maps.push_back(m);
    }
  }
  return maps;
}

// The first map answering `id`.
const reply& answer(const std::vector<reply>& maps, std::uint64_t id) {
  for (auto& m : maps)
    if (m.map().u64("id") == id) return m;
  throw std::runtime_error("no answer to " + std::to_string(id));
}

// What each id was answered: its type, or the error code.
std::map<std::uint64_t, std::string> outcomes(const std::vector<reply>& maps) {
  std::map<std::uint64_t, std::string> by_id;
  for (auto& m : maps)
    if (auto id = m.map().u64("id"))
      by_id.emplace(*id, m.type() == "error" ? code_of(m) : std::string(m.type()));
  return by_id;
}

class Secured : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--secret", kSecret}; }

  std::string token(json claims) { return mint_token(claims, kSecret); }

  // `connect` with this token (none if empty); returns the reply.
  reply connect(RawWs& raw, const std::string& token, const std::string& user = {}) {
    const auto id = raw.next_id();
    map_writer w("connect");
    w.u64("id", id);
    if (!token.empty()) w.str("token", token);
    if (!user.empty()) w.str("user", user);
    raw.send_binary(w.finish());
    return raw.read_reply(id);
  }

  // The token is answered `unauthorized` and the connection closed with 4403.
  void expect_refused(const std::string& token, const std::string& what) {
    SCOPED_TRACE(what);
    RawWs raw(engine().port());
    const auto id = raw.next_id();
    map_writer w("connect");
    w.u64("id", id).str("user", "someone");
    if (!token.empty()) w.str("token", token);
    raw.send_binary(w.finish());
    std::vector<reply> maps;
    auto end = raw.read_until_closed(10s, nullptr, &maps);
    EXPECT_TRUE(end.closed) << end.error;
    EXPECT_EQ(end.close_code, 4403);
    ASSERT_FALSE(maps.empty());
    EXPECT_EQ(maps[0].type(), "error");
    EXPECT_EQ(maps[0].map().u64("id"), id);
    EXPECT_EQ(code_of(maps[0]), "unauthorized");
    for (auto& m : maps)
      EXPECT_NE(m.type(), "connected");
  }

  // A connection with a token for `claims`.
  std::unique_ptr<RawWs> member(json claims) {
    auto raw = std::make_unique<RawWs>(engine().port());
    auto reply = connect(*raw, token(std::move(claims)));
    if (reply.type() != "connected") throw std::runtime_error("not connected");
    return raw;
  }
};

// --- connecting -----------------------------------------------------------------------------

TEST_F(Secured, MissingTokenIsRefused) { expect_refused("", "no token, only a user field"); }

TEST_F(Secured, ForgedTokenIsRefused) {
  expect_refused(mint_token({{"sub", "alice"}, {"rooms", {"*"}}}, "not-the-secret"), "wrong key");
  std::string tampered = token({{"sub", "alice"}, {"rooms", {"lobby"}}});
  const auto dot = tampered.find('.');
  tampered.replace(dot + 1, tampered.find('.', dot + 1) - dot - 1,
                   base64url(R"({"sub":"alice","rooms":["*"]})"));
  expect_refused(tampered, "payload swapped under a valid signature");
  expect_refused("garbage", "not a JWT");
}

TEST_F(Secured, ExpiredTokenIsRefused) {
  expect_refused(token({{"sub", "alice"}, {"exp", epoch_seconds(-5s)}}), "expired 5 s ago");
}

TEST_F(Secured, AlgNoneIsRefused) {
  const json claims = {{"sub", "alice"}, {"rooms", {"*"}}};
  expect_refused(hand_token({{"alg", "none"}, {"typ", "JWT"}}, claims), "alg none, by hand");
  expect_refused(mint_token(claims, kSecret, JWT_ALG_NONE), "alg none, by libjwt");
}

TEST_F(Secured, OtherAlgorithmsAreRefused) {
  const json claims = {{"sub", "alice"}, {"rooms", {"*"}}};
  expect_refused(mint_token(claims, kSecret, JWT_ALG_HS512), "HS512 with the right key");
  const std::string good = token(claims);
  expect_refused(base64url(R"({"alg":"RS256","typ":"JWT"})") + good.substr(good.find('.')),
                 "RS256 header over an HS256 signature");
}

TEST_F(Secured, TokenWithoutSubIsRefused) {
  expect_refused(token({{"name", "Nobody"}, {"rooms", {"*"}}}), "no sub");
}

TEST_F(Secured, ValidTokenConnectsAsItsSubject) {
  RawWs raw(engine().port());
  auto reply = connect(raw, token({{"sub", "alice"}, {"exp", epoch_seconds(3600s)}}), "mallory");
  ASSERT_EQ(reply.type(), "connected");
  EXPECT_EQ(reply.map().str("user").value_or(""), "alice"); // the user field is ignored
}

TEST_F(Secured, ExpiryDuringTheConnectionClosesWith4403) {
  RawWs raw(engine().port());
  const auto connected_at = std::chrono::steady_clock::now();
  auto reply =
      connect(raw, token({{"sub", "alice"}, {"exp", epoch_seconds(2s)}, {"rooms", {"*"}}}));
  ASSERT_EQ(reply.type(), "connected");
  std::vector<client::reply> maps;
  auto end = raw.read_until_closed(10s, nullptr, &maps);
  EXPECT_TRUE(end.closed) << end.error;
  EXPECT_EQ(end.close_code, 4403);
  // exp counts whole seconds: the close comes between 1 and 2 s after connecting (loose).
  EXPECT_GE(std::chrono::steady_clock::now() - connected_at, 900ms);
  auto disconnect =
      std::find_if(maps.begin(), maps.end(), [](auto& m) { return m.type() == "disconnect"; });
  ASSERT_NE(disconnect, maps.end());
  EXPECT_EQ(disconnect->map().u64("code"), 4403u);
  EXPECT_EQ(disconnect->map().boolean("reconnect"), false);
}

// --- authorization on every request ---------------------------------------------------------

TEST_F(Secured, EveryRequestKindOnAForbiddenRoomIsForbiddenAndRevealsNothing) {
  // The owner fills "vault": a message, a presence entry with state, a document.
  auto owner = member({{"sub", "owner"}, {"rooms", {"*"}}});
  auto setup = outcomes(exchange(*owner,
                                 request_for("sub", 1, "vault") + request_for("open", 2, "vault") +
                                     request_for("pub", 3, "vault"),
                                 {1, 2, 3}));
  EXPECT_EQ(setup,
            (std::map<std::uint64_t, std::string>{{1, "subscribed"}, {2, "opened"}, {3, "ack"}}));
  EXPECT_EQ(outcomes(exchange(*owner, request_for("pset", 4, "vault"), {4}))[4],
            "ok"); // once a member
  auto outsider = member({{"sub", "outsider"}, {"rooms", {"lobby"}}, {"read", {"news"}}});

  auto answers_for = [&](const std::string& room) {
    std::string frame;
    std::uint64_t id = 100;
    for (auto& kind : kReads)
      frame += request_for(kind, ++id, room);
    for (auto& kind : kWrites)
      frame += request_for(kind, ++id, room);
    return exchange(*outsider, frame, {});
  };
  const auto vault = answers_for("vault");
  const auto nowhere = answers_for("never-made");
  ASSERT_EQ(vault.size(), 8u);
  ASSERT_EQ(nowhere.size(), 8u);
  std::size_t without_id = 0;
  for (std::size_t i = 0; i < vault.size(); ++i) {
    EXPECT_EQ(vault[i].type(), "error");
    EXPECT_EQ(code_of(vault[i]), "forbidden");
    // Byte for byte the same answer for a room that exists and one that does not.
    EXPECT_EQ(vault[i].value().encode(), nowhere[i].value().encode());
    for (auto* key : {"msgs", "members", "seq", "text", "rev", "pseq"})
      EXPECT_FALSE(vault[i].map().has(key));
    if (!vault[i].map().has("id")) ++without_id;
  }
  EXPECT_EQ(without_id, 1u); // typing

  // Nothing reached the room: the owner's next message is number 2, the document is still
  // empty, and the owner saw no push from the outsider.
  auto after = exchange(
      *owner, request_for("pub", 5, "vault") + request_for("presence", 6, "vault"), {5, 6});
  std::uint64_t acked = 0;
  for (auto& m : after) {
    EXPECT_NE(m.type(), "typing");
    if (m.type() == "pdiff") {
      for (auto* list : {"joins", "leaves"})
        for (auto entries = *m.map().array(list); entries.size > 0; --entries.size, ++entries.ptr)
          EXPECT_NE(client::map_view(*entries.ptr).str("user").value_or(""), "outsider");
    }
    EXPECT_NE(m.type(), "op");
    if (m.type() == "msg") {
      EXPECT_EQ(m.map().str("user").value_or(""), "owner");
    }
    if (m.type() == "ack") acked = m.map().u64("seq").value_or(0);
    if (m.type() == "presence") {
      EXPECT_EQ(m.map().array("members")->size, 1u);
    }
  }
  EXPECT_EQ(acked, 2u);
  auto history = exchange(*owner, request_for("history", 7, "vault"), {7});
  EXPECT_EQ(answer(history, 7).map().array("msgs")->size, 2u);
}

TEST_F(Secured, ReadPatternsAllowOnlyReading) {
  auto reader = member({{"sub", "reader"}, {"read", {"news"}}});
  std::uint64_t id = 10;
  std::string frame;
  for (auto& kind : kReads)
    frame += request_for(kind, ++id, "news");
  auto reads = outcomes(exchange(*reader, frame, {11, 12, 13, 14}));
  EXPECT_EQ(reads, (std::map<std::uint64_t, std::string>{
                       {11, "subscribed"}, {12, "history"}, {13, "presence"}, {14, "opened"}}));

  frame.clear();
  for (auto& kind : kWrites)
    frame += request_for(kind, ++id, "news");
  auto writes = exchange(*reader, frame, {});
  ASSERT_EQ(writes.size(), 4u);
  for (auto& m : writes)
    EXPECT_EQ(code_of(m), "forbidden");
}

TEST_F(Secured, GlobPatternsMatchRuns) {
  auto member_of_42 = member({{"sub", "m"}, {"rooms", {"team-42:*", "lobby"}}});
  auto answers =
      exchange(*member_of_42,
               request_for("sub", 1, "team-42:design") + request_for("pub", 2, "team-42:chat") +
                   request_for("sub", 3, "lobby") + request_for("sub", 4, "team-43:design") +
                   request_for("sub", 5, "team-42") + request_for("pub", 6, "lobby2"),
               {1, 2, 3, 4, 5, 6});
  auto by_id = outcomes(answers);
  EXPECT_EQ(by_id[1], "subscribed");
  EXPECT_EQ(by_id[2], "ack");
  EXPECT_EQ(by_id[3], "subscribed");
  EXPECT_EQ(by_id[4], "forbidden");
  EXPECT_EQ(by_id[5], "forbidden");
  EXPECT_EQ(by_id[6], "forbidden");
}

TEST_F(Secured, NameAndInfoFromTheTokenShowInPresence) {
  auto alice = member({{"sub", "alice"},
                       {"name", "Alice A."},
                       {"info", {{"color", "red"}, {"avatar", 7}}},
                       {"rooms", {"lobby"}}});
  auto answers = exchange(*alice, request_for("sub", 1, "lobby"), {1});
  auto members = answer(answers, 1).map().array("members");
  ASSERT_TRUE(members);
  ASSERT_EQ(members->size, 1u);
  client::map_view entry(members->ptr[0]);
  EXPECT_EQ(entry.str("user").value_or(""), "alice");
  EXPECT_EQ(entry.str("name").value_or(""), "Alice A.");
  ASSERT_TRUE(entry.has("info"));
  client::map_view info(*entry.get("info"));
  EXPECT_EQ(info.str("color").value_or(""), "red");
  EXPECT_EQ(info.u64("avatar"), 7u);
}

// --- without a secret -------------------------------------------------------------------------

class OpenEngine : public EngineTest {};

TEST_F(OpenEngine, AnUnverifiedTokenNamesTheUserAndEveryRoomIsOpen) {
  RawWs raw(engine().port());
  const auto id = raw.next_id();
  map_writer w("connect");
  w.u64("id", id).str(
      "token", mint_token({{"sub", "carol"}, {"name", "Carol"}, {"rooms", {"x"}}}, "any key"));
  raw.send_binary(w.finish());
  auto reply = raw.read_reply(id);
  ASSERT_EQ(reply.type(), "connected");
  EXPECT_EQ(reply.map().str("user").value_or(""), "carol");
  auto answers = outcomes(exchange(
      raw, request_for("sub", 1, "anywhere") + request_for("pub", 2, "elsewhere"), {1, 2}));
  EXPECT_EQ(answers[1], "subscribed");
  EXPECT_EQ(answers[2], "ack");
}

// --- the request budget --------------------------------------------------------------------

class Budget : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--rate", "10"}; }
};

TEST_F(Budget, ABurstBeyondTwiceTheRateIsRateLimitedAndNotCarriedOut) {
  RawWs raw(engine().port());
  raw.hello("flooder"); // one token of the 20
  std::string frame;
  std::set<std::uint64_t> ids;
  for (std::uint64_t id = 1; id <= 40; ++id) {
    frame += request_for("pub", id, "burst");
    ids.insert(id);
  }
  std::size_t acks = 0, limited = 0;
  for (auto& [id, outcome] : outcomes(exchange(raw, frame, ids))) {
    if (outcome == "ack") ++acks;
    if (outcome == "rate_limited") ++limited;
  }
  EXPECT_EQ(acks + limited, 40u);
  // 19 tokens left after connect, plus what refilled meanwhile (10/s: at most a few).
  EXPECT_GE(acks, 19u);
  EXPECT_LE(acks, 23u);
  EXPECT_GE(limited, 16u);
  // Only the accepted ones were published: another connection (its own budget) sees them.
  RawWs other(engine().port());
  other.hello("reader");
  auto history = exchange(other, request_for("history", 1, "burst"), {1});
  EXPECT_EQ(answer(history, 1).map().array("msgs")->size, acks);
}

class Flood : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--rate", "100"}; }
};

TEST_F(Flood, AFloodIsClosedWith4429WhileAnotherClientStaysFast) {
  std::atomic<bool> flooding{true};
  std::vector<double> latencies_ms;
  std::string calm_failure;
  std::thread calm([&] {
    try {
      RawWs raw(engine().port());
      raw.hello("calm");
      // 50 pings a second: within its own budget of 100.
      while (flooding.load()) {
        const auto id = raw.next_id();
        const auto sent = std::chrono::steady_clock::now();
        raw.send_binary(ping(id));
        auto reply = raw.read_reply(id, 5s);
        if (reply.type() != "pong") calm_failure = "answered " + code_of(reply);
        latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent)
                .count());
        std::this_thread::sleep_for(20ms); // pacing, not synchronisation
      }
    } catch (const std::exception& e) {
      calm_failure = e.what();
    }
  });

  RawWs flooder(engine().port());
  flooder.hello("flooder");
  std::string frame;
  for (int i = 0; i < 200; ++i)
    frame += ping(1 + i);
  const auto start = std::chrono::steady_clock::now();
  RawWs::Frame end;
  std::vector<reply> last_words;
  std::size_t limited = 0;
  while (!end.closed && end.error.empty() && std::chrono::steady_clock::now() - start < 20s) {
    try {
      flooder.send_binary(frame, 5s);
    } catch (const std::exception&) {
      // The engine closed while we wrote: the close frame is still to be read.
    }
    for (std::size_t answered = 0; answered < 200;) {
      auto f = flooder.read(5s);
      if (f.closed || !f.error.empty()) {
        end = f;
        break;
      }
      answered += f.maps.size();
      for (auto& m : f.maps) {
        if (m.type() == "error" && code_of(m) == "rate_limited") ++limited;
        if (m.type() == "disconnect") last_words.push_back(m);
      }
    }
  }
  const auto lasted = std::chrono::steady_clock::now() - start;
  flooding = false;
  calm.join();

  EXPECT_TRUE(end.closed) << end.error;
  EXPECT_EQ(end.close_code, 4429);
  EXPECT_GT(limited, 1000u);
  // Closed after some seconds of flooding, not at the first refusal (loose bounds).
  EXPECT_GE(lasted, 2s);
  EXPECT_LT(lasted, 15s);
  ASSERT_EQ(last_words.size(), 1u);
  EXPECT_EQ(last_words[0].map().u64("code"), 4429u);
  EXPECT_EQ(last_words[0].map().boolean("reconnect"), false);

  EXPECT_EQ(calm_failure, "");
  ASSERT_GE(latencies_ms.size(), 20u);
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p99 = latencies_ms[latencies_ms.size() * 99 / 100];
  // A loose bound, meant to catch the flood starving others, not to measure: on a quiet
  // machine this is well under 10 ms.
  EXPECT_LT(p99, 200.0) << "median " << latencies_ms[latencies_ms.size() / 2] << " ms";
}

// --- rooms per connection ------------------------------------------------------------------

class RoomLimit : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--max-rooms", "2"}; }
};

TEST_F(RoomLimit, TheThirdRoomIsRefusedUntilOneIsLeft) {
  RawWs raw(engine().port());
  raw.hello("collector");
  auto answers = exchange(raw,
                          request_for("sub", 1, "a") + request_for("open", 2, "b") +
                              request_for("sub", 3, "c") + request_for("open", 4, "c") +
                              request_for("open", 5, "a") + request_for("sub", 6, "b"),
                          {1, 2, 3, 4, 5, 6});
  auto by_id = outcomes(answers);
  EXPECT_EQ(by_id[1], "subscribed");
  EXPECT_EQ(by_id[2], "opened");
  EXPECT_EQ(by_id[3], "too_large");
  EXPECT_EQ(by_id[4], "too_large");
  EXPECT_EQ(by_id[5], "opened"); // a room already held is no new room
  EXPECT_EQ(by_id[6], "subscribed");
  // Publishing holds no room.
  EXPECT_EQ(outcomes(exchange(raw, request_for("pub", 7, "c"), {7}))[7], "ack");

  map_writer unsub("unsub");
  unsub.u64("id", 8).str("room", "a");
  map_writer close("close");
  close.u64("id", 9).str("room", "a");
  by_id = outcomes(
      exchange(raw, unsub.finish() + close.finish() + request_for("sub", 10, "c"), {8, 9, 10}));
  EXPECT_EQ(by_id[8], "unsubscribed");
  EXPECT_EQ(by_id[9], "closed");
  EXPECT_EQ(by_id[10], "subscribed");
}

} // namespace
} // namespace troupe::test
