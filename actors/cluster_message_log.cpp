#include "actors/cluster_message_log.hpp"

#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <limits>
#include <map>
#include <vector>

#include "actors/cluster_hub.hpp"
#include "actors/member_list.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "cluster/publish_script.hpp"
#include "core/history_log.hpp"
#include "core/metrics.hpp"
#include "core/ordered_delivery.hpp"
#include "protocol/codec.hpp"

namespace troupe::actors {

namespace {

using check_atom = caf::atom_constant<caf::atom("check")>;

/// How often a room with local subscribers checks its top seq: a lost tail (the last
/// messages before a quiet spell) is found within this even if nothing follows it.
constexpr std::chrono::seconds check_interval{2};

std::string redis_error(std::error_code ec) { return "Redis is unreachable: " + ec.message(); }

class cluster_log {
public:
  cluster_log(companion* self, std::string name, const message_log_settings& settings,
              caf::actor presence, cluster_hub& hub, core::metrics& metrics)
      : self_(self), name_(std::move(name)), settings_(settings), presence_(std::move(presence)),
        hub_(hub), metrics_(metrics), keys_(cluster::keys_for(name_)),
        epoch_candidate_(core::new_epoch()) {}

  // Requests ---------------------------------------------------------------------------------

  /// Channel first, then the read: everything published after the subscription is confirmed
  /// reaches this node by pub/sub, everything before it is in the read.
  void subscribe(room_sub& sub) {
    if (channel_ == channel_state::live && delivery_.seeded()) return start_sub(std::move(sub));
    waiting_.push_back(std::move(sub));
    if (channel_ == channel_state::none) {
      channel_ = channel_state::subscribing;
      hub_.subscribe(keys_.channel, self(),
                     [this, generation = ++channel_generation_](std::error_code ec) {
                       // The answer to a subscription released since is not this one's.
                       if (generation == channel_generation_) channel_confirmed(ec);
                     });
    } else if (channel_ == channel_state::live) {
      seed();
    }
  }

