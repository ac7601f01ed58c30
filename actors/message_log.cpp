#include "actors/message_log.hpp"

#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <chrono>
#include <optional>
#include <limits>
#include <vector>

#include "actors/commit_gate.hpp"
#include "actors/member_list.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/history_log.hpp"
#include "core/metrics.hpp"
#include "store/store.hpp"
#include "protocol/codec.hpp"

namespace troupe::actors {

namespace {

class room {
public:
  room(companion* self, std::string name, const message_log_settings& settings,
       store::loaded<core::history_log> loaded, caf::actor presence, caf::actor storage,
       store::room_store& store, core::metrics& metrics)
      : self_(self), name_(std::move(name)), settings_(settings), presence_(std::move(presence)),
        store_(store), metrics_(metrics),
        gate_(self, std::move(storage), name_, loaded.ok() ? loaded.state->epoch() : "",
              [this] { reload(); }) {
    take_loaded(std::move(loaded), log_, load_error_, metrics_);
  }

  void subscribe(room_sub& sub) {
    if (refused(sub.from, sub.request.id)) return;
    expire();
    const auto& since = sub.request.since;
    const bool recovered = since && since->epoch == log_->epoch() && log_->covers(since->seq);
    const auto msgs = recovered ? log_->after(since->seq, std::numeric_limits<std::size_t>::max())
                                : log_->newest(protocol::resync_message_count);
    // The presence actor completes the reply (pseq, members) and sends it; until it says
    // so, pushes for this member are held back so that none overtakes the reply.
    members_.add(sub.from); // subscribing again resynchronises; never listed twice
    send(presence_, presence_join{std::move(sub.from), presence_hold::subscription,
                                  protocol::encode_subscribed_head(
                                      sub.request.id, name_, log_->seq(), log_->epoch(), recovered,
                                      protocol::encode_array(msgs))});
  }

  void joined(const std::string& client) { members_.activate(client); }

  void unsubscribe(room_unsub& unsub) {
    remove(unsub.from.client, false);
    unsub.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_unsubscribed(out, unsub.request.id, name_);
    }));
  }

  void publish(room_pub& pub) {
    if (refused(pub.from, pub.request.id)) return;
    const auto& request = pub.request;
    if (request.key) {
      if (auto seq = log_->find_key(*request.key)) {
        // A resubmission: same seq, not delivered again, acknowledged once the first is
        // committed.
        gate_.after_pending([this, to = std::move(pub.from), id = request.id,
                             seq = *seq](const std::string& error) {
          error.empty() ? ack(to, id, seq) : unavailable(to, id, error);
        });
        return;
      }
    }
    // A commit has run past --store-stall (a stalled disk): refused before it is sequenced,
    // so nothing is applied and nothing is lost; the publisher retries with its key.
    if (gate_.durable()) {
      if (const auto why = metrics_.commits.refuse_write(); !why.empty())
        return unavailable(pub.from, request.id, why);
    }
    expire();
    const std::uint64_t seq = log_->seq() + 1;
    const std::uint64_t ts = core::now_ms();
    auto push = protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_msg(out, name_, seq, pub.from.user, request.data, ts,
                           request.key.value_or(std::string()));
    });
    log_->append({seq, request.key.value_or(std::string()), push, ts});
    gate_.commit(
        [&](store::room_writes& writes) {
          writes.messages.push_back(log_->messages().back());
          // Trimmed 64 at a time: a delete per commit rewrites pages even for one message,
          // and a load reads only the newest --history anyway.
          writes.keep_messages_from = log_->first_kept() & ~std::uint64_t{63};
        },
        [this, to = std::move(pub.from), id = request.id, seq,
         push = std::move(push)](const std::string& error) {
          if (!error.empty()) return unavailable(to, id, error);
          // Fanned out before the ack: whoever has seen an ack knows every subscriber has
          // the message on its way.
          members_.send(push);
          ack(to, id, seq);
          core::metrics::add(metrics_.messages_published);
          core::metrics::add(metrics_.deliveries, members_.size());
        });
  }

  void history(room_history& history) {
    if (refused(history.from, history.request.id)) return;
    expire();
    const auto msgs = log_->after(history.request.since, history.request.limit);
    members_.reply(history.from, protocol::make_frame([&](protocol::frame_builder& out) {
                     protocol::encode_history(out, history.request.id, name_, log_->seq(),
                                              log_->epoch(), msgs);
                   }));
  }

  void leave(const room_leave& leave) { remove(leave.client, leave.abrupt); }

  /// Hands the log to the store so the next actor of this room continues it (a durable
  /// store has it already), and ends.
  void stop(const caf::actor& directory) {
    if (log_) store_.keep_log(name_, std::move(*log_));
    self_->send(directory, stopped_atom::value, name_);
    self_->quit();
  }

  commit_gate& gate() noexcept { return gate_; }

