#include "actors/cluster_document.hpp"

#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <variant>

#include "actors/cluster_hub.hpp"
#include "actors/member_list.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "cluster/document_script.hpp"
#include "core/document_sequencer.hpp"
#include "core/history_log.hpp"
#include "core/metrics.hpp"
#include "protocol/codec.hpp"

namespace troupe::actors {

namespace {

using deadline_atom = caf::atom_constant<caf::atom("docdead")>;
using check_atom = caf::atom_constant<caf::atom("doccheck")>;

/// How often a document with holders on this node reads what Redis has beyond its copy: a
/// lost last operation (nothing follows it on the channel) is found within this.
constexpr std::chrono::seconds check_interval{2};

/// Attempts of one operation before `unavailable`. Nodes race for each revision and a
/// refused attempt costs one round trip (the refusal carries what was missed), so the bound
/// is generous; the deadline below bounds the time.
constexpr int max_tries = 32;
/// An operation not acknowledged by then gets `unavailable` (the contract: within 5 s).
constexpr std::chrono::milliseconds commit_deadline{4500};

using code = protocol::error_code;

/// One operation request, sequenced alone (a frame's batch is split: each ack must follow
/// the pushes of every revision below it, and other nodes' operations interleave).
struct op_task {
  peer_ref from;
  protocol::op_request request;
};
struct stop_task {
  caf::actor directory;
};
using task = std::variant<doc_open, op_task, doc_close, room_leave, stop_task>;

/// The operation being committed (one at a time per node and document).
struct commit {
  peer_ref from;
  protocol::request_id id = 0;
  std::uint64_t base = 0; ///< the revision the client made it against
  ot::operation op;       ///< as the client sent it
  std::string key;
  std::string cid; ///< this node's id of the commit: finds it on the channel
  std::uint64_t gen = 0;
  int tries = 0;
  bool caught_up = false; ///< a read was made for a base ahead of the copy
  bool sent = false;      ///< it may be in Redis: the channel's copy of it is the ack
  std::uint64_t sent_base = 0;
  ot::operation sent_op; ///< as transformed up to sent_base
};

class cluster_document : public std::enable_shared_from_this<cluster_document> {
public:
  cluster_document(companion* self, std::string name, const document_settings& settings,
                   caf::actor presence, cluster_hub& hub, core::metrics& metrics)
      : self_(self), name_(std::move(name)), settings_(settings), presence_(std::move(presence)),
        hub_(hub), metrics_(metrics), keys_(cluster::document_keys_for(name_)),
        cid_prefix_(core::new_epoch() + ":") {}

  // --- requests --------------------------------------------------------------------------

  void open(doc_open& open) { queue_.emplace_back(std::move(open)); }

  void submit(doc_op& batch) {
    for (auto& request : batch.requests)
      queue_.emplace_back(op_task{batch.from, std::move(request)});
  }

  /// Needs no Redis, so it never waits for it; only behind an `open` of the same client
  /// still queued (open then close in one frame ends closed).
  void close(doc_close& close) {
    if (queued_for(close.from.client)) {
      queue_.emplace_back(std::move(close));
      return;
    }
    run_close(close);
  }

  void leave(const room_leave& leave) {
    if (queued_for(leave.client)) {
      queue_.emplace_back(leave);
      return;
    }
    remove(leave.client, leave.abrupt);
  }

  void joined(const std::string& client) { holders_.activate(client); }

  void stop(caf::actor directory) { queue_.emplace_back(stop_task{std::move(directory)}); }

  // --- Redis -------------------------------------------------------------------------------

  void on_pubsub(const redis_pubsub& message) {
    if (message.channel != keys_.channel) return;
    cluster::published_op published;
    try {
      published = cluster::decode_published_op(message.payload);
    } catch (const std::exception& e) {
      // Not lost: a read of the stream fills whatever it was.
      std::cerr << "troupe: document " << name_
                << ": a published operation was not understood: " << e.what() << std::endl;
      if (state_ == state::ready) catch_up({});
      return;
    }
    if (state_ != state::ready) {
      // Before the load's read: kept until the copy is there, then dropped if it has them.
      if (state_ == state::loading) early_.push_back(std::move(published));
      return;
    }
    if (published.epoch != mirror_->epoch()) return lost("the document was lost in Redis");
    take(std::move(published.entry));
    drain();
    if (!pending_.empty()) catch_up({}); // a hole: read it from the stream
  }

