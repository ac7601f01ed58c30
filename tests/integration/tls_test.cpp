// TLS on the engine's port (--tls-cert, --tls-key): https:// and wss:// through real
// sockets, with a self-signed certificate the test makes with OpenSSL's C API. Clients
// verify the engine's certificate against that same certificate (as their only trust
// anchor, for the name 127.0.0.1), so the engine really serves what it was given.

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <sys/wait.h>

#include "clients/cpp/decode.hpp"
#include "clients/cpp/map_writer.hpp"
#include "raw_ws.hpp"
#include "support.hpp"

namespace troupe::test {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using boost::system::error_code;
using client::map_writer;

// --- a self-signed certificate ---------------------------------------------------------

struct pem_files {
  std::filesystem::path dir, cert, key, other_key;
};

EVP_PKEY* new_key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) throw std::runtime_error("EVP_EC_gen failed");
  return key;
}

void write_key(EVP_PKEY* key, const std::filesystem::path& file) {
  FILE* out = std::fopen(file.c_str(), "w");
  if (!out || PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("cannot write " + file.string());
  std::fclose(out);
}

// A certificate for CN=localhost with the names 127.0.0.1 and localhost, valid for a day.
pem_files make_certificate() {
  pem_files files;
  char dir[] = "/tmp/troupe-tls-XXXXXX";
  if (!mkdtemp(dir)) throw std::runtime_error("mkdtemp failed");
  files.dir = dir;
  files.cert = files.dir / "cert.pem";
  files.key = files.dir / "key.pem";
  files.other_key = files.dir / "other-key.pem";

  EVP_PKEY* key = new_key();
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
  if (!san) throw std::runtime_error("subjectAltName failed");
  X509_add_ext(cert, san, -1);
  X509_EXTENSION_free(san);
  if (X509_sign(cert, key, EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");

  FILE* out = std::fopen(files.cert.c_str(), "w");
  if (!out || PEM_write_X509(out, cert) != 1)
    throw std::runtime_error("cannot write the certificate");
  std::fclose(out);
  write_key(key, files.key);
  X509_free(cert);
  EVP_PKEY_free(key);

  EVP_PKEY* other = new_key(); // a valid key that belongs to no certificate here
  write_key(other, files.other_key);
  EVP_PKEY_free(other);
  return files;
}

// A client context that trusts exactly the test's certificate.
ssl::context client_context(const pem_files& files) {
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(files.cert.string());
  ctx.set_verify_mode(ssl::verify_peer);
  return ctx;
}

// Runs `io` until `done` or the deadline; on the deadline closes `socket` so that the
// operation ends (its handler refers to the caller's frame) and throws.
void run_bounded(net::io_context& io, bool& done, net::ip::tcp::socket& socket,
                 std::chrono::milliseconds timeout, const std::string& what) {
  io.restart();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done && std::chrono::steady_clock::now() < deadline)
    io.run_one_until(deadline);
  if (done) return;
  error_code ignored;
  socket.close(ignored);
  io.restart();
  while (!done)
    io.run_one_for(std::chrono::seconds(1));
  throw std::runtime_error(what + ": timed out");
}

// --- clients over TLS ----------------------------------------------------------------

// A WebSocket over TLS (wss://), verifying the engine's certificate. Every wait is bounded.
class TlsWs {
public:
  // `rcvbuf` > 0 shrinks the socket's receive buffer (a client that reads slowly).
  TlsWs(int port, ssl::context& ctx, int rcvbuf = 0, std::chrono::milliseconds timeout = 10s)
      : ws_(io_, ctx) {
    auto& tls = ws_.next_layer();
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.open(net::ip::tcp::v4());
    if (rcvbuf > 0) socket.set_option(net::socket_base::receive_buffer_size(rcvbuf));
    tls.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
    net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"),
                              static_cast<unsigned short>(port));
    step(timeout, "connect",
         [&](auto done) { beast::get_lowest_layer(ws_).async_connect(ep, done); });
    step(timeout, "TLS handshake",
         [&](auto done) { tls.async_handshake(ssl::stream_base::client, done); });
    step(timeout, "WebSocket handshake",
         [&](auto done) { ws_.async_handshake("127.0.0.1:" + std::to_string(port), "/ws", done); });
    ws_.binary(true);
  }

  void send(const std::string& bytes, std::chrono::milliseconds timeout = 10s) {
    step(timeout, "write", [&](auto done) {
      ws_.async_write(net::buffer(bytes), [done](error_code ec, std::size_t) { done(ec); });
    });
  }

  // The maps of the next frame.
  std::vector<client::reply> read(std::chrono::milliseconds timeout = 10s) {
    buf_.clear();
    step(timeout, "read", [&](auto done) {
      ws_.async_read(buf_, [done](error_code ec, std::size_t) { done(ec); });
    });
    const auto data = buf_.cdata();
    std::vector<client::reply> maps;
    if (!client::split_frame(std::string(static_cast<const char*>(data.data()), data.size()), maps))
      throw std::runtime_error("a frame that is not MessagePack");
    return maps;
  }

  // Reads until a map with this id arrives; the maps before it are kept in `seen`.
  client::reply reply(std::uint64_t id, std::vector<client::reply>* seen = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("no reply with id " + std::to_string(id));
      for (auto& m : read(left)) {
        if (m.map().u64("id") == id) return m;
        if (seen) seen->push_back(m);
      }
    }
  }

  // Reads every frame until the engine closes; returns its close code (0: no close frame),
  // and counts the `msg` pushes, every one of which must decode.
  std::uint16_t read_until_closed(std::size_t& msgs, std::chrono::milliseconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error("the connection did not end in time");
      try {
        for (auto& m : read(left))
          msgs += m.type() == "msg";
      } catch (const std::runtime_error&) {
        return ws_.reason().code;
      }
    }
  }

  // The engine's certificate as this client saw it.
  bool verified() { return SSL_get_verify_result(ws_.next_layer().native_handle()) == X509_V_OK; }

  // The close handshake, TLS's close_notify included.
  void close(std::chrono::milliseconds timeout = 10s) {
    step(timeout, "close",
         [&](auto done) { ws_.async_close(websocket::close_code::normal, done); });
  }

