// The backend HTTP API (/api), connection limits, the Origin allow-list and the handshake
// time, against a real engine: plain HTTP over a socket of the test's own.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include <stdlib.h> // mkdtemp

#include "clients/cpp/map_writer.hpp"
#include "raw_ws.hpp"
#include "support.hpp"

namespace troupe::test {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using client::map_writer;
using client::reply;
using json = nlohmann::json;
using boost::system::error_code;

const std::string api_key = "k3y-for-tests";

// One keep-alive HTTP connection to the engine; every operation is bounded by `timeout`.
class Http {
public:
  explicit Http(int port, std::chrono::milliseconds timeout = 10s) : stream_(io_) {
    error_code result;
    stream_.expires_after(timeout);
    stream_.async_connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                                 static_cast<unsigned short>(port)),
                          [&](error_code ec) { result = ec; });
    run();
    if (result) throw std::runtime_error("connect: " + result.message());
  }

  http::response<http::string_body> send(http::request<http::string_body> request,
                                         std::chrono::milliseconds timeout = 10s) {
    request.set(http::field::host, "127.0.0.1");
    request.prepare_payload();
    error_code result;
    stream_.expires_after(timeout);
    http::async_write(stream_, request, [&](error_code ec, std::size_t) { result = ec; });
    run();
    if (result) throw std::runtime_error("write: " + result.message());
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    if (request.method() == http::verb::head) parser.skip(true);
    stream_.expires_after(timeout);
    http::async_read(stream_, buffer_, parser, [&](error_code ec, std::size_t) { result = ec; });
    run();
    if (result) throw std::runtime_error("read: " + result.message());
    return parser.release();
  }

  // Sends nothing and waits for the server to end the connection. True if it did in time.
  bool closed_by_server(std::chrono::milliseconds timeout) {
    error_code result;
    char byte;
    stream_.expires_after(timeout);
    stream_.async_read_some(net::buffer(&byte, 1),
                            [&](error_code ec, std::size_t) { result = ec; });
    run();
    return result == net::error::eof || result == net::error::connection_reset;
  }

private:
  void run() {
    io_.restart();
    io_.run(); // tcp_stream's expiry ends every operation
  }

  net::io_context io_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

struct Answer {
  int status = 0;
  json body;
  std::string cache_control;
};

Answer answer_of(const http::response<http::string_body>& response) {
  Answer a;
  a.status = static_cast<int>(response.result_int());
  a.body = json::parse(response.body(), nullptr, false);
  a.cache_control = std::string(response[http::field::cache_control]);
  return a;
}

http::request<http::string_body>
make_request(http::verb verb, const std::string& target, const std::string& body = {},
             const std::optional<std::string>& authorization = "apikey " + api_key) {
  http::request<http::string_body> request{verb, target, 11};
  if (authorization) request.set(http::field::authorization, *authorization);
  if (!body.empty()) request.set(http::field::content_type, "application/json");
  request.body() = body;
  return request;
}

// A WebSocket upgrade request for /ws, with an Origin header if given.
http::request<http::string_body> upgrade_request(const std::optional<std::string>& origin = {}) {
  http::request<http::string_body> request{http::verb::get, "/ws", 11};
  request.set(http::field::upgrade, "websocket");
  request.set(http::field::connection, "Upgrade");
  request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  request.set(http::field::sec_websocket_version, "13");
  if (origin) request.set(http::field::origin, *origin);
  return request;
}

// The JSON of a MessagePack value the engine sent.
json json_of(const msgpack::object& object) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, object);
  return json::from_msgpack(buffer.data(), buffer.data() + buffer.size());
}

// Subscribes `raw` (connected) to `room`; returns the `subscribed` reply.
reply subscribe(RawWs& raw, const std::string& room) {
  const auto id = raw.next_id();
  map_writer w("sub");
  w.u64("id", id).str("room", room);
  raw.send_binary(w.finish());
  return raw.read_reply(id);
}

