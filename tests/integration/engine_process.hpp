// Runs a real engine process for a test: spawns the `troupe` binary on 127.0.0.1 with a
// free port (or a given one), waits (bounded) for its "listening on" line, and stops it
// with SIGTERM (then SIGKILL) when done. Unless the arguments choose a store, each engine
// gets a data directory of its own (removed with it), kept across restarts.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace troupe::test {

class EngineProcess {
public:
  explicit EngineProcess(std::vector<std::string> extra_args = {});
  ~EngineProcess();
  EngineProcess(const EngineProcess&) = delete;
  EngineProcess& operator=(const EngineProcess&) = delete;

  // Starts the engine (on `port`, or a free one if 0) and waits until it listens.
  // Throws std::runtime_error if it does not within `timeout`.
  void start(int port = 0, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // SIGTERM, up to `timeout` for it to exit, then SIGKILL. Returns the wait status.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Stops it and starts it again on the same port (a memory-only engine loses its rooms).
  void restart();
  // kill -9: no shutdown at all. Returns the wait status.
  int kill_now();

  // Before start(): sets an environment variable for the engine (on top of the test's own),
  // e.g. a test hook such as TROUPE_TEST_COMMIT_STALL.
  void set_env(const std::string& name, const std::string& value);
  // Before start(): the engine's stderr goes to output() too (its warnings and errors).
  void capture_stderr() { capture_stderr_ = true; }

  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/ws"; }
  // What the engine printed on stdout so far (the tail).
  std::string output();
  static std::string binary();
  // The engine's --data directory (empty when the arguments chose the store).
  const std::string& data_dir() const { return data_dir_; }

private:
  void drain();

  std::vector<std::string> extra_;
  std::vector<std::string> env_; // NAME=value
  bool capture_stderr_ = false;
  std::string data_dir_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::thread drainer_;
  std::mutex m_;
  std::string out_;
};

} // namespace troupe::test