private:
  template <class Start>
  void step(std::chrono::milliseconds timeout, const std::string& what, Start start) {
    bool done = false;
    error_code result;
    start([&done, &result](error_code ec) {
      result = ec;
      done = true;
    });
    run_bounded(io_, done, beast::get_lowest_layer(ws_).socket(), timeout, what);
    if (result) throw std::runtime_error(what + ": " + result.message());
  }

  net::io_context io_;
  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws_;
  beast::flat_buffer buf_;
};

// One GET over https://, verifying the engine's certificate.
http::response<http::string_body> https_get(int port, ssl::context& ctx,
                                            const std::string& target) {
  net::io_context io;
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  stream.set_verify_callback(ssl::host_name_verification("127.0.0.1"));
  auto& socket = beast::get_lowest_layer(stream).socket();
  bool done = false;
  error_code result;
  auto finish = [&](error_code ec) {
    result = ec;
    done = true;
  };
  auto step = [&](const std::string& what, const std::function<void()>& start) {
    done = false;
    start();
    run_bounded(io, done, socket, 10s, what);
    if (result) throw std::runtime_error(what + ": " + result.message());
  };
  net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  step("connect", [&] { socket.async_connect(ep, finish); });
  step("TLS handshake", [&] { stream.async_handshake(ssl::stream_base::client, finish); });
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.keep_alive(false);
  step("write", [&] {
    http::async_write(stream, request, [&](error_code ec, std::size_t) { finish(ec); });
  });
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  step("read", [&] {
    http::async_read(stream, buffer, response, [&](error_code ec, std::size_t) { finish(ec); });
  });
  return response;
}

