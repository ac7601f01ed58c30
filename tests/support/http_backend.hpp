#pragma once
// A real HTTP/1.1 backend for tests (RPC, webhooks): a Beast server on 127.0.0.1, port 0,
// on a thread of its own. It records every request (method, target, headers, body) and
// answers each path with a programmable handler: a status and a body, optionally after a
// delay, or never (hang: the connection stays open, unanswered, until stop()). stop() and
// start() restart it on the same port (a dead backend, then a live one again). Every wait
// is bounded. Header-only; link Boost (system) and, for verify_signature(), OpenSSL.

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>

namespace troupe::test {

struct http_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers; ///< names in lower case
  std::string body;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct http_reply {
  int status = 200;
  std::string body = "{}";
  std::string content_type = "application/json";
  std::chrono::milliseconds delay{0}; ///< answer after this long
  bool hang = false;                  ///< never answer (until stop())
};

/// Hex HMAC-SHA256 of `message` keyed with `key`.
inline std::string hmac_sha256_hex(const std::string& key, const std::string& message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", mac[i]);
    hex += buf;
  }
  return hex;
}

/// Checks `X-Troupe-Signature: t=<unix s>,v1=<hex>` over "<t>.<body>" as a backend would
/// (Stripe's scheme), refusing a `t` more than `tolerance` away from now.
inline bool verify_signature(const std::string& header, const std::string& body,
                             const std::string& secret,
                             std::chrono::seconds tolerance = std::chrono::seconds(300)) {
  std::string t, v1;
  std::size_t pos = 0;
  while (pos <= header.size()) {
    auto comma = header.find(',', pos);
    auto part = header.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (part.rfind("t=", 0) == 0) t = part.substr(2);
    if (part.rfind("v1=", 0) == 0) v1 = part.substr(3);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (t.empty() || v1.empty()) return false;
  long long ts = 0;
  try {
    ts = std::stoll(t);
  } catch (...) {
    return false;
  }
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  if (ts < now - tolerance.count() || ts > now + tolerance.count()) return false;
  auto expected = hmac_sha256_hex(secret, t + "." + body);
  return expected.size() == v1.size() && CRYPTO_memcmp(expected.data(), v1.data(), v1.size()) == 0;
}

class http_backend {
public:
  using handler = std::function<http_reply(const http_request&)>;

  http_backend() { start(); }
  ~http_backend() { stop(); }
  http_backend(const http_backend&) = delete;
  http_backend& operator=(const http_backend&) = delete;

  unsigned short port() const { return port_; }
  /// The base URL to pass as --backend.
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// Answers requests whose path (target without the query) is `path`. Unhandled paths get
  /// 200 `{}`. Any thread; the handler runs on the server's thread.
  void on(const std::string& path, handler h) {
    std::lock_guard lock(mutex_);
    handlers_[path] = std::move(h);
  }

  std::vector<http_request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }
  void clear() {
    std::lock_guard lock(mutex_);
    requests_.clear();
  }
  /// Waits until at least `n` requests were received; false on timeout.
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    std::unique_lock lock(mutex_);
    return received_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }

  /// Stops listening and closes every connection (hung ones included): a dead backend.
  void stop() {
    if (!io_) return;
    io_->stop();
    if (thread_.joinable()) thread_.join();
    sessions_.clear(); // closes their sockets
    acceptor_.reset();
    io_.reset();
  }

  /// Listens again, on the same port after a stop() (port 0 the first time).
  void start() {
    if (io_) return;
    auto io = std::make_unique<boost::asio::io_context>(1);
    auto acceptor = std::make_unique<tcp::acceptor>(*io);
    tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), port_);
    acceptor->open(ep.protocol());
    // Not inherited by a process the test spawns (the engine): it would keep the port bound.
    ::fcntl(acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
    acceptor->set_option(tcp::acceptor::reuse_address(true));
    acceptor->bind(ep);
    acceptor->listen();
    port_ = acceptor->local_endpoint().port();
    io_ = std::move(io);
    acceptor_ = std::move(acceptor);
    accept();
    thread_ = std::thread([this] { io_->run(); });
  }

private:
  using tcp = boost::asio::ip::tcp;

  struct session : std::enable_shared_from_this<session> {
    session(http_backend& owner, tcp::socket s)
        : owner(owner), socket(std::move(s)), timer(socket.get_executor()) {}
    http_backend& owner;
    tcp::socket socket;
    boost::asio::steady_timer timer;
    boost::beast::flat_buffer buffer;
    boost::beast::http::request<boost::beast::http::string_body> req;
    boost::beast::http::response<boost::beast::http::string_body> res;

    void read() {
      req = {};
      boost::beast::http::async_read(socket, buffer, req,
                                     [self = shared_from_this()](auto ec, std::size_t) {
                                       if (ec) return self->finish();
                                       self->handle();
                                     });
    }
    void handle() {
      http_request r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      for (const auto& f : req) {
        std::string name(f.name_string());
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        r.headers[name] = std::string(f.value());
      }
      r.body = req.body();
      auto reply = owner.dispatch(r);
      if (reply.hang) return; // kept open (owned by sessions_) until stop()
      res = {};
      res.version(11);
      res.result(static_cast<unsigned>(reply.status));
      res.set(boost::beast::http::field::content_type, reply.content_type);
      res.keep_alive(req.keep_alive());
      res.body() = std::move(reply.body);
      res.prepare_payload();
      if (reply.delay.count() > 0) {
        timer.expires_after(reply.delay);
        timer.async_wait([self = shared_from_this()](auto ec) {
          if (!ec) self->write();
        });
      } else {
        write();
      }
    }
    void write() {
      boost::beast::http::async_write(socket, res,
                                      [self = shared_from_this()](auto ec, std::size_t) {
                                        if (ec || !self->res.keep_alive()) return self->finish();
                                        self->read();
                                      });
    }
    void finish() {
      boost::system::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      owner.sessions_.erase(shared_from_this());
    }
  };

  void accept() {
    acceptor_->async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      ::fcntl(s.native_handle(), F_SETFD, FD_CLOEXEC);
      auto sess = std::make_shared<session>(*this, std::move(s));
      sessions_.insert(sess);
      sess->read();
      accept();
    });
  }

  http_reply dispatch(const http_request& r) {
    handler h;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(r);
      auto path = r.target.substr(0, r.target.find('?'));
      if (auto it = handlers_.find(path); it != handlers_.end()) h = it->second;
    }
    received_.notify_all();
    return h ? h(r) : http_reply{};
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable received_;
  std::map<std::string, handler> handlers_;
  std::vector<http_request> requests_;

  unsigned short port_ = 0;
  std::unique_ptr<boost::asio::io_context> io_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::set<std::shared_ptr<session>> sessions_; // only the server's thread, or after join
  std::thread thread_;
};

} // namespace troupe::test
