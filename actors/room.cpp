#include "actors/room.hpp"

#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <chrono>
#include <limits>
#include <vector>

#include "actors/member_list.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/history_log.hpp"
#include "core/metrics.hpp"
#include "core/store.hpp"
#include "protocol/codec.hpp"

namespace troupe::actors {

namespace {

std::uint64_t now_ms() {
  using namespace std::chrono;
  return static_cast<std::uint64_t>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

class room {
public:
  room(companion* self, std::string name, core::history_log log, caf::actor presence,
       core::store& store, core::metrics& metrics)
      : self_(self), name_(std::move(name)), log_(std::move(log)),
        presence_(std::move(presence)), store_(store), metrics_(metrics) {}

  void subscribe(room_sub& sub) {
    const auto& since = sub.request.since;
    const bool recovered =
        since && since->epoch == log_.epoch() && log_.covers(since->seq);
    const auto msgs = recovered ? log_.after(since->seq, std::numeric_limits<std::size_t>::max())
                                : log_.newest(protocol::resync_message_count);
    // The presence actor completes the reply (pseq, members) and sends it; until it says
    // so, pushes for this member are held back so that none overtakes the reply.
    members_.add(sub.from); // subscribing again resynchronises; never listed twice
    send(presence_, presence_join{std::move(sub.from), presence_hold::subscription,
                                  protocol::encode_subscribed_head(
                                      sub.request.id, name_, log_.seq(), log_.epoch(),
                                      recovered, protocol::encode_array(msgs))});
  }

  void joined(const std::string& client) { members_.activate(client); }

  void unsubscribe(room_unsub& unsub) {
    remove(unsub.from.client, false);
    unsub.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_unsubscribed(out, unsub.request.id, name_);
    }));
  }

  void publish(room_pub& pub) {
    const auto& request = pub.request;
    if (request.key) {
      if (auto seq = log_.find_key(*request.key)) {
        ack(pub.from, request.id, *seq); // a resubmission: same seq, not delivered again
        return;
      }
    }
    const std::uint64_t seq = log_.seq() + 1;
    auto push = protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_msg(out, name_, seq, pub.from.user, request.data, now_ms(),
                           request.key.value_or(std::string()));
    });
    log_.append({seq, request.key.value_or(std::string()), push});
    ack(pub.from, request.id, seq);
    members_.send(push);
    core::metrics::add(metrics_.messages_published);
    core::metrics::add(metrics_.deliveries, members_.size());
  }

  void history(room_history& history) {
    const auto msgs = log_.after(history.request.since, history.request.limit);
    members_.reply(history.from, protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_history(out, history.request.id, name_, log_.seq(), log_.epoch(), msgs);
    }));
  }

  void leave(const room_leave& leave) { remove(leave.client, leave.abrupt); }

  /// Hands the log to the store so the next actor of this room continues it, and ends.
  void stop() {
    store_.keep_log(name_, std::move(log_));
    self_->send(caf::actor_cast<caf::actor>(self_->current_sender()), stopped_atom::value, name_);
    self_->quit();
  }

private:
  template <class Message> void send(const caf::actor& to, Message&& message) {
    self_->send(to, std::forward<Message>(message));
  }

  void ack(const peer_ref& to, protocol::request_id id, std::uint64_t seq) {
    members_.reply(to, protocol::make_frame(
        [&](protocol::frame_builder& out) { protocol::encode_ack(out, id, name_, seq); }));
  }

  void remove(const std::string& client, bool abrupt) {
    if (members_.remove(client)) {
      send(presence_, presence_leave{client, presence_hold::subscription, abrupt});
    }
  }

  companion* self_;
  std::string name_;
  core::history_log log_;
  caf::actor presence_;
  core::store& store_;
  core::metrics& metrics_;
  member_list members_;
};

} // namespace

caf::actor spawn_room(caf::actor_system& system, boost::asio::any_io_executor strand,
                      std::string name, const room_settings& settings, caf::actor presence,
                      core::store& store, core::metrics& metrics) {
  auto log = store.take_log(name);
  if (!log)
    log.emplace(settings.history, core::new_epoch());
  else if (log->capacity() != settings.history)
    log.emplace(settings.history, log->epoch(), log->seq()); // retention changed: keep position
  return spawn_on_strand(system, std::move(strand), [&](companion* self) {
    auto state = std::make_shared<room>(self, std::move(name), std::move(*log),
                                        std::move(presence), store, metrics);
    return caf::behavior{
        [state](room_sub& sub) { state->subscribe(sub); },
        [state](joined_atom, const std::string& client) { state->joined(client); },
        [state](room_unsub& unsub) { state->unsubscribe(unsub); },
        [state](room_pub& pub) { state->publish(pub); },
        [state](room_history& history) { state->history(history); },
        [state](const room_leave& leave) { state->leave(leave); },
        [state](stop_atom) { state->stop(); },
    };
  });
}

} // namespace troupe::actors