  void unsubscribe(room_unsub& unsub) {
    remove(unsub.from.client, false);
    unsub.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_unsubscribed(out, unsub.request.id, name_);
    }));
  }

  void leave(const room_leave& leave) { remove(leave.client, leave.abrupt); }

  void joined(const std::string& client) { members_.activate(client); }

  /// One script in Redis sequences, stores and publishes; its reply is the ack.
  void publish(room_pub& pub) {
    const auto& request = pub.request;
    const auto call = cluster::publish_call(
        keys_, {epoch_candidate_, settings_.history, pub.from.user,
                request.key ? std::string_view(*request.key) : std::string_view(), request.data});
    hub_.eval(self(), cluster::publish_script(), call.keys, call.args,
              [this, to = std::move(pub.from), id = request.id](std::error_code ec,
                                                                cluster::redis_reply reply) {
                if (ec) return unavailable(to, id, redis_error(ec));
                cluster::publish_result result;
                try {
                  result = cluster::decode_publish_reply(reply);
                } catch (const cluster::bad_reply& e) {
                  return unavailable(to, id, std::string("Redis refused the publish: ") + e.what());
                }
                used_candidate(result.epoch);
                if (!result.duplicate) core::metrics::add(metrics_.messages_published);
                acknowledge(to, id, result.seq);
              });
  }

  void history(room_history& history) {
    const auto& request = history.request;
    const std::uint32_t limit = request.limit == 0 || request.limit > protocol::max_history_limit
                                    ? protocol::max_history_limit
                                    : request.limit;
    const auto call = cluster::read_call(keys_, request.since + 1, 0, limit);
    hub_.eval(self(), cluster::read_script(), call.keys, call.args,
              [this, to = std::move(history.from), id = request.id](std::error_code ec,
                                                                    cluster::redis_reply reply) {
                if (ec) return unavailable(to, id, redis_error(ec));
                try {
                  const auto read = cluster::decode_read(reply);
                  std::vector<protocol::frame_ptr> frames;
                  const auto payloads = push_payloads(read.entries, frames);
                  members_.reply(to, protocol::make_frame([&](protocol::frame_builder& out) {
                                   protocol::encode_history(out, id, name_, read.top.seq,
                                                            read.top.epoch, payloads);
                                 }));
                } catch (const cluster::bad_reply& e) {
                  unavailable(to, id, std::string("Redis: ") + e.what());
                }
              });
  }

  // From Redis -------------------------------------------------------------------------------

  void published(const redis_pubsub& message) {
    if (message.channel != keys_.channel) return;
    try {
      const auto p = cluster::decode_published(message.payload);
      apply(delivery_.on_message(p.message.seq, p.epoch, push_frame(p.message)));
    } catch (const cluster::bad_reply& e) {
      // Not ours to understand: the stream still has the message, which a repair reads.
      std::cerr << "troupe: cluster: room " << name_ << ": " << e.what() << std::endl;
    }
  }

  void link_changed(const redis_link_event& event) {
    using event_kind = cluster::redis_subscriber::event;
    if (event.event == event_kind::down) {
      // Pushes stall until the link is back: acks wait for nothing.
      release_acks(std::numeric_limits<std::uint64_t>::max());
    } else if (event.event == event_kind::resubscribed && delivery_.seeded()) {
      apply(delivery_.on_resubscribed());
    }
  }

  /// The periodic check while the room has local subscribers.
  void check() {
    check_scheduled_ = false;
    if (channel_ != channel_state::live) return;
    schedule_check();
    // Acks held for a delivery that has not come in a whole interval go out anyway.
    release_acks(ack_watermark_);
    ack_watermark_ = pending_acks_.empty() ? 0 : pending_acks_.rbegin()->first;
    if (!delivery_.seeded()) {
      if (!seeding_ && (members_.size() > 0 || !waiting_.empty())) seed();
      return;
    }
    const auto call = cluster::top_call(keys_);
    hub_.eval(self(), cluster::read_script(), call.keys, call.args,
              [this](std::error_code ec, cluster::redis_reply reply) {
                if (ec || !delivery_.seeded()) return;
                try {
                  const auto read = cluster::decode_read(reply);
                  apply(delivery_.on_top(read.top.epoch, read.top.seq));
                } catch (const cluster::bad_reply&) {}
              });
  }

  void stop(const caf::actor& directory) {
    release_acks(std::numeric_limits<std::uint64_t>::max());
    if (channel_ != channel_state::none) hub_.unsubscribe(keys_.channel, self());
    channel_ = channel_state::none;
    self_->send(directory, stopped_atom::value, name_);
    self_->quit();
  }

