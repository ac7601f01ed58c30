#pragma once
// What the actor tests share: one Asio thread that runs the actors' strands, a CAF system
// with the engine's scheduler settings, a memory store and counters.

#include <utility> // before Boost.Asio (Boost 1.74 with C++20)

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <caf/all.hpp>

#include <thread>

#include "store/memory_store.hpp"
#include "core/metrics.hpp"

namespace troupe::tests {

class ActorHarness : public ::testing::Test {
protected:
  ActorHarness() : system_(config()), work_(boost::asio::make_work_guard(io_)) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ActorHarness() override {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  static caf::actor_system_config& config() {
    static caf::actor_system_config cfg;
    cfg.set("scheduler.policy", caf::atom("sharing"));
    cfg.set("scheduler.max-threads", 1);
    return cfg;
  }

  // The system outlives the io_context (whose handlers hold the last references to the
  // actors), and the Asio thread is joined before either goes.
  caf::actor_system system_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  store::memory_store store_;
  core::metrics metrics_;
  std::thread thread_;
};

} // namespace troupe::tests
