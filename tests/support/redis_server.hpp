#pragma once
// A private redis-server for tests: started by the test on a free loopback port with a fresh
// temporary --dir, never a system instance, never a fixed port. No persistence unless asked
// (--save "", --appendonly no). stop() and start() restart it on the same port with the same
// dir (fault tests); pause() and resume() freeze it (SIGSTOP) to test timeouts. The destructor
// stops it (SIGTERM, bounded, then SIGKILL) and removes the dir; the child also gets SIGKILL
// if the test process dies first.

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

namespace troupe::test {

// Outside the class: a nested struct's default member initializers cannot serve as a default
// argument inside that class (GCC).
struct redis_server_options {
  bool appendonly = false;
  std::string appendfsync = "always"; // with appendonly: every write on disk before the reply
  std::string password;               // --requirepass
};

class redis_server {
public:
  using options = redis_server_options;

  explicit redis_server(options opts = {}) : opts_(std::move(opts)) {
    std::string pattern = (std::filesystem::temp_directory_path() / "troupe-redis-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    // A port free when probed may be taken before redis binds it: try a few.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      if (launch()) return;
    }
    throw std::runtime_error("redis-server did not start; see " + (dir_ / "redis.log").string());
  }

  ~redis_server() {
    stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  std::uint16_t port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }
  /// The URL for redis_url (password included when set).
  std::string url(int db = 0) const {
    std::string u = "redis://";
    if (!opts_.password.empty()) u += ":" + opts_.password + "@";
    u += "127.0.0.1:" + std::to_string(port_);
    if (db) u += "/" + std::to_string(db);
    return u;
  }

  /// Again on the same port and dir (after stop()).
  void start() {
    if (running()) return;
    if (!launch())
      throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_));
  }

  /// SIGTERM, up to 5 s for it to exit, then SIGKILL.
  void stop() {
    if (!running()) return;
    resume();
    ::kill(pid_, SIGTERM);
    if (!reap(std::chrono::seconds(5))) {
      ::kill(pid_, SIGKILL);
      reap(std::chrono::seconds(5));
    }
    pid_ = -1;
  }

  /// SIGKILL: as if the machine died.
  void kill() {
    if (!running()) return;
    ::kill(pid_, SIGKILL);
    reap(std::chrono::seconds(5));
    pid_ = -1;
  }

  /// Freezes the server (it keeps its sockets but answers nothing) until resume().
  void pause() {
    if (running() && !paused_) ::kill(pid_, SIGSTOP), paused_ = true;
  }
  void resume() {
    if (running() && paused_) ::kill(pid_, SIGCONT), paused_ = false;
  }

  /// One command on a short-lived blocking connection (setup and checks in tests).
  /// Throws if Redis cannot be reached; an error reply comes back as its text.
  std::string command(const std::vector<std::string>& argv) const {
    redisContext* c = connect_sync(std::chrono::seconds(2));
    if (!c) throw std::runtime_error("cannot reach the test redis-server");
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const auto& a : argv)
      ptrs.push_back(a.data()), lens.push_back(a.size());
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data()));
    std::string out;
    if (!r) {
      std::string err = c->errstr;
      redisFree(c);
      throw std::runtime_error("test redis-server: " + err);
    }
    if (r->type == REDIS_REPLY_INTEGER)
      out = std::to_string(r->integer);
    else if (r->str)
      out.assign(r->str, r->len);
    freeReplyObject(r);
    redisFree(c);
    return out;
  }

private:
  static std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("cannot find a free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  bool launch() {
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--dir",
                                     dir_.string(),
                                     "--logfile",
                                     "redis.log",
                                     "--daemonize",
                                     "no",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     opts_.appendonly ? "yes" : "no",
                                     "--appendfsync",
                                     opts_.appendfsync};
    if (!opts_.password.empty()) {
      args.push_back("--requirepass");
      args.push_back(opts_.password);
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);

    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the test
      if (::getppid() != parent) _exit(127);
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0), ::dup2(null, 1), ::dup2(null, 2);
      ::execvp("redis-server", argv.data());
      _exit(127);
    }
    pid_ = pid;
    paused_ = false;
    // Ready when it answers PING, within 10 s; gone if it exited (the port was taken).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (reap(std::chrono::milliseconds(0))) {
        pid_ = -1;
        return false;
      }
      if (answers_ping()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10)); // polling a starting process
    }
    ::kill(pid_, SIGKILL);
    reap(std::chrono::seconds(5));
    pid_ = -1;
    return false;
  }

  redisContext* connect_sync(std::chrono::milliseconds timeout) const {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (!c || c->err) {
      if (c) redisFree(c);
      return nullptr;
    }
    redisSetTimeout(c, tv);
    if (!opts_.password.empty()) {
      auto* r = static_cast<redisReply*>(
          redisCommand(c, "AUTH %b", opts_.password.data(), opts_.password.size()));
      if (r) freeReplyObject(r);
    }
    return c;
  }

  bool answers_ping() const {
    redisContext* c = connect_sync(std::chrono::milliseconds(200));
    if (!c) return false;
    auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
    bool ok = r && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG";
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
  }

  // Waits (bounded) for the child to exit; true if it did.
  bool reap(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  options opts_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

} // namespace troupe::test