  void on_link_event(const redis_link_event& e) {
    // After a resubscription whatever was published meanwhile is read back from the stream
    // (and an epoch that changed is found by that read).
    if (e.event != cluster::redis_subscriber::event::down && state_ == state::ready) catch_up({});
  }

  void on_check() {
    check_scheduled_ = false;
    if (state_ == state::ready && holders_.size() > 0) catch_up({});
  }

  void on_deadline(std::uint64_t gen) {
    if (commit_ && commit_->gen == gen)
      finish_error(code::unavailable, "Redis did not commit the operation in time");
  }

  /// Starts what can start: called at the end of every handler.
  void pump() {
    if (!check_scheduled_ && holders_.size() > 0) {
      check_scheduled_ = true;
      self_->delayed_send(self_, check_interval, check_atom::value);
    }
    while (!busy_ && !queue_.empty()) {
      if (std::holds_alternative<stop_task>(queue_.front())) return run_stop();
      if (state_ == state::idle) return start_load();
      if (state_ == state::loading) return;
      task next = std::move(queue_.front());
      queue_.pop_front();
      std::visit([this](auto& t) { run(t); }, next);
    }
  }

private:
  enum class state { idle, loading, ready };

  /// Whether an `open` of this client is queued or waiting for Redis (its close or leave
  /// must follow it, or the client would be left a holder).
  bool queued_for(std::string_view client) const {
    if (busy_ && opening_ == client) return true;
    for (const auto& t : queue_) {
      if (const auto* o = std::get_if<doc_open>(&t); o && o->from.client == client) return true;
    }
    return false;
  }

  // --- running the queue -------------------------------------------------------------------

  void run(doc_open& open) {
    // Reads what Redis has beyond the copy first: an `open` on this node sees every operation
    // acknowledged before it on any node.
    busy_ = true;
    opening_ = open.from.client;
    catch_up([this, open = std::move(open)](bool ok) mutable {
      busy_ = false;
      opening_.clear();
      if (!ok)
        return reply_error(open.from, open.request.id, code::unavailable,
                           "Redis did not answer: " + last_error_);
      if (state_ != state::ready) {
        queue_.emplace_front(std::move(open)); // reloading: answered from the new copy
        return;
      }
      answer_open(open);
    });
  }

  void run(op_task& t) {
    auto parsed = ot::parse(t.request.op);
    if (!parsed.op) {
      core::metrics::add(metrics_.bad_requests);
      return reply_error(t.from, t.request.id, code::bad_request, parsed.error);
    }
    commit_.emplace();
    commit_->from = std::move(t.from);
    commit_->id = t.request.id;
    commit_->base = t.request.rev;
    commit_->op = std::move(*parsed.op);
    commit_->key = std::move(t.request.key);
    commit_->gen = ++gens_;
    commit_->cid = cid_prefix_ + std::to_string(commit_->gen);
    busy_ = true;
    self_->delayed_send(self_, commit_deadline, deadline_atom::value, commit_->gen);
    attempt();
  }

  void run(doc_close& close) { run_close(close); }
  void run(room_leave& leave) { remove(leave.client, leave.abrupt); }
  void run(stop_task&) {} // run_stop(), from pump()

