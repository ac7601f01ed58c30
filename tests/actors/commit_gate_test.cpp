// actors::commit_gate on its own: an actor owning a gate, a storage actor that records each
// batch and answers only when the test says so, on a real io_context. Every check reads the
// actor's record on its strand.

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <caf/actor_companion.hpp> // commit_gate.hpp sends through it
#include <caf/all.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>

#include "actors/commit_gate.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "tests/actors/actor_harness.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

/// Stands in for the storage actor: keeps each batch it is sent, answers none by itself.
class fake_storage {
public:
  void take(store::room_writes writes) {
    std::lock_guard lock(mutex_);
    batches_.push_back(std::move(writes));
    changed_.notify_all();
  }
  /// Waits (bounded) until `count` batches have arrived; returns how many have.
  std::size_t wait_for(std::size_t count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 5s, [&] { return batches_.size() >= count; });
    return batches_.size();
  }
  std::vector<store::room_writes> batches() {
    std::lock_guard lock(mutex_);
    return batches_;
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<store::room_writes> batches_;
};

class CommitGate : public tests::ActorHarness {
protected:
  void SetUp() override { spawn(true); }
  void TearDown() override {
    on_strand([&] {
      actors::quit_on_strand(self_);
      if (storage_self_) actors::quit_on_strand(storage_self_);
    });
  }

  /// The owner (and, if `durable`, the storage actor) on one strand of their own each.
  void spawn(bool durable) {
    caf::actor storage;
    if (durable)
      storage = actors::spawn_on_strand(system_, boost::asio::make_strand(io_),
                                        [&](actors::companion* self) {
                                          storage_self_ = self;
                                          return caf::behavior{[this](actors::store_request& r) {
                                            storage_state_.take(std::move(r.writes));
                                          }};
                                        });
    owner_ = actors::spawn_on_strand(system_, strand_, [&](actors::companion* self) {
      self_ = self;
      gate_.emplace(self, storage, "room", "epoch", [this] { log_.push_back("reload"); });
      return caf::behavior{[this](const actors::store_done& done) { gate_->committed(done); }};
    });
  }

  /// Runs `action` on the owner's strand and waits (bounded) for it.
  template <class Action>
  void on_strand(Action action) {
    std::promise<void> done;
    boost::asio::post(strand_, [&] {
      action();
      done.set_value();
    });
    ASSERT_EQ(done.get_future().wait_for(5s), std::future_status::ready);
  }

  /// Commits one message `name` whose outcome is logged as "name" or "name:error".
  void commit(const std::string& name) {
    on_strand([&, name] {
      gate_->commit(
          [name](store::room_writes& batch) {
            core::stored_message message;
            message.key = name; // names the write in the batch
            batch.messages.push_back(std::move(message));
          },
          [this, name](const std::string& error) {
            log_.push_back(error.empty() ? name : name + ":" + error);
          });
    });
  }

  /// The storage actor's answer, as a message to the owner (as the real one sends it).
  void answer(std::string error = {}) {
    caf::anon_send(owner_, actors::store_done{std::move(error)});
  }

  /// The owner's log, read on its strand once it holds `count` entries (bounded wait).
  std::vector<std::string> log_when(std::size_t count) {
    std::vector<std::string> copy;
    for (auto deadline = std::chrono::steady_clock::now() + 5s;
         std::chrono::steady_clock::now() < deadline;) {
      on_strand([&] { copy = log_; });
      if (copy.size() >= count) break;
      std::this_thread::yield();
    }
    return copy;
  }
  std::vector<std::string> log_now() {
    std::vector<std::string> copy;
    on_strand([&] { copy = log_; });
    return copy;
  }

  boost::asio::strand<boost::asio::io_context::executor_type> strand_ =
      boost::asio::make_strand(io_);
  actors::companion* self_ = nullptr;
  actors::companion* storage_self_ = nullptr;
  caf::actor owner_;
  fake_storage storage_state_;
  std::optional<actors::commit_gate> gate_;
  std::vector<std::string> log_; // the owner's strand only
};

std::vector<std::string> users_of(const store::room_writes& batch) {
  std::vector<std::string> users;
  for (const auto& message : batch.messages)
    users.push_back(message.key);
  return users;
}