// The next `msg` pushes on `raw`, up to `count`, each within the bound.
std::vector<reply> read_msgs(RawWs& raw, std::size_t count) {
  std::vector<reply> msgs;
  while (msgs.size() < count) {
    auto frame = raw.read(5s);
    if (frame.closed || !frame.error.empty()) break;
    for (auto& map : frame.maps)
      if (map.type() == "msg") msgs.push_back(map);
  }
  return msgs;
}

void expect_ping_answered(RawWs& raw) {
  const auto id = raw.next_id();
  map_writer w("ping");
  w.u64("id", id);
  raw.send_binary(w.finish());
  EXPECT_EQ(raw.read_reply(id).type(), "pong");
}

class HttpApi : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override {
    return {"--api-key", api_key, "--max-data", "1024"};
  }

  Answer call(http::verb verb, const std::string& target, const std::string& body = {},
              const std::optional<std::string>& authorization = "apikey " + api_key) {
    Http http(engine().port());
    return answer_of(http.send(make_request(verb, target, body, authorization)));
  }
  Answer publish(const json& body) { return call(http::verb::post, "/api/publish", body.dump()); }

  // Expects a JSON error {error: code, reason} with `status`, never cached.
  void expect_error(const Answer& a, int status, const std::string& code, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(a.status, status) << a.body.dump();
    ASSERT_TRUE(a.body.is_object()) << a.body.dump();
    EXPECT_EQ(a.body.value("error", ""), code);
    EXPECT_TRUE(a.body.contains("reason") && a.body["reason"].is_string());
    EXPECT_EQ(a.cache_control, "no-store");
  }
};

TEST_F(HttpApi, PublishIsSequencedAndDeliveredInOrder) {
  RawWs raw(engine().port());
  raw.hello("reader");
  ASSERT_EQ(subscribe(raw, "news").type(), "subscribed");

  for (int i = 1; i <= 3; ++i) {
    auto a = publish({{"room", "news"}, {"data", {{"n", i}, {"text", "hello"}}}});
    ASSERT_EQ(a.status, 200) << a.body.dump();
    EXPECT_EQ(a.body, (json{{"seq", i}}));
    EXPECT_EQ(a.cache_control, "no-store");
  }
  auto named = publish({{"room", "news"}, {"data", "plain"}, {"user", "backend"}});
  ASSERT_EQ(named.status, 200) << named.body.dump();
  EXPECT_EQ(named.body["seq"], 4);

  auto msgs = read_msgs(raw, 4);
  ASSERT_EQ(msgs.size(), 4u);
  for (int i = 1; i <= 3; ++i) {
    const auto& m = msgs[i - 1].map();
    EXPECT_EQ(m.u64("seq").value_or(0), static_cast<std::uint64_t>(i));
    EXPECT_EQ(m.str("user").value_or(""), "api");
    EXPECT_EQ(m.str("room").value_or(""), "news");
    ASSERT_TRUE(m.has("data"));
    EXPECT_EQ(json_of(*m.get("data")), (json{{"n", i}, {"text", "hello"}}));
  }
  EXPECT_EQ(msgs[3].map().str("user").value_or(""), "backend");
  EXPECT_EQ(json_of(*msgs[3].map().get("data")), json("plain"));
}

TEST_F(HttpApi, SameKeyTwiceIsOneMessage) {
  RawWs raw(engine().port());
  raw.hello("reader");
  ASSERT_EQ(subscribe(raw, "dedup").type(), "subscribed");

  auto first = publish({{"room", "dedup"}, {"data", 1}, {"key", "order-17"}});
  auto again = publish({{"room", "dedup"}, {"data", 1}, {"key", "order-17"}});
  auto next = publish({{"room", "dedup"}, {"data", 2}});
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(first.body["seq"], 1);
  EXPECT_EQ(again.body["seq"], 1);
  EXPECT_EQ(next.body["seq"], 2);

  // In order: the keyed message once, then the next one; nothing in between.
  auto msgs = read_msgs(raw, 2);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].map().u64("seq").value_or(0), 1u);
  EXPECT_EQ(msgs[0].map().str("key").value_or(""), "order-17");
  EXPECT_EQ(msgs[1].map().u64("seq").value_or(0), 2u);
}