  void run_close(doc_close& close) {
    remove(close.from.client, false);
    close.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_closed(out, close.request.id, name_);
    }));
  }

  void run_stop() {
    auto directory = std::get<stop_task>(queue_.front()).directory;
    queue_.clear();
    if (subscribed_) hub_.unsubscribe(keys_.channel, caf::actor_cast<caf::actor>(self_));
    self_->send(directory, stopped_atom::value, name_);
    self_->quit();
  }

  void answer_open(doc_open& open) {
    const auto& since = open.request.since;
    std::string head;
    if (since && since->epoch == mirror_->epoch() && since->rev <= mirror_->rev() &&
        mirror_->covers(since->rev)) {
      std::vector<protocol::op_item> items;
      for (const auto* logged : mirror_->after(since->rev))
        items.push_back({logged->rev, &logged->op, logged->user, logged->key});
      head = protocol::encode_opened_recovered_head(open.request.id, name_, mirror_->rev(),
                                                    mirror_->epoch(),
                                                    protocol::encode_op_items(items));
    } else {
      head = protocol::encode_opened_head(open.request.id, name_, mirror_->rev(), mirror_->epoch(),
                                          mirror_->text().to_string());
    }
    // Presence completes and sends the reply; this holder's pushes wait for it.
    holders_.add(open.from);
    self_->send(presence_,
                presence_join{std::move(open.from), presence_hold::document, std::move(head)});
  }

  // --- committing --------------------------------------------------------------------------

  /// Transforms the operation up to the copy's revision and offers it to Redis.
  void attempt() {
    ot::operation op = commit_->op;
    const auto result = mirror_->prepare(commit_->base, op, commit_->key);
    using outcome = core::document_sequencer::outcome;
    switch (result.kind) {
    case outcome::duplicate: // accepted before (on any node): its first revision
      return finish_ack(result.rev);
    case outcome::conflict:
      return finish_error(code::conflict, result.reason);
    case outcome::invalid:
      if (commit_->base > mirror_->rev() && !commit_->caught_up) {
        // Perhaps made against what another node has acknowledged and this copy not yet seen.
        commit_->caught_up = true;
        return after_catch_up();
      }
      return finish_error(code::bad_request, result.reason);
    case outcome::applied:
      break;
    }
    const std::uint64_t rev = mirror_->rev();
    std::optional<std::string> snapshot;
    if (result.rev % std::max<std::size_t>(settings_.snapshot_every, 1) == 0)
      snapshot = ot::apply(mirror_->text().to_string(), op);
    const std::string packed = cluster::pack_op(op);
    commit_->sent = true;
    commit_->sent_base = rev;
    commit_->sent_op = std::move(op);
    ++commit_->tries;
    const auto call = cluster::commit_call(
        keys_,
        {mirror_->epoch(), settings_.log, rev, commit_->from.user, commit_->key, commit_->cid,
         packed, snapshot ? std::optional<std::string_view>(*snapshot) : std::nullopt});
    hub_.eval(self_actor(), cluster::doc_commit_script(), call.keys, call.args,
              [weak = weak_from_this(), gen = commit_->gen](std::error_code ec,
                                                            cluster::redis_reply reply) {
                if (auto self = weak.lock()) self->committed(gen, ec, reply);
              });
  }

  void committed(std::uint64_t gen, std::error_code ec, const cluster::redis_reply& reply) {
    // A commit given up on (deadline, reset) that Redis took anyway reaches the copy through
    // the channel like any other node's operation.
    if (!commit_ || commit_->gen != gen) return;
    if (ec) {
      last_error_ = ec.message();
      return finish_error(code::unavailable, "Redis: " + ec.message());
    }
    cluster::commit_result result;
    try {
      result = cluster::decode_commit_reply(reply);
    } catch (const std::exception& e) {
      return finish_error(code::unavailable, std::string("Redis: ") + e.what());
    }
    using status = cluster::commit_status;
    switch (result.status) {
    case status::accepted:
      if (mirror_->rev() == commit_->sent_base) {
        // Ahead of the channel's copy of it, which will be dropped as already applied.
        apply({result.rev, commit_->from.user, commit_->key, commit_->cid, commit_->sent_op});
        drain();
        return;
      }
      if (mirror_->rev() >= result.rev) return finish_ack(result.rev);
      // The channel (or a read) brings it and acknowledges it; a hole below it is read.
      return after_catch_up();
    case status::duplicate:
      if (mirror_->rev() >= result.rev) return finish_ack(result.rev);
      // Acknowledged once this node has every revision up to it (its ack must follow them);
      // the copy finds it by its key.
      return after_catch_up();
    case status::stale:
      for (auto& entry : result.missed)
        take(std::move(entry));
      drain();
      if (state_ != state::ready || !commit_) return; // the copy was reset, or it was ours
      if (commit_->tries >= max_tries)
        return finish_error(code::unavailable, "the document kept changing: try again");
      if (mirror_->rev() >= result.rev) return attempt();
      return after_catch_up();
    case status::epoch:
      return lost("the document was lost in Redis");
    }
  }

  /// Reads what the copy misses, then attempts the current commit again (if still current).
  void after_catch_up() {
    catch_up([this, gen = commit_->gen](bool ok) {
      if (!commit_ || commit_->gen != gen) return;
      if (!ok) return finish_error(code::unavailable, "Redis did not answer: " + last_error_);
      if (state_ != state::ready)
        return finish_error(code::unavailable, "the document is reloading");
      attempt();
    });
  }

  void finish_ack(std::uint64_t rev) {
    holders_.reply(commit_->from, protocol::make_frame([&](protocol::frame_builder& out) {
                     protocol::encode_doc_ack(out, commit_->id, name_, rev);
                   }));
    core::metrics::add(metrics_.operations);
    commit_.reset();
    busy_ = false;
  }

  void finish_error(protocol::error_code c, std::string_view reason) {
    if (c != code::unavailable) core::metrics::add(metrics_.bad_requests);
    reply_error(commit_->from, commit_->id, c, reason);
    commit_.reset();
    busy_ = false;
  }

  void reply_error(const peer_ref& to, protocol::request_id id, protocol::error_code c,
                   std::string_view reason) {
    holders_.reply(to, protocol::make_frame([&](protocol::frame_builder& out) {
                     protocol::encode_error(out, id, c, reason);
                   }));
  }

  // --- the copy ----------------------------------------------------------------------------

  /// Keeps an operation from the channel or a read until its turn.
  void take(cluster::document_entry entry) {
    if (entry.rev <= mirror_->rev()) return;
    const auto rev = entry.rev;
    pending_.emplace(rev, std::move(entry));
  }

  /// Applies the kept operations that are next, in revision order.
  void drain() {
    while (state_ == state::ready && !pending_.empty() &&
           pending_.begin()->first <= mirror_->rev() + 1) {
      auto node = pending_.extract(pending_.begin());
      if (node.key() == mirror_->rev() + 1) apply(std::move(node.mapped()));
    }
  }

  /// The next revision: pushed to this node's holders, and the ack of its author if it is
  /// the operation this node is committing (found by its cid, or by its key: the same key
  /// committed by another node, or by an attempt given up on).
  void apply(cluster::document_entry entry) {
    const std::uint64_t rev = entry.rev;
    const bool ours =
        commit_ && commit_->sent &&
        (entry.cid == commit_->cid || (!entry.key.empty() && entry.key == commit_->key));
    if (!mirror_->replay({rev, std::move(entry.op), std::move(entry.user), std::move(entry.key)}))
      return lost("the document's operations in Redis do not apply");
    if (holders_.size() > (ours && holders_.contains(commit_->from.client) ? 1u : 0u)) {
      const auto& logged = mirror_->log().back();
      holders_.send(
          protocol::make_frame([&](protocol::frame_builder& out) {
            protocol::encode_op(out, name_, {logged.rev, &logged.op, logged.user, logged.key});
          }),
          ours ? std::string_view(commit_->from.client) : std::string_view());
    }
    // The others' pushes are queued before the author's ack, as on one node.
    if (ours) finish_ack(rev);
  }

  using read_waiter = std::function<void(bool ok)>;

  /// Reads every operation after the copy's revision from the stream, then calls `then` (if
  /// any). One read at a time; a request during one gets the next read.
  void catch_up(read_waiter then) {
    if (then) waiting_.push_back(std::move(then));
    if (!reading_) read();
  }

  void read() {
    reading_ = true;
    auto waiters = std::move(waiting_);
    waiting_.clear();
    const auto call = cluster::range_call(keys_, mirror_->rev() + 1);
    hub_.eval(self_actor(), cluster::doc_read_script(), call.keys, call.args,
              [weak = weak_from_this(), waiters = std::move(waiters),
               copy = copies_](std::error_code ec, cluster::redis_reply reply) mutable {
                if (auto self = weak.lock()) self->was_read(copy, ec, reply, waiters);
              });
  }

  void was_read(std::uint64_t copy, std::error_code ec, const cluster::redis_reply& reply,
                std::vector<read_waiter>& waiters) {
    reading_ = false;
    bool ok = !ec;
    if (ec) last_error_ = ec.message();
    // A read made for a copy since reset says nothing about the new one.
    if (ok && state_ == state::ready && copy == copies_) {
      try {
        auto read = cluster::decode_document_read(reply);
        if (read.epoch != mirror_->epoch()) {
          lost("the document was lost in Redis");
        } else {
          if (!read.entries.empty() && read.entries.front().rev > mirror_->rev() + 1)
            lost("this node missed operations Redis no longer keeps");
          else
            for (auto& entry : read.entries)
              take(std::move(entry));
          drain();
        }
      } catch (const std::exception& e) {
        ok = false;
        last_error_ = e.what();
      }
    }
    for (auto& waiter : waiters)
      waiter(ok);
    if (state_ == state::ready && !reading_ && (!waiting_.empty() || (ok && !pending_.empty())))
      read();
  }

  // --- loading -----------------------------------------------------------------------------

  /// Subscribes first, then reads the document: whatever is published after the read reaches
  /// the copy, and what was published before it is in it.
  void start_load() {
    state_ = state::loading;
    early_.clear();
    if (subscribed_) return load();
    subscribed_ = true;
    hub_.subscribe(keys_.channel, self_actor(), [weak = weak_from_this()](std::error_code ec) {
      auto self = weak.lock();
      if (!self || self->state_ != state::loading) return;
      // Not live yet (the pub/sub link is down): it will be, and the link's `resubscribed`
      // makes a ready copy read what it missed, so the load need not wait.
      (void)ec;
      self->load();
    });
  }

  void load() {
    const auto call = cluster::load_call(keys_, core::new_epoch());
    hub_.eval(self_actor(), cluster::doc_read_script(), call.keys, call.args,
              [weak = weak_from_this()](std::error_code ec, cluster::redis_reply reply) {
                if (auto self = weak.lock()) self->loaded(ec, reply);
              });
  }

  void loaded(std::error_code ec, const cluster::redis_reply& reply) {
    if (state_ != state::loading) return;
    if (ec) return load_failed("Redis: " + ec.message());
    try {
      auto read = cluster::decode_document_read(reply);
      if (read.epoch.empty()) throw cluster::bad_reply("the document has no epoch");
      auto& entries = read.entries;
      for (std::size_t i = 1; i < entries.size(); ++i)
        if (entries[i].rev != entries[i - 1].rev + 1)
          throw cluster::bad_reply("the kept operations have a hole");
      if (entries.empty()
              ? read.rev != read.snapshot_rev
              : entries.back().rev != read.rev || entries.front().rev > read.snapshot_rev + 1)
        throw cluster::bad_reply("the kept operations do not reach from the snapshot to the top");
      // Those up to the snapshot are history (recovery, transforms); those after it replay.
      std::vector<core::logged_operation> history;
      std::size_t i = 0;
      for (; i < entries.size() && entries[i].rev <= read.snapshot_rev; ++i)
        history.push_back({entries[i].rev, std::move(entries[i].op), std::move(entries[i].user),
                           std::move(entries[i].key)});
      mirror_.emplace(settings_.log, read.epoch, read.snapshot_rev, read.snapshot_text,
                      std::move(history));
      for (; i < entries.size(); ++i)
        if (!mirror_->replay({entries[i].rev, std::move(entries[i].op), std::move(entries[i].user),
                              std::move(entries[i].key)}))
          throw cluster::bad_reply("an operation does not apply to the snapshot's text");
    } catch (const std::exception& e) {
      mirror_.reset();
      return load_failed(std::string("the document in Redis could not be read: ") + e.what());
    }
    state_ = state::ready;
    pending_.clear();
    for (auto& published : early_)
      if (published.epoch == mirror_->epoch()) take(std::move(published.entry));
    early_.clear();
    drain();
    if (!pending_.empty()) catch_up({});
  }

  /// Without a copy every waiting request is refused (`close` and leaving never are); the
  /// next request tries again.
  void load_failed(const std::string& reason) {
    std::cerr << "troupe: document " << name_ << ": " << reason << std::endl;
    last_error_ = reason;
    state_ = state::idle;
    early_.clear();
    std::deque<task> waiting;
    std::swap(waiting, queue_);
    while (!waiting.empty()) {
      task t = std::move(waiting.front());
      waiting.pop_front();
      if (auto* open = std::get_if<doc_open>(&t))
        reply_error(open->from, open->request.id, code::unavailable, reason);
      else if (auto* op = std::get_if<op_task>(&t))
        reply_error(op->from, op->request.id, code::unavailable, reason);
      else if (auto* close = std::get_if<doc_close>(&t))
        run_close(*close);
      else if (auto* leave = std::get_if<room_leave>(&t))
        remove(leave->client, leave->abrupt);
      else
        queue_.push_back(std::move(t)); // the stop
    }
  }

  /// The copy no longer matches Redis (its epoch changed: Redis lost the document; or this
  /// node missed what Redis no longer keeps): every holder is reset (the transport closes
  /// with 4500; the client reopens and is told the new epoch) and the copy is loaded again.
  void lost(const std::string& reason) {
    std::cerr << "troupe: document " << name_ << ": " << reason << ": resetting its holders"
              << std::endl;
    for (auto& holder : holders_.take_all()) {
      holder.sink->reset(reason);
      self_->send(presence_, presence_leave{holder.client, presence_hold::document, false});
    }
    if (commit_) finish_error(code::unavailable, reason);
    mirror_.reset();
    pending_.clear();
    ++copies_;
    state_ = state::idle; // pump() loads it again for the next request
    // Those waiting for the next read see the copy gone (an `open` waits for the new one).
    auto waiters = std::move(waiting_);
    waiting_.clear();
    for (auto& waiter : waiters)
      waiter(true);
  }

  void remove(const std::string& client, bool abrupt) {
    if (holders_.remove(client))
      self_->send(presence_, presence_leave{client, presence_hold::document, abrupt});
  }

  caf::actor self_actor() const { return caf::actor_cast<caf::actor>(self_); }

  companion* self_;
  std::string name_;
  document_settings settings_;
  caf::actor presence_;
  cluster_hub& hub_;
  core::metrics& metrics_;
  cluster::document_keys keys_;
  std::string cid_prefix_; ///< unique to this actor: its commits' ids start with it

  state state_ = state::idle;
  bool subscribed_ = false;
  std::optional<core::document_sequencer> mirror_; ///< the copy of Redis's document, when ready
  std::map<std::uint64_t, cluster::document_entry> pending_; ///< revisions above the copy's
  std::vector<cluster::published_op> early_;                 ///< the channel's, while loading
  bool reading_ = false;
  std::vector<read_waiter> waiting_; ///< for the next read
  std::uint64_t copies_ = 0;         ///< counts the copies reset, so stale reads are ignored
  std::string last_error_;

  member_list holders_;
  bool check_scheduled_ = false;
  std::deque<task> queue_;
  bool busy_ = false;   ///< an open or an operation is waiting for Redis
  std::string opening_; ///< the client whose `open` is waiting, if one is
  std::optional<commit> commit_;
  std::uint64_t gens_ = 0;
};

} // namespace