private:
  enum class channel_state { none, subscribing, live };

  caf::actor self() const { return caf::actor_cast<caf::actor>(self_); }

  /// A candidate that became the room's epoch is never proposed again: if Redis loses the
  /// room, the log that starts over must have an epoch of its own.
  void used_candidate(const std::string& epoch) {
    if (epoch == epoch_candidate_) epoch_candidate_ = core::new_epoch();
  }

  void channel_confirmed(std::error_code ec) {
    if (channel_ != channel_state::subscribing) return; // released meanwhile
    if (ec) {
      hub_.unsubscribe(keys_.channel, self());
      channel_ = channel_state::none;
      fail_waiting(redis_error(ec));
      return;
    }
    channel_ = channel_state::live;
    schedule_check();
    seed();
  }

  /// Reads the room's epoch and top (creating its epoch if it has none): from here on,
  /// every message above the top comes by pub/sub or by repair, in order.
  void seed() {
    if (seeding_) return;
    seeding_ = true;
    const auto call = cluster::newest_call(keys_, 0, epoch_candidate_);
    hub_.eval(
        self(), cluster::read_script(), call.keys, call.args,
        [this, generation = channel_generation_](std::error_code ec, cluster::redis_reply reply) {
          seeding_ = false;
          if (channel_ != channel_state::live) return;
          // Read before the current subscription was confirmed: read again.
          if (generation != channel_generation_) return seed();
          if (ec) return fail_waiting(redis_error(ec));
          cluster::room_read read;
          try {
            read = cluster::decode_read(reply);
          } catch (const cluster::bad_reply& e) {
            return fail_waiting(std::string("Redis: ") + e.what());
          }
          used_candidate(read.top.epoch);
          apply(delivery_.seed(read.top.epoch, read.top.seq));
          auto waiting = std::move(waiting_);
          waiting_.clear();
          for (auto& sub : waiting)
            start_sub(std::move(sub));
        });
  }

  /// The channel is live and delivery seeded. The subscriber joins the members now, so every
  /// push from the next seq on is held for it; the reply shows the log up to the seq
  /// delivered so far, read from the stream.
  void start_sub(room_sub sub) {
    const std::uint64_t delivered = delivery_.last_delivered();
    const auto& since = sub.request.since;
    const bool same_epoch = since && since->epoch == delivery_.epoch();
    if (same_epoch && since->seq > delivered) {
      // The client has seen more than this node has delivered yet (it came from a node
      // ahead of this one): wait until this node catches up, then recover it.
      catching_up_.push_back(std::move(sub));
      check_soon();
      return;
    }
    members_.add(sub.from);
    const bool try_recovery = same_epoch && since->seq <= delivered;
    // Recovery reads what follows `since`; otherwise the newest messages up to `delivered`.
    const std::uint64_t from = try_recovery ? since->seq + 1
                                            : (delivered > protocol::resync_message_count
                                                   ? delivered - protocol::resync_message_count + 1
                                                   : 1);
    read_for_sub(std::move(sub), delivered, from, try_recovery);
  }

  void read_for_sub(room_sub sub, std::uint64_t delivered, std::uint64_t from, bool recovery) {
    if (from > delivered) // nothing to read
      return reply_subscribed(sub, delivered, recovery, {});
    const auto call = cluster::read_call(keys_, from, delivered);
    hub_.eval(self(), cluster::read_script(), call.keys, call.args,
              [this, sub = std::move(sub), delivered, from,
               recovery](std::error_code ec, cluster::redis_reply reply) mutable {
                if (!members_.contains(sub.from.client)) return; // left meanwhile
                if (ec) {
                  remove(sub.from.client, false);
                  return unavailable(sub.from, sub.request.id, redis_error(ec));
                }
                try {
                  const auto read = cluster::decode_read(reply);
                  if (read.top.epoch != delivery_.epoch()) {
                    // The log was lost meanwhile: the reset that follows reaches this member.
                    return apply(delivery_.on_top(read.top.epoch, read.top.seq));
                  }
                  const bool complete = !read.entries.empty() && read.entries.front().seq == from &&
                                        read.entries.back().seq == delivered;
                  if (recovery && !complete) {
                    // Trimmed past `since`: the newest messages instead, recovered:false.
                    const std::uint64_t newest =
                        delivered > protocol::resync_message_count
                            ? delivered - protocol::resync_message_count + 1
                            : 1;
                    return read_for_sub(std::move(sub), delivered, newest, false);
                  }
                  reply_subscribed(sub, delivered, recovery, read.entries);
                } catch (const cluster::bad_reply& e) {
                  remove(sub.from.client, false);
                  unavailable(sub.from, sub.request.id, std::string("Redis: ") + e.what());
                }
              });
  }

  void reply_subscribed(room_sub& sub, std::uint64_t seq, bool recovered,
                        const std::vector<cluster::room_message>& entries) {
    std::vector<protocol::frame_ptr> frames;
    const auto payloads = push_payloads(entries, frames);
    // Presence completes the reply (pseq, members) and sends it, then releases the pushes.
    self_->send(presence_, presence_join{std::move(sub.from), presence_hold::subscription,
                                         protocol::encode_subscribed_head(
                                             sub.request.id, name_, seq, delivery_.epoch(),
                                             recovered, protocol::encode_array(payloads))});
  }

  void apply(core::delivery_actions actions) {
    for (auto& message : actions.deliver) {
      members_.send(message.payload);
      core::metrics::add(metrics_.deliveries, members_.size());
    }
    if (delivery_.seeded()) release_acks(delivery_.last_delivered());
    if (!actions.deliver.empty()) resume_catching_up();
    if (actions.reset != core::reset_reason::none) {
      reset_members(actions.reset == core::reset_reason::epoch_changed
                        ? "the room's log was lost (Redis restarted without its data)"
                        : "this node fell behind the room's kept history");
      seed();
    }
    if (actions.repair) repair(*actions.repair);
  }

  void repair(const core::repair_request& request) {
    const auto call = cluster::read_call(keys_, request.from, request.to);
    hub_.eval(self(), cluster::read_script(), call.keys, call.args,
              [this, ticket = request.ticket](std::error_code ec, cluster::redis_reply reply) {
                if (ec) return delivery_.on_repair_failed(ticket);
                try {
                  const auto read = cluster::decode_read(reply);
                  core::stream_read answer{read.top.epoch, read.top.seq, {}};
                  answer.entries.reserve(read.entries.size());
                  for (const auto& entry : read.entries)
                    answer.entries.push_back({entry.seq, push_frame(entry)});
                  apply(delivery_.on_repair(ticket, std::move(answer)));
                } catch (const cluster::bad_reply&) {
                  delivery_.on_repair_failed(ticket);
                }
              });
  }

  /// Every member holds state this node can no longer continue: each is told to
  /// reconnect and recover (4500); they leave as their connections end.
  void reset_members(const std::string& reason) {
    release_acks(std::numeric_limits<std::uint64_t>::max());
    members_.for_each([&](const std::string&, const sink_ptr& sink) { sink->reset(reason); });
    for (auto& sub : catching_up_)
      sub.from.sink->reset(reason);
    catching_up_.clear();
  }

  void resume_catching_up() {
    if (catching_up_.empty()) return;
    auto waiting = std::move(catching_up_);
    catching_up_.clear();
    for (auto& sub : waiting)
      start_sub(std::move(sub)); // those still ahead wait again
  }

  /// The author's ack follows the push to this node's subscribers (as on one node), so it
  /// waits while this node has yet to deliver its seq.
  void acknowledge(const peer_ref& to, protocol::request_id id, std::uint64_t seq) {
    if (channel_ == channel_state::live && delivery_.seeded() && seq > delivery_.last_delivered() &&
        members_.size() > 0) {
      pending_acks_[seq].push_back({to, id});
      return;
    }
    ack(to, id, seq);
  }

  void release_acks(std::uint64_t through) {
    while (!pending_acks_.empty() && pending_acks_.begin()->first <= through) {
      auto node = pending_acks_.extract(pending_acks_.begin());
      for (auto& [to, id] : node.mapped())
        ack(to, id, node.key());
    }
  }

  void ack(const peer_ref& to, protocol::request_id id, std::uint64_t seq) {
    members_.reply(to, protocol::make_frame([&](protocol::frame_builder& out) {
                     protocol::encode_ack(out, id, name_, seq);
                   }));
  }

  void unavailable(const peer_ref& to, protocol::request_id id, const std::string& reason) {
    members_.reply(to, protocol::make_frame([&](protocol::frame_builder& out) {
                     protocol::encode_error(out, id, protocol::error_code::unavailable, reason);
                   }));
  }

  void fail_waiting(const std::string& reason) {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& sub : waiting)
      unavailable(sub.from, sub.request.id, reason);
  }

  void remove(const std::string& client, bool abrupt) {
    // A subscriber still waiting for the channel or for this node to catch up goes too: it
    // must never join for a connection that has ended.
    auto ended = [&](const room_sub& sub) { return sub.from.client == client; };
    std::erase_if(waiting_, ended);
    std::erase_if(catching_up_, ended);
    if (members_.remove(client))
      self_->send(presence_, presence_leave{client, presence_hold::subscription, abrupt});
    release_channel_if_unused();
  }

  /// No local subscriber is left: the node stops listening to the room (and forgets where
  /// it was: the next subscriber seeds again).
  void release_channel_if_unused() {
    if (members_.size() > 0 || !waiting_.empty() || !catching_up_.empty()) return;
    if (channel_ == channel_state::none) return;
    hub_.unsubscribe(keys_.channel, self());
    channel_ = channel_state::none;
    delivery_ = core::ordered_delivery();
    release_acks(std::numeric_limits<std::uint64_t>::max());
  }

  protocol::frame_ptr push_frame(const cluster::room_message& message) const {
    return protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_msg(out, name_, message.seq, message.user, message.data, message.ts,
                           message.key);
    });
  }

  /// The `msg` maps of `entries`, as the replies list them; `frames` keeps them alive.
  std::vector<std::string_view> push_payloads(const std::vector<cluster::room_message>& entries,
                                              std::vector<protocol::frame_ptr>& frames) const {
    std::vector<std::string_view> payloads;
    frames.reserve(entries.size());
    payloads.reserve(entries.size());
    for (const auto& entry : entries) {
      frames.push_back(push_frame(entry));
      payloads.push_back(frames.back()->payload());
    }
    return payloads;
  }

  void schedule_check() {
    if (check_scheduled_) return;
    check_scheduled_ = true;
    self_->delayed_send(self_, check_interval, check_atom::value);
  }

  /// A subscriber waits for this node to catch up: check the top now rather than in 2 s.
  /// A subscriber whose `since` is past what Redis holds (its log was lost and restarted
  /// under the same name) cannot be recovered: it is answered afresh.
  void check_soon() {
    const auto call = cluster::top_call(keys_);
    hub_.eval(self(), cluster::read_script(), call.keys, call.args,
              [this](std::error_code ec, cluster::redis_reply reply) {
                if (ec || !delivery_.seeded()) return fail_catching_up(ec);
                try {
                  const auto read = cluster::decode_read(reply);
                  for (auto& sub : catching_up_)
                    if (read.top.epoch != sub.request.since->epoch ||
                        sub.request.since->seq > read.top.seq)
                      sub.request.since.reset();
                  apply(delivery_.on_top(read.top.epoch, read.top.seq));
                  resume_catching_up();
                } catch (const cluster::bad_reply&) {}
              });
  }

  void fail_catching_up(std::error_code ec) {
    if (!ec) return;
    auto waiting = std::move(catching_up_);
    catching_up_.clear();
    for (auto& sub : waiting)
      unavailable(sub.from, sub.request.id, redis_error(ec));
  }

  companion* self_;
  std::string name_;
  message_log_settings settings_;
  caf::actor presence_;
  cluster_hub& hub_;
  core::metrics& metrics_;
  cluster::room_keys keys_;
  std::string epoch_candidate_; ///< the epoch this node proposes if the room has none

  member_list members_;
  core::ordered_delivery delivery_;
  channel_state channel_ = channel_state::none;
  std::uint64_t channel_generation_ = 0; ///< tells a released subscription's answer apart
  bool seeding_ = false;
  bool check_scheduled_ = false;
  std::vector<room_sub> waiting_;     ///< subscribers waiting for the channel and the seed
  std::vector<room_sub> catching_up_; ///< subscribers ahead of this node's deliveries
  std::map<std::uint64_t, std::vector<std::pair<peer_ref, protocol::request_id>>> pending_acks_;
  std::uint64_t ack_watermark_ = 0; ///< acks pending at the last check go out at the next
};

} // namespace

