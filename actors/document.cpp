#include "actors/document.hpp"

#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <chrono>
#include <optional>

#include <boost/asio/post.hpp>

#include "actors/commit_gate.hpp"
#include "actors/member_list.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/document_sequencer.hpp"
#include "core/metrics.hpp"
#include "store/store.hpp"
#include "protocol/codec.hpp"

namespace troupe::actors {

namespace {

class document : public std::enable_shared_from_this<document> {
public:
  document(companion* self, boost::asio::any_io_executor strand, std::string name,
           const document_settings& settings, store::loaded<core::document_sequencer> loaded,
           caf::actor presence, caf::actor storage, store::room_store& store,
           core::metrics& metrics)
      : self_(self), strand_(std::move(strand)), name_(std::move(name)), settings_(settings),
        presence_(std::move(presence)), store_(store), metrics_(metrics),
        gate_(self, std::move(storage), name_, loaded.ok() ? loaded.state->epoch() : "",
              [this] { reload(); }) {
    take_loaded(std::move(loaded), state_, load_error_, metrics_);
  }

  void open(doc_open& open) {
    if (refused(open.from, open.request.id)) return;
    const auto& since = open.request.since;
    std::string head;
    if (since && since->epoch == state_->epoch() && since->rev <= state_->rev() &&
        state_->covers(since->rev)) {
      std::vector<protocol::op_item> items;
      for (const auto* logged : state_->after(since->rev))
        items.push_back(item(*logged));
      head = protocol::encode_opened_recovered_head(
          open.request.id, name_, state_->rev(), state_->epoch(), protocol::encode_op_items(items));
    } else {
      head = protocol::encode_opened_head(open.request.id, name_, state_->rev(), state_->epoch(),
                                          state_->text().to_string());
    }
    // Presence completes and sends the reply; this holder's pushes wait for it.
    holders_.add(open.from); // opening again resynchronises; never listed twice
    self_->send(presence_,
                presence_join{std::move(open.from), presence_hold::document, std::move(head)});
  }

  void joined(const std::string& client) { holders_.activate(client); }

  /// Sequences the operations of one message (one frame's consecutive `op`s from one
  /// connection). They join the open run when it is the same author's; the run is sealed by
  /// flush() (see run below).
  void submit(doc_op& batch) {
    if (!state_) {
      flush();
      protocol::frame_builder errors;
      for (const auto& request : batch.requests)
        protocol::encode_error(errors, request.id, protocol::error_code::unavailable, load_error_);
      return holders_.reply(batch.from, errors.finish());
    }
    if (run_.open && !same_peer(run_.from, batch.from)) flush();
    const bool opens = !run_.open;
    if (opens) {
      run_.open = true;
      // An author whose previous run was sealed a moment ago is streaming (a pipelining
      // client, whose connection hands its messages over one per strand turn): its run
      // waits one turn more for the next one. An editor waiting for its ack is not: its
      // run is sealed at the first turn, so that the ack does not wait.
      const auto now = std::chrono::steady_clock::now();
      run_.patient = batch.from.sink.get() == sealed_author_ && now - sealed_at_ < streaming;
      run_.waited = false;
      run_.from = std::move(batch.from);
      run_.first_rev = state_->rev() + 1;
      run_.others = holders_.size() > (holders_.contains(run_.from.client) ? 1u : 0u);
      ++run_.generation;
      seal_later();
    }
    for (const auto& request : batch.requests) {
      run_.ids.push_back(request.id);
      submit(run_.from, request, run_.replies, run_.others ? &run_.pushes : nullptr,
             gate_.durable() ? &run_.accepted : nullptr);
    }
    if (opens) run_.seen = run_.ids.size();
    // Bounded, so that a flood makes frames of a sensible size and acks keep flowing.
    if (run_.ids.size() >= run::max_ops ||
        run_.replies.payload_size() + run_.pushes.payload_size() >= run::max_bytes)
      flush();
  }

  /// Seals the run once the strand has handled what was queued behind its last message: a
  /// post from inside the strand goes to the back of its queue. While the run still grows
  /// from one turn to the next, the author is sending faster than the strand turns, and the
  /// run waits one more turn (a streaming author's also once more at first: its connection,
  /// reading one message at a time, hands the next one over only after this post).
  void seal_later() {
    boost::asio::post(strand_, [self = weak_from_this(), generation = run_.generation] {
      auto me = self.lock();
      if (!me || !me->run_.open || me->run_.generation != generation) return;
      auto& run = me->run_;
      if (run.ids.size() != run.seen || (run.patient && !run.waited)) {
        run.seen = run.ids.size();
        run.waited = true;
        return me->seal_later();
      }
      me->flush();
    });
  }

