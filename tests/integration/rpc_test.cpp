// RPC through a real engine to a real HTTP backend on loopback (tests/support/http_backend):
// the body the backend gets (verified user, client, method, data as JSON), the signature,
// every mapping of the backend's reply to the contract's result or error, the in-flight
// bound, and that a slow backend delays nothing else.
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include <condition_variable>
#include <map>
#include <mutex>

#include <fcntl.h>
#include <stdlib.h> // mkdtemp, setenv
#include <sys/wait.h>

#include "support.hpp"
#include "tests/support/http_backend.hpp"
#include "tests/support/tokens.hpp"

namespace troupe::test {
namespace {

using json = nlohmann::json;
const std::string kSecret = "rpc-token-secret";
const std::string kBackendSecret = "rpc-backend-secret";

json as_json(const value& v) { return json::from_msgpack(v.encode()); }

// The error code an rpc was refused with ("" if it was not).
std::string refusal(blocking_connection& c, const std::string& method,
                    const value& data = value()) {
  try {
    c.rpc(method, data);
  } catch (const client::client_error& e) {
    return e.code();
  }
  return "";
}

// The backend of these tests: /rpc answers by method.
http_reply answer(const http_request& request) {
  const auto body = json::parse(request.body, nullptr, false);
  const std::string method = body.is_object() ? body.value("method", "") : "";
  http_reply r;
  if (method == "echo") {
    r.body = json{{"data", {{"got", body["data"]}, {"user", body["user"]}}}}.dump();
  } else if (method == "nodata") {
    r.body = "{}";
  } else if (method == "conflict") {
    r.status = 409;
    r.body = R"({"error":"conflict","reason":"already taken"})";
  } else if (method == "unknown_code") {
    r.status = 400;
    r.body = R"({"error":"teapot","reason":"no"})";
  } else if (method == "server_error") {
    r.status = 500;
    r.body = R"({"data":1})";
  } else if (method == "not_json") {
    r.body = "hello";
    r.content_type = "text/plain";
  } else if (method == "not_object") {
    r.body = "[1,2]";
  } else if (method == "refused_not_json") {
    r.status = 403;
    r.body = "denied";
  } else if (method == "hang") {
    r.hang = true;
  } else if (method == "slow") {
    r.delay = std::chrono::milliseconds(300);
  }
  return r;
}

class Rpc : public EngineTest {
protected:
  Rpc() { backend_.on("/rpc", answer); }
  std::vector<std::string> extra_args() const override {
    return {"--store",           "memory",       "--secret",         kSecret,
            "--backend",         backend_.url(), "--backend-secret", kBackendSecret,
            "--backend-timeout", timeout_};
  }
  // A connection whose token says `sub`: the only user the backend may see.
  std::unique_ptr<blocking_connection> verified(const std::string& sub) {
    auto o = options_for(engine(), "mallory"); // a claimed user, ignored with a secret
    o.token = mint_token({{"sub", sub}, {"rooms", {"*"}}}, kSecret);
    auto c = std::make_unique<blocking_connection>(o);
    info_ = c->connect();
    return c;
  }
  http_backend backend_;
  std::string timeout_ = "5";
  client::connected_info info_;
};

TEST_F(Rpc, ResultRoundTripWithTheVerifiedUser) {
  auto c = verified("alice");
  auto reply = c->rpc("echo", value::from(std::map<std::string, int>{{"n", 5}}));
  // The backend's `data` comes back as MessagePack.
  const auto back = as_json(reply);
  ASSERT_TRUE(back.is_object()) << reply.to_string();
  EXPECT_EQ(back["got"]["n"], 5);
  EXPECT_EQ(back["user"], "alice");

  ASSERT_TRUE(backend_.wait_for(1));
  const auto seen = backend_.requests().at(0);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/rpc");
  EXPECT_NE(seen.header("content-type").find("application/json"), std::string::npos);
  const auto body = json::parse(seen.body);
  EXPECT_EQ(body["user"], "alice"); // as verified at connect, not "mallory"
  EXPECT_EQ(body["client"], info_.client);
  EXPECT_EQ(body["method"], "echo");
  EXPECT_EQ(body["data"], json({{"n", 5}}));

  // No data either way: nil.
  EXPECT_TRUE(c->rpc("nodata", value()).is_nil());
  ASSERT_TRUE(backend_.wait_for(2));
  EXPECT_TRUE(json::parse(backend_.requests().at(1).body)["data"].is_null());
}

TEST_F(Rpc, EveryCallIsSignedOverTimeAndBody) {
  auto c = verified("alice");
  c->rpc("echo", value::from(std::string("x")));
  c->rpc("echo", value::from(std::string("y")));
  ASSERT_TRUE(backend_.wait_for(2));
  for (const auto& seen : backend_.requests()) {
    const auto signature = seen.header("x-troupe-signature");
    ASSERT_FALSE(signature.empty());
    EXPECT_TRUE(verify_signature(signature, seen.body, kBackendSecret)) << signature;
    // A body changed on the way, or the wrong key, fails verification.
    EXPECT_FALSE(verify_signature(signature, seen.body + " ", kBackendSecret));
    EXPECT_FALSE(verify_signature(signature, seen.body, "another-secret"));
  }
}

TEST_F(Rpc, RepliesMapToTheContractsErrors) {
  auto c = verified("alice");
  try {
    c->rpc("conflict", value());
    ADD_FAILURE() << "no error";
  } catch (const client::client_error& e) {
    EXPECT_EQ(e.code(), "conflict");
    EXPECT_EQ(e.error().reason, "already taken");
  }
  EXPECT_EQ(refusal(*c, "unknown_code"), "forbidden");
  EXPECT_EQ(refusal(*c, "server_error"), "unavailable");
  EXPECT_EQ(refusal(*c, "not_json"), "unavailable");
  EXPECT_EQ(refusal(*c, "not_object"), "unavailable");
  EXPECT_EQ(refusal(*c, "refused_not_json"), "unavailable");
  // A bad method never reaches the backend.
  const auto before = backend_.count();
  EXPECT_EQ(refusal(*c, "no spaces"), "bad_request");
  EXPECT_EQ(refusal(*c, std::string(65, 'm')), "bad_request");
  EXPECT_EQ(backend_.count(), before);
  // The connection still works.
  EXPECT_FALSE(c->rpc("echo", value()).is_nil());
}

TEST_F(Rpc, UnreachableBackendIsUnavailableUntilItIsBack) {
  auto c = verified("alice");
  c->rpc("echo", value()); // a pooled connection now exists
  backend_.stop();
  EXPECT_EQ(refusal(*c, "echo"), "unavailable");
  backend_.start(); // same port
  EXPECT_FALSE(c->rpc("echo", value()).is_nil());
}

TEST_F(Rpc, SixteenInFlightThenRateLimitedAndOthersUndelayed) {
  auto c = verified("alice");
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> codes;
  auto record = [&](client::result<value> r) {
    std::lock_guard l(m);
    codes.push_back(r.ok() ? "ok" : r.error().code);
    cv.notify_all();
  };
  for (int i = 0; i < 16; ++i)
    c->async().rpc("hang", value(), record);
  ASSERT_TRUE(backend_.wait_for(16)); // all 16 reached the backend at once
  EXPECT_EQ(refusal(*c, "echo"), "rate_limited");
  {
    std::lock_guard l(m);
    EXPECT_TRUE(codes.empty()); // the hanging ones are still in flight
  }
  // The same connection's other requests, and another connection's calls, are not delayed.
  const auto start = std::chrono::steady_clock::now();
  c->ping();
  auto other = verified("bob");
  EXPECT_EQ(as_json(other->rpc("echo", value()))["user"], "bob");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // At the timeout (5 s) the 16 fail as unavailable, and the connection may call again.
  std::unique_lock l(m);
  ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(15), [&] { return codes.size() == 16; }));
  for (const auto& code : codes)
    EXPECT_EQ(code, "unavailable");
  l.unlock();
  EXPECT_FALSE(c->rpc("echo", value()).is_nil());
}