caf::actor spawn_cluster_document(caf::actor_system& system, boost::asio::any_io_executor strand,
                                  std::string name, const document_settings& settings,
                                  caf::actor presence, cluster_hub& hub, core::metrics& metrics) {
  return spawn_on_strand(system, std::move(strand), [&](companion* self) {
    auto actor = std::make_shared<cluster_document>(self, std::move(name), settings,
                                                    std::move(presence), hub, metrics);
    // Every handler ends by starting what can start.
    return caf::behavior{
        [actor](doc_open& open) {
          actor->open(open);
          actor->pump();
        },
        [actor](doc_op& op) {
          actor->submit(op);
          actor->pump();
        },
        [actor](doc_close& close) {
          actor->close(close);
          actor->pump();
        },
        [actor](const room_leave& leave) {
          actor->leave(leave);
          actor->pump();
        },
        [actor](joined_atom, const std::string& client) { actor->joined(client); },
        [actor](redis_continuation& c) {
          c.run();
          actor->pump();
        },
        [actor](const redis_pubsub& message) {
          actor->on_pubsub(message);
          actor->pump();
        },
        [actor](const redis_link_event& e) {
          actor->on_link_event(e);
          actor->pump();
        },
        [actor](check_atom) {
          actor->on_check();
          actor->pump();
        },
        [actor](deadline_atom, std::uint64_t gen) {
          actor->on_deadline(gen);
          actor->pump();
        },
        [actor, self](stop_atom) {
          actor->stop(caf::actor_cast<caf::actor>(self->current_sender()));
          actor->pump();
        },
    };
  });
}

} // namespace troupe::actors