caf::actor spawn_cluster_message_log(caf::actor_system& system, boost::asio::any_io_executor strand,
                                     std::string name, const message_log_settings& settings,
                                     caf::actor presence, cluster_hub& hub,
                                     core::metrics& metrics) {
  return spawn_on_strand(system, std::move(strand), [&](companion* self) {
    auto state = std::make_shared<cluster_log>(self, std::move(name), settings, std::move(presence),
                                               hub, metrics);
    // Redis's answers run in this actor, on its strand, like any message: no locks.
    return caf::behavior{
        [state](room_sub& sub) { state->subscribe(sub); },
        [state](joined_atom, const std::string& client) { state->joined(client); },
        [state](room_unsub& unsub) { state->unsubscribe(unsub); },
        [state](room_pub& pub) { state->publish(pub); },
        [state](room_history& history) { state->history(history); },
        [state](const room_leave& leave) { state->leave(leave); },
        [](redis_continuation& answer) { answer.run(); },
        [state](const redis_pubsub& message) { state->published(message); },
        [state](const redis_link_event& event) { state->link_changed(event); },
        [state](check_atom) { state->check(); },
        [state, self](stop_atom) {
          state->stop(caf::actor_cast<caf::actor>(self->current_sender()));
        },
    };
  });
}

} // namespace troupe::actors