private:
  template <class Message>
  void send(const caf::actor& to, Message&& message) {
    self_->send(to, std::forward<Message>(message));
  }

  /// A failed commit took back what was applied since the last one: start again from
  /// what the store holds (nothing of it was acknowledged or pushed).
  void reload() {
    take_loaded(store_.load_log(name_, settings_.history), log_, load_error_, metrics_);
  }

  /// A room whose log could not be loaded answers every request with `unavailable`.
  bool refused(const peer_ref& to, protocol::request_id id) {
    if (log_) return false;
    unavailable(to, id, load_error_);
    return true;
  }

  void unavailable(const peer_ref& to, protocol::request_id id, const std::string& reason) {
    members_.reply(to, protocol::make_frame([&](protocol::frame_builder& out) {
                     protocol::encode_error(out, id, protocol::error_code::unavailable, reason);
                   }));
  }

  /// Retention by age, if set: forgets what is too old before the log is read or grows.
  void expire() {
    if (settings_.history_age.count() > 0)
      log_->expire(core::now_ms() - static_cast<std::uint64_t>(settings_.history_age.count()));
  }

  void ack(const peer_ref& to, protocol::request_id id, std::uint64_t seq) {
    members_.reply(to, protocol::make_frame([&](protocol::frame_builder& out) {
                     protocol::encode_ack(out, id, name_, seq);
                   }));
  }

  void remove(const std::string& client, bool abrupt) {
    if (members_.remove(client)) {
      send(presence_, presence_leave{client, presence_hold::subscription, abrupt});
    }
  }

  companion* self_;
  std::string name_;
  message_log_settings settings_;
  std::optional<core::history_log> log_; ///< none: it could not be loaded
  std::string load_error_;
  caf::actor presence_;
  store::room_store& store_;
  core::metrics& metrics_;
  member_list members_;
  commit_gate gate_;
};

} // namespace

caf::actor spawn_message_log(caf::actor_system& system, boost::asio::any_io_executor strand,
                             std::string name, const message_log_settings& settings,
                             caf::actor presence, caf::actor storage, store::room_store& store,
                             core::metrics& metrics) {
  auto loaded = store.load_log(name, settings.history);
  return spawn_on_strand(system, std::move(strand), [&](companion* self) {
    auto state = std::make_shared<room>(self, std::move(name), settings, std::move(loaded),
                                        std::move(presence), std::move(storage), store, metrics);
    // Writers go ahead; readers (and the end) wait until nothing uncommitted is left.
    return caf::behavior{
        [state](room_sub& sub) {
          state->gate().admit(true,
                              [state, sub = std::move(sub)]() mutable { state->subscribe(sub); });
        },
        [state](joined_atom, const std::string& client) { state->joined(client); },
        [state](room_unsub& unsub) {
          state->gate().admit(
              false, [state, unsub = std::move(unsub)]() mutable { state->unsubscribe(unsub); });
        },
        [state](room_pub& pub) {
          state->gate().admit(false,
                              [state, pub = std::move(pub)]() mutable { state->publish(pub); });
        },
        [state](room_history& history) {
          state->gate().admit(
              true, [state, history = std::move(history)]() mutable { state->history(history); });
        },
        [state](const room_leave& leave) {
          state->gate().admit(false, [state, leave] { state->leave(leave); });
        },
        [state](const store_done& done) { state->gate().committed(done); },
        [state, self](stop_atom) {
          auto directory = caf::actor_cast<caf::actor>(self->current_sender());
          state->gate().admit(true, [state, directory] { state->stop(directory); });
        },
    };
  });
}

} // namespace troupe::actors
