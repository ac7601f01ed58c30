#include "engine_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#ifndef TROUPE_BINARY
#error "TROUPE_BINARY must name the engine executable"
#endif

namespace troupe::test {

namespace {
constexpr std::size_t kKeep = 256 * 1024; // stdout tail kept for diagnostics
constexpr std::string_view kListening = "listening on 127.0.0.1:";
} // namespace

std::string EngineProcess::binary() { return TROUPE_BINARY; }

void EngineProcess::set_env(const std::string& name, const std::string& value) {
  env_.push_back(name + "=" + value);
}

EngineProcess::EngineProcess(std::vector<std::string> extra_args) : extra_(std::move(extra_args)) {
  const bool chosen = std::any_of(extra_.begin(), extra_.end(), [](const std::string& a) {
    return a == "--data" || a == "--store";
  });
  if (!chosen) {
    std::string pattern = (std::filesystem::temp_directory_path() / "troupe-test-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    data_dir_ = pattern;
    extra_.insert(extra_.end(), {"--data", data_dir_});
  }
}

EngineProcess::~EngineProcess() {
  if (pid_ > 0) stop();
  if (!data_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }
}

void EngineProcess::start(int port, std::chrono::milliseconds timeout) {
  if (pid_ > 0) throw std::logic_error("engine already running");
  std::vector<std::string> args = {binary(), "--host", "127.0.0.1", "--port", std::to_string(port)};
  args.insert(args.end(), extra_.begin(), extra_.end());

  // The environment is built before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const bool replaced = std::any_of(env_.begin(), env_.end(), [&](const std::string& mine) {
      return entry.substr(0, entry.find('=') + 1) == mine.substr(0, mine.find('=') + 1);
    });
    if (!replaced) env_strings.emplace_back(entry);
  }
  env_strings.insert(env_strings.end(), env_.begin(), env_.end());
  std::vector<char*> envp;
  for (auto& e : env_strings)
    envp.push_back(e.data());
  envp.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive the test
    if (getppid() != parent) _exit(127);
    dup2(fds[1], STDOUT_FILENO);
    if (capture_stderr_) dup2(fds[1], STDERR_FILENO);
    // Nothing else of the test's: an inherited listening socket (a test backend's, which
    // Asio opens without FD_CLOEXEC) would outlive its stop() in the engine and hold its port.
    close_range(3, ~0u, 0);
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  pid_ = pid;
  out_fd_ = fds[0];
  {
    std::lock_guard<std::mutex> l(m_);
    out_.clear();
  }

  // Read stdout until the listening line, bounded.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string seen;
  for (;;) {
    auto pos = seen.find(kListening);
    if (pos != std::string::npos) {
      auto eol = seen.find('\n', pos);
      if (eol != std::string::npos) {
        port_ = std::stoi(seen.substr(pos + kListening.size(), eol - pos - kListening.size()));
        break;
      }
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      stop();
      throw std::runtime_error("engine did not report listening in time; output: " + seen);
    }
    pollfd p{out_fd_, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char buf[4096];
    ssize_t got = read(out_fd_, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      int status = stop();
      throw std::runtime_error("engine exited before listening (status " + std::to_string(status) +
                               "); output: " + seen);
    }
    seen.append(buf, static_cast<std::size_t>(got));
  }
  {
    std::lock_guard<std::mutex> l(m_);
    out_ = seen;
  }
  drainer_ = std::thread([this] { drain(); });
}

void EngineProcess::drain() {
  char buf[4096];
  for (;;) {
    ssize_t got = read(out_fd_, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return;
    std::lock_guard<std::mutex> l(m_);
    out_.append(buf, static_cast<std::size_t>(got));
    if (out_.size() > kKeep) out_.erase(0, out_.size() - kKeep);
  }
}

std::string EngineProcess::output() {
  std::lock_guard<std::mutex> l(m_);
  return out_;
}

int EngineProcess::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool done = false;
  while (!done) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) {
      done = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    // Polling a child's exit: there is no portable blocking wait with a timeout.
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!done) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
    status = -2; // did not exit on SIGTERM in time
  }
  pid_ = -1;
  if (drainer_.joinable()) drainer_.join(); // EOF once the process is gone
  if (out_fd_ >= 0) close(out_fd_);
  out_fd_ = -1;
  return status;
}

int EngineProcess::kill_now() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
  pid_ = -1;
  if (drainer_.joinable()) drainer_.join();
  if (out_fd_ >= 0) close(out_fd_);
  out_fd_ = -1;
  return status;
}

void EngineProcess::restart() {
  const int port = port_;
  stop();
  start(port);
}

} // namespace troupe::test
