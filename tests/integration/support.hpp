// Shared pieces of the integration tests.
#pragma once

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>

#include <memory>
#include <string>
#include <vector>

#include "clients/cpp/blocking_connection.hpp"
#include "engine_process.hpp"

namespace troupe::test {

using namespace std::chrono_literals;
using client::blocking_connection;
using client::message;
using client::value;

// Options for a client of `engine`: quick reconnects so tests stay short.
inline client::connection_options options_for(const EngineProcess& engine,
                                              const std::string& user) {
  client::connection_options o;
  o.url = engine.url();
  o.user = user;
  o.name = user;
  o.backoff.initial = 20ms;
  o.backoff.max = 300ms;
  o.request_timeout = 10s;
  o.connect_timeout = 5s;
  return o;
}

inline std::unique_ptr<blocking_connection> connected_client(const EngineProcess& engine,
                                                             const std::string& user) {
  auto c = std::make_unique<blocking_connection>(options_for(engine, user));
  c->connect();
  return c;
}

inline std::string text_of(const message& m) {
  return std::string(m.data.str().value_or("<not a string>"));
}

inline std::vector<std::uint64_t> seqs_of(const std::vector<message>& ms) {
  std::vector<std::uint64_t> v;
  for (const auto& m : ms)
    v.push_back(m.seq);
  return v;
}

inline std::vector<std::uint64_t> seq_range(std::uint64_t from, std::uint64_t to) {
  std::vector<std::uint64_t> v;
  for (auto i = from; i <= to; ++i)
    v.push_back(i);
  return v;
}

// An io_context on a thread of its own, for tests that use the asynchronous Client.
class IoThread {
public:
  IoThread() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

private:
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

// A test with one engine of its own, started with extra_args().
class EngineTest : public ::testing::Test {
protected:
  virtual std::vector<std::string> extra_args() const { return {}; }
  void SetUp() override {
    engine_ = std::make_unique<EngineProcess>(extra_args());
    engine_->start();
  }
  void TearDown() override {
    if (::testing::Test::HasFailure() && engine_) {
      std::cerr << "--- engine stdout (tail) ---\n" << engine_->output() << "\n---\n";
    }
    engine_.reset();
  }
  EngineProcess& engine() { return *engine_; }
  std::unique_ptr<blocking_connection> client(const std::string& user) {
    return connected_client(*engine_, user);
  }

  std::unique_ptr<EngineProcess> engine_;
};

// The engine run with each way the fan-out's writes reach the kernel: one io_uring submission
// per turn (the default), one sendmsg per socket, and batches of several I/O threads writing
// each other's connections. INSTANTIATE_TEST_SUITE_P(Name, Fixture, write_paths()).
class WritePathTest : public EngineTest,
                      public ::testing::WithParamInterface<std::vector<std::string>> {
protected:
  std::vector<std::string> extra_args() const override { return GetParam(); }
};
inline auto write_paths() {
  return ::testing::Values(std::vector<std::string>{},
                           std::vector<std::string>{"--io-uring", "off"},
                           std::vector<std::string>{"--threads", "3"});
}

} // namespace troupe::test
