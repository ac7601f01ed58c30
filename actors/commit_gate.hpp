#pragma once
// Acknowledged means durable. A room's log and its document apply each write to their
// state at once (the next one is sequenced against it) but hold what it produces (the
// author's ack, the pushes to everyone else) until the storage actor has committed it. One
// batch per actor is in flight at a time; what arrives meanwhile is gathered into the next,
// so a busy room commits many messages per transaction. Requests that read the state (a
// `sub`, an `open`, the actor's end) wait until nothing uncommitted is left, so no reply
// ever shows a message or an operation that a crash could still take back. Without a
// storage actor (the memory store) everything passes at once.

#include <deque>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>

#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/metrics.hpp"
#include "store/store.hpp"

namespace troupe::actors {

class commit_gate {
public:
  /// What runs once a write is settled: `error` is empty when it was committed, else why
  /// it was not (its requests get `unavailable`).
  using outcome = std::function<void(const std::string& error)>;

  /// `storage`: the storage actor, or none for the memory store. `on_failure` runs after a
  /// failed commit's outcomes: everything applied since the last commit is gone, so the
  /// actor reloads its state from the store.
  commit_gate(companion* self, caf::actor storage, std::string room, std::string epoch,
              std::function<void()> on_failure)
      : self_(self), storage_(std::move(storage)), room_(std::move(room)), epoch_(std::move(epoch)),
        on_failure_(std::move(on_failure)) {}

  bool durable() const noexcept { return static_cast<bool>(storage_); }

  /// Nothing applied is waiting for a commit.
  bool settled() const noexcept { return !in_flight_ && staged_outcomes_.empty(); }

  /// Runs `action` now, or queues it behind earlier ones that wait: a reader (`reads`)
  /// waits until the state is settled, so that it sees only committed state.
  template <class Action>
  void admit(bool reads, Action&& action) {
    if (waiting_.empty() && (!reads || settled()))
      action();
    else
      waiting_.push_back({reads, std::function<void()>(std::forward<Action>(action))});
  }

  /// Adds writes to the next commit (`write` fills the batch; called only when durable)
  /// and runs `then` once they are settled; at once with the memory store.
  template <class Write, class Then>
  void commit(Write&& write, Then&& then) {
    if (!durable()) {
      then(std::string());
      return;
    }
    write(staged_);
    staged_outcomes_.emplace_back(std::forward<Then>(then));
    if (!in_flight_) send();
  }

  /// Runs `then` once everything applied so far is committed (a duplicate's ack must not
  /// overtake the first one's commit); at once when it is already.
  template <class Then>
  void after_pending(Then&& then) {
    if (settled())
      then(std::string());
    else
      staged_outcomes_.emplace_back(std::forward<Then>(then));
  }

  /// The storage actor's answer for the batch in flight.
  void committed(const store_done& done) {
    in_flight_ = false;
    auto outcomes = std::move(in_flight_outcomes_);
    in_flight_outcomes_.clear();
    if (!done.error.empty()) {
      // The staged writes were sequenced after the failed ones: they go too.
      for (auto& outcome : staged_outcomes_)
        outcomes.push_back(std::move(outcome));
      staged_outcomes_.clear();
      staged_ = {};
    }
    for (auto& outcome : outcomes)
      outcome(done.error);
    if (!done.error.empty()) on_failure_();
    if (!staged_outcomes_.empty()) send();
    // Release what waited, in order, until a reader meets uncommitted state again.
    while (!waiting_.empty() && (!waiting_.front().reads || settled())) {
      auto action = std::move(waiting_.front().action);
      waiting_.pop_front();
      action();
    }
  }

private:
  struct waiting_action {
    bool reads;
    std::function<void()> action;
  };

  void send() {
    if (staged_.messages.empty() && !staged_.writes_document()) {
      // Only outcomes that waited for the batch that just committed: nothing to write.
      auto outcomes = std::move(staged_outcomes_);
      staged_outcomes_.clear();
      for (auto& outcome : outcomes)
        outcome(std::string());
      return;
    }
    staged_.room = room_;
    staged_.epoch = epoch_;
    in_flight_ = true;
    in_flight_outcomes_ = std::move(staged_outcomes_);
    staged_outcomes_.clear();
    self_->send(storage_, store_request{std::move(staged_)});
    staged_ = {};
  }

  companion* self_;
  caf::actor storage_;
  std::string room_;
  std::string epoch_;
  std::function<void()> on_failure_;
  bool in_flight_ = false;
  std::vector<outcome> in_flight_outcomes_;
  store::room_writes staged_;
  std::vector<outcome> staged_outcomes_;
  std::deque<waiting_action> waiting_;
};

/// Takes a state read from the store into `state`; or, when it could not be read, reports
/// why (logged, counted) and keeps the reason in `error` for the requests it refuses.
template <class State>
void take_loaded(store::loaded<State> loaded, std::optional<State>& state, std::string& error,
                 core::metrics& metrics) {
  if (loaded.ok()) {
    state = std::move(loaded.state);
    error.clear();
    return;
  }
  state.reset();
  error = "the store could not load " + loaded.error;
  core::metrics::add(metrics.store_load_failures);
  std::cerr << "troupe: " << error << std::endl;
}

} // namespace troupe::actors