TEST_F(CommitGate, AnOutcomeWaitsForItsCommit) {
  commit("a");
  ASSERT_EQ(storage_state_.wait_for(1), 1u);
  EXPECT_TRUE(log_now().empty()) << "the ack went out before the commit";
  bool settled = true;
  on_strand([&] { settled = gate_->settled(); });
  EXPECT_FALSE(settled);
  const auto batch = storage_state_.batches().front();
  EXPECT_EQ(batch.room, "room");
  EXPECT_EQ(batch.epoch, "epoch");
  EXPECT_EQ(users_of(batch), std::vector<std::string>{"a"});
  answer();
  EXPECT_EQ(log_when(1), std::vector<std::string>{"a"});
  on_strand([&] { settled = gate_->settled(); });
  EXPECT_TRUE(settled);
}

TEST_F(CommitGate, WhatArrivesDuringACommitFormsTheNextBatch) {
  commit("a");
  ASSERT_EQ(storage_state_.wait_for(1), 1u);
  commit("b");
  commit("c");
  EXPECT_EQ(storage_state_.wait_for(2), 1u) << "a second batch went out with one in flight";
  answer();
  ASSERT_EQ(storage_state_.wait_for(2), 2u);
  EXPECT_EQ(log_when(1), std::vector<std::string>{"a"}) << "b and c answered before their commit";
  EXPECT_EQ(users_of(storage_state_.batches()[1]), (std::vector<std::string>{"b", "c"}));
  answer();
  EXPECT_EQ(log_when(3), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(storage_state_.batches().size(), 2u);
}

TEST_F(CommitGate, AFailureAnswersTheBatchInFlightAndTheStagedOnesThenReloads) {
  commit("a");
  ASSERT_EQ(storage_state_.wait_for(1), 1u);
  commit("b");
  answer("disk full");
  EXPECT_EQ(log_when(3), (std::vector<std::string>{"a:disk full", "b:disk full", "reload"}));
  // The staged write went with the failed one: nothing more is sent, and the gate is clear.
  bool settled = false;
  on_strand([&] { settled = gate_->settled(); });
  EXPECT_TRUE(settled);
  EXPECT_EQ(storage_state_.batches().size(), 1u);
  // The next write is a batch of its own.
  commit("c");
  ASSERT_EQ(storage_state_.wait_for(2), 2u);
  EXPECT_EQ(users_of(storage_state_.batches()[1]), std::vector<std::string>{"c"});
  answer();
  EXPECT_EQ(log_when(4).back(), "c");
}

TEST_F(CommitGate, AReaderWaitsUntilNothingIsUncommittedAndKeepsItsPlace) {
  commit("a");
  ASSERT_EQ(storage_state_.wait_for(1), 1u);
  on_strand([&] {
    gate_->admit(true, [this] { log_.push_back("read"); });
    // A write after a waiting reader waits behind it, though writes need not wait.
    gate_->admit(false, [this] { log_.push_back("write"); });
  });
  commit("b"); // staged while "a" is in flight
  EXPECT_TRUE(log_now().empty());
  answer(); // "a" committed; "b" goes out: the reader still sees uncommitted state
  ASSERT_EQ(storage_state_.wait_for(2), 2u);
  EXPECT_EQ(log_when(1), std::vector<std::string>{"a"});
  answer();
  EXPECT_EQ(log_when(4), (std::vector<std::string>{"a", "b", "read", "write"}));
}

TEST_F(CommitGate, AfterPendingWaitsForWhatIsAppliedWithoutWritingAnything) {
  on_strand([&] { gate_->after_pending([this](const std::string&) { log_.push_back("now"); }); });
  EXPECT_EQ(log_now(), std::vector<std::string>{"now"});
  commit("a");
  ASSERT_EQ(storage_state_.wait_for(1), 1u);
  on_strand(
      [&] { gate_->after_pending([this](const std::string& e) { log_.push_back("dup" + e); }); });
  EXPECT_EQ(log_now().size(), 1u) << "a duplicate's ack overtook the first one's commit";
  answer();
  EXPECT_EQ(log_when(3), (std::vector<std::string>{"now", "a", "dup"}));
  EXPECT_EQ(storage_state_.wait_for(2), 1u) << "an empty batch was sent to the store";
}

class CommitGateInMemory : public CommitGate {
protected:
  void SetUp() override { spawn(false); }
};

TEST_F(CommitGateInMemory, EverythingPassesAtOnce) {
  on_strand([&] {
    EXPECT_FALSE(gate_->durable());
    gate_->commit([](store::room_writes&) { ADD_FAILURE() << "a batch without a store"; },
                  [this](const std::string& e) { log_.push_back("a" + e); });
    gate_->admit(true, [this] { log_.push_back("read"); });
    EXPECT_TRUE(gate_->settled());
  });
  EXPECT_EQ(log_now(), (std::vector<std::string>{"a", "read"}));
}

} // namespace