TEST_F(Rpc, ACallPendingAtShutdownDoesNotStopACleanExit) {
  auto c = verified("alice");
  c->async().rpc("hang", value(), [](client::result<value>) {});
  ASSERT_TRUE(backend_.wait_for(1));
  const int status = engine().stop();
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

class RpcTimeout : public Rpc {
protected:
  RpcTimeout() { timeout_ = "1"; }
};

TEST_F(RpcTimeout, NoReplyWithinTheTimeoutIsUnavailable) {
  auto c = verified("alice");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(refusal(*c, "hang"), "unavailable");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(4));
  // A slow reply inside the timeout is a result.
  EXPECT_TRUE(c->rpc("slow", value()).is_nil());
}

class RpcUnsigned : public Rpc {
protected:
  std::vector<std::string> extra_args() const override {
    return {"--store", "memory", "--backend", backend_.url()};
  }
};

TEST_F(RpcUnsigned, NoSecretNoSignature) {
  auto c = connected_client(engine(), "carol");
  EXPECT_EQ(as_json(c->rpc("echo", value()))["user"], "carol");
  ASSERT_TRUE(backend_.wait_for(1));
  EXPECT_TRUE(backend_.requests().at(0).header("x-troupe-signature").empty());
}

class RpcWithoutBackend : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--store", "memory"}; }
};