TEST_F(HttpApi, MissingOrWrongKeyIs401) {
  const std::string body = json{{"room", "r"}, {"data", 1}}.dump();
  expect_error(call(http::verb::post, "/api/publish", body, std::nullopt), 401, "unauthorized",
               "no Authorization");
  expect_error(call(http::verb::post, "/api/publish", body, "apikey wrong"), 401, "unauthorized",
               "wrong key");
  expect_error(call(http::verb::post, "/api/publish", body, "apikey " + api_key + "x"), 401,
               "unauthorized", "the key and more");
  expect_error(call(http::verb::post, "/api/publish", body, "Bearer " + api_key), 401,
               "unauthorized", "another scheme");
  expect_error(call(http::verb::get, "/api/presence?room=r", {}, std::nullopt), 401, "unauthorized",
               "presence without a key");
  // Nothing was published: history is empty.
  auto history = call(http::verb::get, "/api/history?room=r");
  ASSERT_EQ(history.status, 200) << history.body.dump();
  EXPECT_EQ(history.body["seq"], 0);
  // The scheme's case does not matter.
  EXPECT_EQ(call(http::verb::post, "/api/publish", body, "ApiKey " + api_key).status, 200);
}

TEST_F(HttpApi, BadBodiesAndParametersAre400) {
  auto post = [&](const std::string& body) { return call(http::verb::post, "/api/publish", body); };
  expect_error(post("{not json"), 400, "bad_request", "not JSON");
  expect_error(post("[1,2]"), 400, "bad_request", "not an object");
  expect_error(post(R"({"data":1})"), 400, "bad_request", "missing room");
  expect_error(post(R"({"room":7,"data":1})"), 400, "bad_request", "room not a string");
  expect_error(post(R"({"room":"has space","data":1})"), 400, "bad_request", "bad room name");
  expect_error(post(R"({"room":"r"})"), 400, "bad_request", "missing data");
  expect_error(post(R"({"room":"r","data":1,"key":5})"), 400, "bad_request", "key not a string");
  expect_error(call(http::verb::get, "/api/presence"), 400, "bad_request", "presence: no room");
  expect_error(call(http::verb::get, "/api/history?room=a%20b"), 400, "bad_request",
               "history: bad room");
  expect_error(call(http::verb::get, "/api/history?room=r&since=x"), 400, "bad_request",
               "history: bad since");
  expect_error(call(http::verb::get, "/api/history?room=r&limit=0"), 400, "bad_request",
               "history: zero limit");
  expect_error(call(http::verb::post, "/api/disconnect", R"({"user":""})"), 400, "bad_request",
               "disconnect: empty user");
  // Percent-encoded room names are decoded.
  EXPECT_EQ(call(http::verb::get, "/api/history?room=team%3A42").status, 200);
}

TEST_F(HttpApi, BodyOverTheLimitIs413) {
  const json body{{"room", "r"}, {"data", std::string(300 * 1024, 'x')}};
  expect_error(publish(body), 413, "too_large", "body over the limit");
}

TEST_F(HttpApi, DataOverMaxDataIs413AndNotPublished) {
  expect_error(publish({{"room", "big"}, {"data", std::string(2000, 'x')}}), 413, "too_large",
               "data over --max-data 1024");
  auto history = call(http::verb::get, "/api/history?room=big");
  ASSERT_EQ(history.status, 200);
  EXPECT_EQ(history.body["seq"], 0);
  // Just under the limit passes.
  EXPECT_EQ(publish({{"room", "big"}, {"data", std::string(1000, 'x')}}).status, 200);
}

