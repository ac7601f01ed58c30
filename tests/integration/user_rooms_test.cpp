// Per-user rooms against a real engine: `user:<id>` is readable only by that user's
// connections and writable by no client; a backend publishes into it with /api/publish, and
// every tab of the user gets it, with seq and recovery as in any room.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <map>
#include <thread>

#include "support.hpp"
#include "tests/support/tokens.hpp"

namespace troupe::test {
namespace {

namespace http = boost::beast::http;

std::pair<int, std::string> api_publish(int port, const std::string& body) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  http::request<http::string_body> request{http::verb::post, "/api/publish", 11};
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::authorization, "apikey k");
  request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  http::write(socket, request);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  return {static_cast<int>(response.result_int()), response.body()};
}

// The error code a request was refused with ("" if it was not).
template <class Request>
std::string refusal(Request request) {
  try {
    request();
  } catch (const std::exception& e) {
    const std::string what = e.what();
    for (const char* code : {"forbidden", "not_subscribed", "unauthorized"})
      if (what.find(code) != std::string::npos) return code;
    return what;
  }
  return "";
}

class UserRooms : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--api-key", "k"}; }
};

TEST_F(UserRooms, OnlyTheUsersTabsReadItAndOnlyTheBackendWritesIt) {
  auto tab1 = client("alice");
  auto tab2 = client("alice");
  auto bob = client("bob");
  EXPECT_EQ(tab1->subscribe("user:alice").seq, 0u);
  tab2->subscribe("user:alice");
  EXPECT_EQ(refusal([&] { bob->subscribe("user:alice"); }), "forbidden");
  EXPECT_EQ(refusal([&] { tab1->publish("user:alice", value::from("self")); }), "forbidden");
  EXPECT_EQ(
      refusal([&] {
        tab1->set_state("user:alice", value::from(std::map<std::string, std::string>{{"k", "v"}}));
      }),
      "forbidden");
  // The backend's push: both tabs, not bob.
  auto [status, reply] = api_publish(engine().port(), R"({"room":"user:alice","data":"recs"})");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(reply, R"({"seq":1})");
  for (auto* tab : {tab1.get(), tab2.get()}) {
    auto m = tab->next_message();
    ASSERT_TRUE(m);
    EXPECT_EQ(m->seq, 1u);
    EXPECT_EQ(text_of(*m), "recs");
  }
  // Presence in a user room lists that user's connections only: both tabs, once tab2's
  // arrival is in a diff (changes are coalesced for 50 ms).
  std::size_t listed = 0;
  for (int i = 0; i < 100 && listed != 2; ++i) {
    listed = tab1->presence("user:alice").members.size();
    if (listed != 2) std::this_thread::sleep_for(20ms); // bounded poll of a request
  }
  EXPECT_EQ(listed, 2u);
  // A typing there is dropped without an error; the connection carries on.
  tab1->typing("user:alice", true);
  tab1->ping();
  EXPECT_TRUE(tab1->errors().empty());
  // Recovery as in any room.
  tab2->drop_connection(/*reconnect=*/false);
  tab2->wait_state(client::connection_state::disconnected);
  api_publish(engine().port(), R"({"room":"user:alice","data":"more"})");
  tab2->reconnect_now();
  tab2->wait_state(client::connection_state::connected);
  auto m = tab2->next_message();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->seq, 2u);
}

const std::string secret = "user-rooms-test-secret";

class UserRoomsWithTokens : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override {
    return {"--api-key", "k", "--secret", secret};
  }
};

TEST_F(UserRoomsWithTokens, ATokenForEveryRoomStillReadsOnlyItsOwnInbox) {
  auto options = options_for(engine(), "");
  options.token = mint_token({{"sub", "carol"}, {"rooms", {"*"}}}, secret);
  blocking_connection carol(options);
  carol.connect();
  EXPECT_EQ(refusal([&] { carol.subscribe("user:dave"); }), "forbidden");
  EXPECT_EQ(refusal([&] { carol.publish("user:carol", value::from(1)); }), "forbidden");
  carol.subscribe("user:carol");
  // A token with no rooms at all may still read its own inbox.
  auto bare = options_for(engine(), "");
  bare.token = mint_token({{"sub", "erin"}}, secret);
  blocking_connection erin(bare);
  erin.connect();
  EXPECT_EQ(erin.subscribe("user:erin").seq, 0u);
  EXPECT_EQ(refusal([&] { erin.subscribe("lobby"); }), "forbidden");
}

} // namespace
} // namespace troupe::test