  /// Seals the open run: the pushes to the other holders, then the author's frame of acks
  /// and errors, after their commit (at once with the memory store). Every handler but an
  /// `op` from the run's author calls this first, so nothing (an `open`, a leave, another
  /// author's operation, the end) ever sees state whose pushes have not gone out.
  void flush() {
    if (!run_.open) return;
    run_.open = false;
    sealed_author_ = run_.from.sink.get();
    sealed_at_ = std::chrono::steady_clock::now();
    const std::uint64_t first_rev = run_.first_rev;
    const std::uint64_t applied = state_ ? state_->rev() + 1 - first_rev : 0;
    auto outcome = [this, from = std::move(run_.from), ids = std::move(run_.ids),
                    replies = run_.replies.finish(),
                    pushes = run_.pushes.empty() ? nullptr : run_.pushes.finish(),
                    applied](const std::string& error) {
      if (!error.empty()) {
        protocol::frame_builder errors;
        for (const auto id : ids)
          protocol::encode_error(errors, id, protocol::error_code::unavailable, error);
        return holders_.reply(from, errors.finish());
      }
      // The others' pushes are queued before the author's ack: whoever has seen an ack
      // knows every holder has the operation on its way.
      if (pushes) holders_.send(pushes, from.client);
      holders_.reply(from, replies);
      core::metrics::add(metrics_.operations, applied);
    };
    run_.from = {};
    run_.ids = {};
    run_.pushes.clear();
    auto accepted = std::move(run_.accepted);
    run_.accepted = {};
    if (applied == 0)
      return gate_.after_pending(std::move(outcome)); // duplicates' acks follow their commit
    gate_.commit(
        [&](store::room_writes& writes) {
          for (auto& run : accepted)
            writes.runs.push_back(std::move(run));
          // A snapshot every --doc-snapshot revisions: a restart replays only what follows.
          const std::uint64_t every = settings_.snapshot_every;
          if ((first_rev - 1) / every != state_->rev() / every) {
            const std::uint64_t rev = state_->rev();
            writes.snapshot = store::document_snapshot{
                rev, state_->text().to_string(),
                rev >= state_->log_capacity() ? rev - state_->log_capacity() + 1 : 0};
          }
        },
        std::move(outcome));
  }

  void close(doc_close& close) {
    remove(close.from.client, false);
    close.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_closed(out, close.request.id, name_);
    }));
  }

  void leave(const room_leave& leave) { remove(leave.client, leave.abrupt); }

  /// Hands the document to the store so the next actor of this room continues it (a
  /// durable store has it already), and ends.
  void stop(const caf::actor& directory) {
    if (state_) store_.keep_document(name_, std::move(*state_));
    self_->send(directory, stopped_atom::value, name_);
    self_->quit();
  }

  commit_gate& gate() noexcept { return gate_; }
  bool direct = false; ///< an `op` handler is running (not an action the gate released later)