TEST_F(HttpApi, UnknownRouteIs404) {
  expect_error(call(http::verb::get, "/api/nothing"), 404, "not_found", "unknown path");
  expect_error(call(http::verb::get, "/api/publish"), 404, "not_found", "publish with GET");
  expect_error(call(http::verb::post, "/api"), 404, "not_found", "the bare prefix");
  // Every call is counted, answered or refused.
  Http http(engine().port());
  const auto metrics =
      http.send(make_request(http::verb::get, "/metrics", {}, std::nullopt)).body();
  EXPECT_NE(metrics.find("\ntroupe_api_requests_total 3\n"), std::string::npos) << metrics;
}

TEST_F(HttpApi, PresenceListsSubscribers) {
  RawWs alice(engine().port());
  const std::string client(alice.hello("alice").map().str("client").value_or(""));
  ASSERT_EQ(subscribe(alice, "lobby").type(), "subscribed");
  RawWs bob(engine().port());
  bob.hello("bob");
  ASSERT_EQ(subscribe(bob, "lobby").type(), "subscribed");
  // Presence lists what it has announced: once alice hears of bob, both are in.
  bool heard = false;
  while (!heard) {
    auto frame = alice.read(5s);
    ASSERT_FALSE(frame.closed || !frame.error.empty());
    for (auto& map : frame.maps)
      heard = heard || map.type() == "pdiff";
  }

  auto a = call(http::verb::get, "/api/presence?room=lobby");
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.cache_control, "no-store");
  EXPECT_TRUE(a.body["pseq"].is_number_unsigned());
  EXPECT_GE(a.body["pseq"].get<std::uint64_t>(), 1u);
  ASSERT_TRUE(a.body["members"].is_array());
  ASSERT_EQ(a.body["members"].size(), 2u) << a.body.dump();
  std::set<std::string> users;
  for (const auto& m : a.body["members"]) {
    users.insert(m.value("user", ""));
    if (m.value("user", "") == "alice") {
      EXPECT_EQ(m.value("client", ""), client);
    }
  }
  EXPECT_EQ(users, (std::set<std::string>{"alice", "bob"}));

  auto empty = call(http::verb::get, "/api/presence?room=nobody-here");
  ASSERT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body["members"], json::array());
}

TEST_F(HttpApi, HistorySinceAndLimit) {
  for (int i = 1; i <= 5; ++i) {
    json body{{"room", "log"}, {"data", {{"n", i}}}};
    if (i == 4) body["key"] = "fourth";
    ASSERT_EQ(publish(body).status, 200);
  }
  auto a = call(http::verb::get, "/api/history?room=log&since=2&limit=2");
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.body["seq"], 5);
  EXPECT_TRUE(a.body["epoch"].is_string());
  ASSERT_EQ(a.body["msgs"].size(), 2u) << a.body.dump();
  const auto& third = a.body["msgs"][0];
  EXPECT_EQ(third["seq"], 3);
  EXPECT_EQ(third["room"], "log");
  EXPECT_EQ(third["user"], "api");
  EXPECT_EQ(third["data"], (json{{"n", 3}}));
  EXPECT_TRUE(third["ts"].is_number());
  EXPECT_FALSE(third.contains("t"));
  EXPECT_EQ(a.body["msgs"][1]["seq"], 4);
  EXPECT_EQ(a.body["msgs"][1]["key"], "fourth");

  auto all = call(http::verb::get, "/api/history?room=log");
  ASSERT_EQ(all.status, 200);
  ASSERT_EQ(all.body["msgs"].size(), 5u);
  EXPECT_EQ(all.body["msgs"][4]["data"], (json{{"n", 5}}));
}

