#pragma once
// What the actor tests share: one Asio thread that runs the actors' strands, a CAF system
// with the engine's scheduler settings, a memory store and counters.

#include <utility>  // before Boost.Asio (Boost 1.74 with C++20)

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <caf/all.hpp>

#include <thread>

#include "core/memory_store.hpp"
#include "core/metrics.hpp"

namespace troupe::tests {

class ActorHarness : public ::testing::Test {
protected:
  ActorHarness() : work_(boost::asio::make_work_guard(io_)), system_(config()) {
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

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  caf::actor_system system_;
  core::memory_store store_;
  core::metrics metrics_;
  std::thread thread_;
};

} // namespace troupe::tests