private:
  static protocol::op_item item(const core::logged_operation& logged) {
    return {logged.rev, &logged.op, logged.user, logged.key};
  }

  static bool same_peer(const peer_ref& a, const peer_ref& b) noexcept {
    return a.sink == b.sink && a.client == b.client;
  }

  /// A failed commit took back what was applied since the last one: start again from
  /// what the store holds (nothing of it was acknowledged or pushed).
  void reload() {
    take_loaded(store_.load_document(name_, settings_.log), state_, load_error_, metrics_);
  }

  /// A document that could not be loaded answers every request with `unavailable`.
  bool refused(const peer_ref& to, protocol::request_id id) {
    if (state_) return false;
    holders_.reply(to, protocol::make_frame([&](protocol::frame_builder& out) {
                     protocol::encode_error(out, id, protocol::error_code::unavailable,
                                            load_error_);
                   }));
    return true;
  }

  void submit(const peer_ref& from, const protocol::op_request& request,
              protocol::frame_builder& replies, protocol::frame_builder* pushes,
              std::vector<store::operation_run>* accepted) {
    auto fail = [&](protocol::error_code code, std::string_view reason) {
      core::metrics::add(metrics_.bad_requests);
      protocol::encode_error(replies, request.id, code, reason);
    };
    auto parsed = ot::parse(request.op);
    if (!parsed.op) return fail(protocol::error_code::bad_request, parsed.error);
    const auto result = state_->submit(request.rev, std::move(*parsed.op), request.key, from.user);
    using outcome = core::document_sequencer::outcome;
    switch (result.kind) {
    case outcome::duplicate: // a resubmission: its first revision, not applied twice
      return protocol::encode_doc_ack(replies, request.id, name_, result.rev);
    case outcome::conflict:
      return fail(protocol::error_code::conflict, result.reason);
    case outcome::invalid:
      return fail(protocol::error_code::bad_request, result.reason);
    case outcome::applied:
      break;
    }
    protocol::encode_doc_ack(replies, request.id, name_, result.rev);
    if (pushes) protocol::encode_op(*pushes, name_, item(*result.accepted));
    // Durable: in the store's row form at once, rather than a copy of the operation.
    if (accepted) store::append_to_runs(*accepted, *result.accepted);
  }

  void remove(const std::string& client, bool abrupt) {
    if (holders_.remove(client))
      self_->send(presence_, presence_leave{client, presence_hold::document, abrupt});
  }

  /// Consecutive `op` messages of one author, sequenced but not yet answered. A client that
  /// sends each edit as it makes it sends one operation per message: sequencing one costs
  /// well under a microsecond, and an ack frame, a push frame, a commit and an outcome per
  /// message would cost more than that. A run answers all of them with one frame of acks
  /// and one of pushes, exactly as if they had come in one frame; it is sealed when it stops
  /// growing from one turn of the strand to the next (seal_later), at max_ops or max_bytes,
  /// or before the actor handles anything else.
  struct run {
    static constexpr std::size_t max_ops = 1024;
    static constexpr std::size_t max_bytes = 256 * 1024;
    bool open = false;
    std::uint64_t generation = 0; ///< tells a stale seal_later() from this run's
    std::size_t seen = 0;         ///< operations at the last turn: is it still growing?
    bool patient = false;         ///< its author is streaming: wait one more turn at first
    bool waited = false;          ///< it has had that turn
    peer_ref from;
    bool others = false; ///< someone else holds the document: pushes are built
    std::uint64_t first_rev = 0;
    std::vector<protocol::request_id> ids;
    protocol::frame_builder replies;            ///< acks and errors for the author, in order
    protocol::frame_builder pushes;             ///< the accepted operations, for everyone else
    std::vector<store::operation_run> accepted; ///< to be stored (a durable store only)
  };

  companion* self_;
  boost::asio::any_io_executor strand_;
  std::string name_;
  document_settings settings_;
  std::optional<core::document_sequencer> state_; ///< none: it could not be loaded
  std::string load_error_;
  caf::actor presence_;
  store::room_store& store_;
  core::metrics& metrics_;
  member_list holders_;
  commit_gate gate_;
  run run_;
  /// The author of the last sealed run and when: one back within `streaming` is streaming.
  static constexpr std::chrono::microseconds streaming{200};
  const frame_sink* sealed_author_ = nullptr;
  std::chrono::steady_clock::time_point sealed_at_;
};

} // namespace

caf::actor spawn_document(caf::actor_system& system, boost::asio::any_io_executor strand,
                          std::string name, const document_settings& settings, caf::actor presence,
                          caf::actor storage, store::room_store& store, core::metrics& metrics) {
  auto loaded = store.load_document(name, settings.log);
  auto executor = strand; // the actor posts the flush of its runs there
  return spawn_on_strand(system, std::move(strand), [&](companion* self) {
    auto actor = std::make_shared<document>(self, std::move(executor), std::move(name), settings,
                                            std::move(loaded), std::move(presence),
                                            std::move(storage), store, metrics);
    // Writers go ahead; readers (and the end) wait until nothing uncommitted is left.
    return caf::behavior{
        [actor](doc_open& open) {
          actor->flush();
          actor->gate().admit(true,
                              [actor, open = std::move(open)]() mutable { actor->open(open); });
        },
        [actor](doc_op& op) {
          // Straight from the mailbox it may join the open run. Released later from behind
          // a reader that waited for a commit, it is sealed at once: the next reader in that
          // line must see only committed state.
          actor->direct = true;
          actor->gate().admit(false, [actor, op = std::move(op)]() mutable {
            actor->submit(op);
            if (!actor->direct) actor->flush();
          });
          actor->direct = false;
        },
        [actor](doc_close& close) {
          actor->flush();
          actor->gate().admit(false,
                              [actor, close = std::move(close)]() mutable { actor->close(close); });
        },
        [actor](joined_atom, const std::string& client) {
          actor->flush();
          actor->joined(client);
        },
        [actor](const room_leave& leave) {
          actor->flush();
          actor->gate().admit(false, [actor, leave] { actor->leave(leave); });
        },
        [actor](const store_done& done) {
          actor->flush(); // the run joins the next commit
          actor->gate().committed(done);
        },
        [actor, self](stop_atom) {
          actor->flush();
          auto directory = caf::actor_cast<caf::actor>(self->current_sender());
          actor->gate().admit(true, [actor, directory] { actor->stop(directory); });
        },
    };
  });
}

} // namespace troupe::actors