TEST_F(HttpApi, DisconnectClosesEveryConnectionOfAUser) {
  RawWs bob1(engine().port());
  RawWs bob2(engine().port());
  RawWs carol(engine().port());
  bob1.hello("bob");
  bob2.hello("bob");
  carol.hello("carol");

  auto a = call(http::verb::post, "/api/disconnect", R"({"user":"bob"})");
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.body, (json{{"closed", 2}}));

  for (RawWs* bob : {&bob1, &bob2}) {
    std::vector<reply> maps;
    auto end = bob->read_until_closed(5s, nullptr, &maps);
    EXPECT_TRUE(end.closed) << end.error;
    EXPECT_EQ(end.close_code, 4403);
    bool told = false;
    for (auto& m : maps)
      if (m.type() == "disconnect") {
        told = true;
        EXPECT_EQ(m.map().u64("code").value_or(0), 4403u);
        EXPECT_EQ(m.map().boolean("reconnect"), std::optional<bool>(false));
      }
    EXPECT_TRUE(told);
  }
  expect_ping_answered(carol);
  EXPECT_EQ(call(http::verb::post, "/api/disconnect", R"({"user":"bob"})").body,
            (json{{"closed", 0}}));
}

class HttpApiOff : public EngineTest {};

TEST_F(HttpApiOff, WithoutApiKeyTheApiIsOff) {
  Http http(engine().port());
  auto a = answer_of(http.send(make_request(http::verb::post, "/api/publish",
                                            R"({"room":"r","data":1})", "apikey anything")));
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.body.value("error", ""), "not_found");
  // The rest of HTTP is unchanged.
  auto health = http.send(make_request(http::verb::get, "/health", {}, std::nullopt));
  EXPECT_EQ(health.result_int(), 200u);
}

// Static files from a --web directory of the test's own.
class StaticFiles : public EngineTest {
protected:
  StaticFiles() {
    std::string pattern = (std::filesystem::temp_directory_path() / "troupe-web-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    web_ = pattern;
    std::filesystem::create_directories(web_ + "/lib");
    std::ofstream(web_ + "/index.html") << "<!doctype html><title>demo</title>";
    std::ofstream(web_ + "/lib/app.js") << "export const x = 1;";
  }
  ~StaticFiles() override {
    std::error_code ec;
    std::filesystem::remove_all(web_, ec);
  }
  std::vector<std::string> extra_args() const override { return {"--web", web_}; }
  std::string web_;
};

TEST_F(StaticFiles, FilesAreServedAndNothingElse) {
  Http http(engine().port());
  auto get = [&](const std::string& target) {
    return http.send(make_request(http::verb::get, target, {}, std::nullopt));
  };
  auto index = get("/");
  EXPECT_EQ(index.result_int(), 200u);
  EXPECT_EQ(index.body(), "<!doctype html><title>demo</title>");
  auto module = get("/lib/app.js");
  EXPECT_EQ(module.result_int(), 200u);
  EXPECT_EQ(std::string(module[http::field::content_type]).rfind("text/javascript", 0), 0u);
  // A directory is no file: a 404, and the connection goes on.
  EXPECT_EQ(get("/lib").result_int(), 404u);
  EXPECT_EQ(get("/lib/").result_int(), 404u);
  EXPECT_EQ(get("/../etc/passwd").result_int(), 404u);
  EXPECT_EQ(get("/missing.js").result_int(), 404u);
  EXPECT_EQ(get("/health").result_int(), 200u);
}

// Upgrades from 127.0.0.1 until one is refused; checks the refusal and that closing one
// frees its slot.
void expect_limit(int port, std::size_t allowed) {
  std::vector<std::unique_ptr<RawWs>> open;
  for (std::size_t i = 0; i < allowed; ++i)
    open.push_back(std::make_unique<RawWs>(port));
  {
    Http http(port);
    auto refused = answer_of(http.send(upgrade_request()));
    EXPECT_EQ(refused.status, 503);
    EXPECT_EQ(refused.body.value("error", ""), "unavailable");
  }
  open.pop_back(); // closes its socket: the engine notices and frees the slot
  // Bounded: the engine frees the slot when it reads the end of the dropped connection.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  int status = 0;
  std::unique_ptr<Http> upgraded;
  while (std::chrono::steady_clock::now() < deadline) {
    upgraded = std::make_unique<Http>(port);
    status = static_cast<int>(upgraded->send(upgrade_request()).result_int());
    if (status == 101) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(status, 101);
}

class ConnectionsPerIp : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--max-connections-per-ip", "2"}; }
};

TEST_F(ConnectionsPerIp, ThirdUpgradeFromOneAddressIs503) { expect_limit(engine().port(), 2); }

class ConnectionsTotal : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--max-connections", "3"}; }
};