// What a plain TCP client gets from the TLS port after sending `bytes`: every byte until
// the engine closes (bounded), and how the connection ended.
struct plain_outcome {
  std::string received;
  error_code ended;
};
plain_outcome plain_exchange(int port, const std::string& bytes,
                             std::chrono::milliseconds timeout) {
  net::io_context io;
  net::ip::tcp::socket socket(io);
  socket.connect({net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  if (!bytes.empty()) net::write(socket, net::buffer(bytes));
  plain_outcome outcome;
  char chunk[4096];
  bool done = false;
  std::function<void()> next = [&] {
    socket.async_read_some(net::buffer(chunk), [&](error_code ec, std::size_t n) {
      outcome.received.append(chunk, n);
      if (ec) {
        outcome.ended = ec;
        done = true;
        return;
      }
      next();
    });
  };
  next();
  run_bounded(io, done, socket, timeout, "waiting for the engine to close a plain connection");
  return outcome;
}

// --- tests ---------------------------------------------------------------------------

class Tls : public EngineTest {
protected:
  static void SetUpTestSuite() { files_ = new pem_files(make_certificate()); }
  static void TearDownTestSuite() {
    std::error_code ignored;
    std::filesystem::remove_all(files_->dir, ignored);
    delete files_;
    files_ = nullptr;
  }
  std::vector<std::string> extra_args() const override {
    return {"--tls-cert",
            files_->cert.string(),
            "--tls-key",
            files_->key.string(),
            "--handshake-timeout",
            "2",
            "--rate",
            "0"}; // the burst test is no flood
  }

  void SetUp() override {
    EngineTest::SetUp();
    ctx_ = std::make_unique<ssl::context>(client_context(*files_));
  }

  // connect → connected, over wss://.
  std::unique_ptr<TlsWs> connected(const std::string& user) {
    auto ws = std::make_unique<TlsWs>(engine().port(), *ctx_);
    map_writer w("connect");
    w.u64("id", 1).str("user", user);
    ws->send(w.finish());
    const auto reply = ws->reply(1);
    EXPECT_EQ(reply.type(), "connected");
    EXPECT_EQ(reply.map().str("user").value_or(""), user);
    return ws;
  }

  static pem_files* files_;
  std::unique_ptr<ssl::context> ctx_;
};

pem_files* Tls::files_ = nullptr;

TEST_F(Tls, HttpsHealthAnswers200) {
  const auto response = https_get(engine().port(), *ctx_, "/health");
  EXPECT_EQ(response.result(), http::status::ok);
  EXPECT_NE(response.body().find("\"status\":\"ok\""), std::string::npos) << response.body();
}

TEST_F(Tls, WssConnectSubPubAndPush) {
  auto ws = connected("alice");

  map_writer sub("sub");
  sub.u64("id", 2).str("room", "tls-room");
  ws->send(sub.finish());
  const auto subscribed = ws->reply(2);
  EXPECT_EQ(subscribed.type(), "subscribed");
  EXPECT_EQ(subscribed.map().u64("seq"), 0u);

  map_writer pub("pub");
  pub.u64("id", 3).str("room", "tls-room").str("data", "over TLS");
  ws->send(pub.finish());
  std::vector<client::reply> before_ack;
  const auto ack = ws->reply(3, &before_ack);
  EXPECT_EQ(ack.type(), "ack");
  EXPECT_EQ(ack.map().u64("seq"), 1u);

  // The push: in the frame of the ack, or after it.
  std::vector<client::reply> pushes = before_ack;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::find_if(pushes.begin(), pushes.end(), [](auto& m) { return m.type() == "msg"; }) ==
             pushes.end() &&
         std::chrono::steady_clock::now() < deadline)
    for (auto& m : ws->read())
      pushes.push_back(m);
  const auto msg =
      std::find_if(pushes.begin(), pushes.end(), [](auto& m) { return m.type() == "msg"; });
  ASSERT_NE(msg, pushes.end()) << "no msg push over TLS";
  EXPECT_EQ(msg->map().str("room").value_or(""), "tls-room");
  EXPECT_EQ(msg->map().u64("seq"), 1u);
  EXPECT_EQ(msg->map().str("data").value_or(""), "over TLS");
  EXPECT_EQ(msg->map().str("user").value_or(""), "alice");
  EXPECT_TRUE(ws->verified());
  ws->close(); // a clean close handshake over TLS
}

// Many pushes in a burst and messages larger than one TLS record (16 KiB) reach another
// subscriber intact and in order: the outbox cuts its queue into records and must not
// lose, repeat or reorder a byte across them.
TEST_F(Tls, BurstsAndLargeMessagesArriveIntactInOrder) {
  auto reader = connected("reader");
  auto writer = connected("writer");
  map_writer sub("sub");
  sub.u64("id", 2).str("room", "burst");
  reader->send(sub.finish());
  ASSERT_EQ(reader->reply(2).type(), "subscribed");

  constexpr int count = 300;
  auto payload = [](int i) {
    const std::size_t size =
        i % 50 == 7 ? 40000 + static_cast<std::size_t>(i) : 20 + static_cast<std::size_t>(i % 90);
    std::string s(size, static_cast<char>('a' + i % 26));
    return std::to_string(i) + ":" + s;
  };
  for (int i = 0; i < count; ++i) {
    map_writer pub("pub");
    pub.u64("id", 100 + static_cast<std::uint64_t>(i)).str("room", "burst").str("data", payload(i));
    writer->send(pub.finish());
  }
  int next = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (next < count && std::chrono::steady_clock::now() < deadline) {
    for (auto& m : reader->read()) {
      if (m.type() != "msg") continue;
      ASSERT_EQ(m.map().u64("seq"), static_cast<std::uint64_t>(next + 1));
      ASSERT_EQ(m.map().str("data").value_or(""), payload(next)) << "message " << next;
      ++next;
    }
  }
  EXPECT_EQ(next, count) << "pushes that did not arrive within 30 s (a loose bound)";
}

TEST_F(Tls, PlainClientsFailCleanlyAndTlsClientsAreStillServed) {
  // A plain WebSocket client: its upgrade request is no TLS handshake, so it is closed
  // without an HTTP answer.
  EXPECT_THROW(RawWs(engine().port(), 0, 5s), std::runtime_error);
  // A plain HTTP request gets no HTTP back either.
  const auto http_outcome =
      plain_exchange(engine().port(), "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 10s);
  EXPECT_EQ(http_outcome.received.find("HTTP/1.1"), std::string::npos) << http_outcome.received;
  EXPECT_TRUE(http_outcome.ended) << "the engine closed the connection";
  // Garbage that is not even HTTP.
  const auto garbage = plain_exchange(engine().port(), std::string(300, '\x16'), 10s);
  EXPECT_TRUE(garbage.ended);

  // The engine lives on and serves TLS as before.
  EXPECT_EQ(https_get(engine().port(), *ctx_, "/health").result(), http::status::ok);
  auto ws = connected("after");
  map_writer ping("ping");
  ping.u64("id", 2);
  ws->send(ping.finish());
  EXPECT_EQ(ws->reply(2).type(), "pong");
}

// A client that opens TCP and never starts TLS is closed after the handshake timeout
// (--handshake-timeout, 2 s here; the bound checked is a loose 15 s).
TEST_F(Tls, SilentClientIsClosedAfterTheHandshakeTimeout) {
  const auto started = std::chrono::steady_clock::now();
  const auto outcome = plain_exchange(engine().port(), "", 15s);
  EXPECT_TRUE(outcome.ended);
  EXPECT_TRUE(outcome.received.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1s) << "closed before its deadline";
}

// A subscriber over TLS that stops reading is a slow consumer like any other: past
// --queue-limit it is cut with 4500, and what it does receive before is whole frames (the
// queue is trimmed around the piece OpenSSL is writing, never inside it).
class TlsSlowConsumer : public Tls {
protected:
  std::vector<std::string> extra_args() const override {
    auto args = Tls::extra_args();
    args.insert(args.end(), {"--queue-limit", "262144"});
    return args;
  }
};

TEST_F(TlsSlowConsumer, IsCutWith4500AndGetsOnlyWholeFrames) {
  auto slow = std::make_unique<TlsWs>(engine().port(), *ctx_, 4096);
  {
    map_writer w("connect");
    w.u64("id", 1).str("user", "slow");
    slow->send(w.finish());
    ASSERT_EQ(slow->reply(1).type(), "connected");
    map_writer sub("sub");
    sub.u64("id", 2).str("room", "firehose");
    slow->send(sub.finish());
    ASSERT_EQ(slow->reply(2).type(), "subscribed");
  }
  auto writer = connected("writer");
  const std::string data(60000, 'x');
  for (int i = 0; i < 400; ++i) { // 24 MB: more than any socket buffers hold
    map_writer pub("pub");
    pub.u64("id", 100 + static_cast<std::uint64_t>(i)).str("room", "firehose").str("data", data);
    writer->send(pub.finish(), 30s);
  }
  std::size_t msgs = 0;
  EXPECT_EQ(slow->read_until_closed(msgs), 4500);
  EXPECT_GT(msgs, 0u);
  EXPECT_LT(msgs, 400u);
  // The engine serves TLS on as before.
  EXPECT_EQ(https_get(engine().port(), *ctx_, "/health").result(), http::status::ok);
}

// --- start-up errors -----------------------------------------------------------------

// Runs the engine with `args` (bounded by coreutils' timeout); its exit status and what it
// printed on stdout and stderr.
// Each run gets a fresh --data directory: engines running in parallel must not meet on one
// store's lock.
std::pair<int, std::string> run_engine(const std::vector<std::string>& args) {
  char data[] = "/tmp/troupe-tls-data-XXXXXX";
  if (!mkdtemp(data)) throw std::runtime_error("mkdtemp failed");
  std::string command = "timeout 20 " + EngineProcess::binary() +
                        " --host 127.0.0.1 --port 0 --data '" + std::string(data) + "'";
  for (const auto& a : args)
    command += " '" + a + "'";
  command += " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed");
  std::string output;
  char chunk[512];
  while (std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe))
    output.append(chunk, n);
  const int status = pclose(pipe);
  std::error_code ignored;
  std::filesystem::remove_all(data, ignored);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class TlsStartup : public ::testing::Test {
protected:
  static void SetUpTestSuite() { files_ = new pem_files(make_certificate()); }
  static void TearDownTestSuite() {
    std::error_code ignored;
    std::filesystem::remove_all(files_->dir, ignored);
    delete files_;
    files_ = nullptr;
  }
  static pem_files* files_;
};

pem_files* TlsStartup::files_ = nullptr;

TEST_F(TlsStartup, MissingCertificateFileStopsTheEngineWithTheReason) {
  const auto missing = (files_->dir / "no-such-cert.pem").string();
  const auto [status, output] =
      run_engine({"--tls-cert", missing, "--tls-key", files_->key.string()});
  EXPECT_NE(status, 0);
  EXPECT_NE(status, 124) << "still running after 20 s";
  EXPECT_NE(output.find("--tls-cert"), std::string::npos) << output;
  EXPECT_NE(output.find(missing), std::string::npos) << output;
  EXPECT_NE(output.find("No such file"), std::string::npos) << output;
  EXPECT_EQ(output.find("listening on"), std::string::npos) << output;
}

TEST_F(TlsStartup, FileThatIsNoCertificateStopsTheEngine) {
  // The key where the certificate belongs.
  const auto [status, output] =
      run_engine({"--tls-cert", files_->key.string(), "--tls-key", files_->key.string()});
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("cannot use the TLS certificate"), std::string::npos) << output;
  EXPECT_EQ(output.find("listening on"), std::string::npos) << output;
}

TEST_F(TlsStartup, KeyOfAnotherCertificateStopsTheEngine) {
  const auto [status, output] =
      run_engine({"--tls-cert", files_->cert.string(), "--tls-key", files_->other_key.string()});
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("--tls-key"), std::string::npos) << output;
  EXPECT_EQ(output.find("listening on"), std::string::npos) << output;
}

TEST_F(TlsStartup, CertificateWithoutKeyIsRefused) {
  const auto [status, output] = run_engine({"--tls-cert", files_->cert.string()});
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("--tls-cert and --tls-key go together"), std::string::npos) << output;
}

} // namespace
} // namespace troupe::test