TEST_F(RpcWithoutBackend, IsNotFound) {
  auto c = client("dave");
  EXPECT_EQ(refusal(*c, "echo"), "not_found");
  c->ping();
}

// --- an https:// backend ---------------------------------------------------------------------
// A one-thread TLS server on 127.0.0.1 with a self-signed certificate for localhost and
// 127.0.0.1 (made with the openssl command); the engine trusts it through SSL_CERT_FILE,
// which OpenSSL's default verify paths (the system's CA store) honour. The engine is given
// the address, so the test does not depend on how the machine resolves `localhost`.
class TlsBackend {
public:
  TlsBackend() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "troupe-rpc-tls-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
                            " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
                            (dir_ / "key.pem").string() + " -out " + cert() + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed");
    ctx_.use_certificate_chain_file(cert());
    ctx_.use_private_key_file((dir_ / "key.pem").string(), boost::asio::ssl::context::pem);
    acceptor_.open(boost::asio::ip::tcp::v4());
    ::fcntl(acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
    acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~TlsBackend() {
    stopping_ = true;
    boost::system::error_code ignored;
    { // a blocking accept() is not woken by close() from another thread: connect to it
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket wake(io);
      wake.connect({boost::asio::ip::make_address("127.0.0.1"), port()}, ignored);
      thread_.join();
    }
    acceptor_.close(ignored);
    std::error_code ignored_fs;
    std::filesystem::remove_all(dir_, ignored_fs);
  }
  std::string cert() const { return (dir_ / "cert.pem").string(); }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  std::atomic<int> served{0};

private:
  void serve() {
    namespace http = boost::beast::http;
    while (!stopping_) {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      boost::beast::ssl_stream<boost::asio::ip::tcp::socket> stream(std::move(socket), ctx_);
      stream.handshake(boost::asio::ssl::stream_base::server, ec);
      boost::beast::flat_buffer buffer;
      while (!ec) { // keep-alive: every request on this connection
        http::request<http::string_body> req;
        http::read(stream, buffer, req, ec);
        if (ec) break;
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"data":"over tls"})";
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        ++served; // before the reply: the test reads it once the reply is in
        http::write(stream, res, ec);
      }
    }
  }
  std::filesystem::path dir_;
  boost::asio::io_context io_;
  boost::asio::ssl::context ctx_{boost::asio::ssl::context::tls_server};
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

TEST(RpcTls, HttpsBackendVerifiedWithTheTrustStore) {
  TlsBackend tls;
  ::setenv("SSL_CERT_FILE", tls.cert().c_str(), 1); // inherited by the engine
  EngineProcess engine(
      {"--store", "memory", "--backend", "https://127.0.0.1:" + std::to_string(tls.port())});
  engine.start();
  ::unsetenv("SSL_CERT_FILE");
  auto c = connected_client(engine, "erin");
  EXPECT_EQ(c->rpc("any", value()).str().value_or(""), "over tls");
  EXPECT_EQ(c->rpc("again", value()).str().value_or(""), "over tls");
  EXPECT_EQ(tls.served.load(), 2);
}

TEST(RpcTls, AnUntrustedCertificateIsUnavailable) {
  TlsBackend tls;
  // The system's CA store does not hold the test's self-signed certificate.
  EngineProcess engine(
      {"--store", "memory", "--backend", "https://127.0.0.1:" + std::to_string(tls.port())});
  engine.start();
  auto c = connected_client(engine, "erin");
  EXPECT_EQ(refusal(*c, "any"), "unavailable");
  EXPECT_EQ(tls.served.load(), 0);
}

} // namespace
} // namespace troupe::test