TEST_F(ConnectionsTotal, FourthUpgradeIs503) {
  expect_limit(engine().port(), 3);
  // Plain HTTP is not a WebSocket connection: it still works at the limit.
  Http http(engine().port());
  EXPECT_EQ(http.send(make_request(http::verb::get, "/health", {}, std::nullopt)).result_int(),
            200u);
}

class Origins : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override {
    return {"--origins", "https://good.example, https://also.example"};
  }
};

TEST_F(Origins, OnlyListedBrowserOriginsMayUpgrade) {
  {
    Http http(engine().port());
    auto evil = answer_of(http.send(upgrade_request("https://evil.example")));
    EXPECT_EQ(evil.status, 403);
    EXPECT_EQ(evil.body.value("error", ""), "forbidden");
  }
  for (const char* good : {"https://good.example", "https://also.example"}) {
    Http http(engine().port());
    EXPECT_EQ(http.send(upgrade_request(std::string(good))).result_int(), 101u) << good;
  }
  Http no_origin(engine().port());
  EXPECT_EQ(no_origin.send(upgrade_request()).result_int(), 101u);
  // Operators see refusals in /metrics.
  Http http(engine().port());
  const auto metrics =
      http.send(make_request(http::verb::get, "/metrics", {}, std::nullopt)).body();
  EXPECT_NE(metrics.find("\ntroupe_refused_upgrades_total 1\n"), std::string::npos) << metrics;
}

class HandshakeTimeout : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--handshake-timeout", "1"}; }
};

TEST_F(HandshakeTimeout, SilentTcpIsClosed) {
  Http silent(engine().port());
  // Loose bound: closed after about 1 s, well before 5.
  EXPECT_TRUE(silent.closed_by_server(5s));
}

TEST_F(HandshakeTimeout, UpgradeWithoutConnectIsClosedWith4401) {
  RawWs raw(engine().port());
  // Loose bound: the connect deadline is the same option (1 s here, 10 s by default).
  auto end = raw.read_until_closed(5s);
  EXPECT_TRUE(end.closed) << end.error;
  EXPECT_EQ(end.close_code, 4401);
}

} // namespace
} // namespace troupe::test

namespace troupe::test {
namespace {

// Rooms a connection only publishes to are not held by it: they are evicted after
// --room-idle like any other room nobody holds, so touching many rooms costs no memory.
class OneOffRooms : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--room-idle", "1"}; }
};

TEST_F(OneOffRooms, RoomsOnlyPublishedToAreReleased) {
  RawWs raw(engine().port());
  raw.hello("publisher");
  const auto sub_id = raw.next_id();
  map_writer sub("sub");
  sub.u64("id", sub_id).str("room", "kept");
  raw.send_binary(sub.finish());
  ASSERT_EQ(raw.read_reply(sub_id).type(), "subscribed");
  for (int i = 0; i < 5; ++i) {
    const auto id = raw.next_id();
    map_writer pub("pub");
    pub.u64("id", id).str("room", "one-off-" + std::to_string(i)).str("data", "x");
    raw.send_binary(pub.finish());
    ASSERT_EQ(raw.read_reply(id).type(), "ack");
  }
  // Bounded: eviction runs --room-idle after the last release.
  Http http(engine().port());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  long rooms = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    auto health =
        json::parse(http.send(make_request(http::verb::get, "/health", {}, std::nullopt)).body());
    rooms = health.value("rooms", -1L);
    if (rooms == 1) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(rooms, 1) << "only the subscribed room stays in memory";
  expect_ping_answered(raw);
}

} // namespace
} // namespace troupe::test
