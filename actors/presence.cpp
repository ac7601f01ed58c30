#include "actors/presence.hpp"

#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <unordered_map>

#include "actors/backend.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "core/presence_list.hpp"
#include "protocol/codec.hpp"

namespace troupe::actors {

namespace {

class presence {
public:
  presence(companion* self, std::string room, const presence_settings& settings,
           backend* app_backend)
      : self_(self), room_(std::move(room)), settings_(settings), backend_(app_backend) {}

  void join(presence_join& join) {
    const std::string& client = join.who.client;
    // Webhooks count users, not tabs: a user still listed (another tab, or a vanished entry
    // in its grace period, replaced below) is not added again.
    if (!members_.contains(client)) {
      if (members_.empty()) emit("room_occupied", {}, {});
      if (!has_user(join.who.user)) emit("member_added", join.who.user, client);
    }
    // The same user back within the grace period: its vanished entry leaves in the same
    // diff as the new one joins, so a view grouped by user never flickers.
    for (auto it = members_.begin(); it != members_.end();) {
      if (!it->second.sink && it->second.user == join.who.user && it->first != client) {
        list_.remove(it->first);
        it = members_.erase(it);
      } else {
        ++it;
      }
    }
    auto& member = members_[client];
    member.sink = join.who.sink;
    member.user = join.who.user;
    member.holds |= static_cast<std::uint8_t>(join.hold);
    member.grace_generation = 0;
    if (!list_.contains(client))
      list_.upsert({client, join.who.user, join.who.name, join.who.info, {}});
    schedule_flush();
    const std::string snapshot = snapshot_for(client);
    member.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      out.write(join.reply_head);
      protocol::encode_members_tail(out, list_.pseq(), snapshot);
    }));
    self_->send(caf::actor_cast<caf::actor>(self_->current_sender()), joined_atom::value, client);
  }

  void leave(const presence_leave& leave) {
    auto it = members_.find(leave.client);
    if (it == members_.end() || !it->second.sink) return;
    auto& member = it->second;
    member.holds &= static_cast<std::uint8_t>(~static_cast<std::uint8_t>(leave.hold));
    if (member.holds != 0) return; // still here through its other hold
    stop_typing(leave.client, member);
    if (leave.abrupt && settings_.grace.count() > 0) {
      member.sink = nullptr; // listed, but sent nothing, until the grace period ends
      member.grace_generation = ++generation_;
      self_->delayed_send(self_, settings_.grace, grace_atom::value, leave.client,
                          member.grace_generation);
      return;
    }
    remove(it);
  }

  void grace_over(const std::string& client, std::uint64_t generation) {
    auto it = members_.find(client);
    if (it != members_.end() && !it->second.sink && it->second.grace_generation == generation)
      remove(it);
  }

  void get(presence_get& get) {
    const std::string snapshot = snapshot_for(get.from.client);
    get.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_presence(out, get.request.id, room_, list_.pseq(), snapshot);
    }));
  }

  void set(presence_set& set) {
    if (!active(set.from.client)) {
      set.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
        protocol::encode_error(out, set.request.id, protocol::error_code::not_subscribed,
                               "state belongs to a member: subscribe or open first");
      }));
      return;
    }
    list_.upsert({set.from.client, set.from.user, set.from.name, set.from.info,
                  std::move(set.request.state)});
    schedule_flush();
    set.from.sink->send(protocol::make_frame(
        [&](protocol::frame_builder& out) { protocol::encode_ok(out, set.request.id); }));
  }

  void typing(presence_typing& typing) {
    auto it = members_.find(typing.from.client);
    if (it == members_.end() || !it->second.sink) {
      typing.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
        protocol::encode_error(out, 0, protocol::error_code::not_subscribed,
                               "typing in " + room_ + " needs a subscription");
      }));
      return;
    }
    auto& member = it->second;
    if (!typing.request.on) return stop_typing(it->first, member);
    if (!member.typing) {
      member.typing = true;
      fan_out(typing_frame(it->first, member.user, true), it->first);
    }
    // Each `on` refreshes the lapse; only changes are sent to the others.
    member.typing_generation = ++generation_;
    self_->delayed_send(self_, settings_.typing_lapse, lapse_atom::value, it->first,
                        member.typing_generation);
  }

  void typing_lapsed(const std::string& client, std::uint64_t generation) {
    auto it = members_.find(client);
    if (it != members_.end() && it->second.typing && it->second.typing_generation == generation)
      stop_typing(client, it->second);
  }

  void flush() {
    flush_scheduled_ = false;
    auto fresh = std::exchange(fresh_, {});
    auto diff = list_.take_diff();
    if (!diff) return;
    // `own`: a reader whose snapshot already held its own pending arrival as `own->second`.
    // Its diff leaves that arrival out, or, if its entry changed since, shows the change
    // against what it was shown.
    auto encode = [&](const std::pair<const std::string, std::string>* own) {
      std::vector<std::string_view> joins;
      joins.reserve(diff->joins.size());
      auto leaves = diff->leaves;
      for (const auto& [client, entry] : diff->joins) {
        if (own && client == own->first) {
          if (entry == own->second) continue;
          leaves.push_back(own->second);
        }
        joins.push_back(entry);
      }
      return protocol::make_frame([&](protocol::frame_builder& out) {
        protocol::encode_pdiff(out, room_, diff->pseq, joins, leaves);
      });
    };
    const auto full = encode(nullptr);
    for (auto& [client, member] : members_) {
      if (!member.sink) continue;
      // A member that arrived in this window already holds its own entry: the diff it
      // gets (it needs this pseq) leaves that arrival out.
      auto own = fresh.find(client);
      member.sink->send(own == fresh.end() ? full : encode(&*own));
    }
  }

private:
  struct member {
    sink_ptr sink; ///< null while its connection is gone and it waits out the grace period
    std::string user;
    std::uint8_t holds = 0;
    bool typing = false;
    std::uint64_t typing_generation = 0;
    std::uint64_t grace_generation = 0;
  };
  using member_map = std::unordered_map<std::string, member>;

  /// Listed, and its connection is here (not waiting out the grace period).
  bool active(const std::string& client) const {
    auto it = members_.find(client);
    return it != members_.end() && it->second.sink && list_.contains(client);
  }

  /// The list as of the last diff, and the reader's own entry if its arrival is still
  /// pending: the contract lists a subscriber in its own reply. Such a reader is `fresh`:
  /// the next diff is sent to it without that arrival.
  std::string snapshot_for(const std::string& client) {
    const std::string* own = list_.sealed(client) ? nullptr : list_.encoded(client);
    if (own) fresh_.insert_or_assign(client, *own);
    return list_.encoded_snapshot(own);
  }

  void remove(member_map::iterator it) {
    list_.remove(it->first);
    const std::string user = it->second.user;
    const std::string client = it->first;
    members_.erase(it);
    schedule_flush();
    if (!has_user(user)) emit("member_removed", user, client);
    if (members_.empty()) emit("room_vacated", {}, {});
  }

  bool has_user(const std::string& user) const {
    for (const auto& [client, member] : members_)
      if (member.user == user) return true;
    return false;
  }

  void emit(const char* name, std::string user, std::string client) {
    if (!backend_) return;
    backend_->emit({name, room_, std::move(user), std::move(client), {}});
  }

  void stop_typing(const std::string& client, member& member) {
    if (!member.typing) return;
    member.typing = false;
    ++member.typing_generation;
    fan_out(typing_frame(client, member.user, false), client);
  }

  protocol::frame_ptr typing_frame(const std::string& client, const std::string& user, bool on) {
    return protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_typing(out, room_, user, client, on);
    });
  }

  void fan_out(const protocol::frame_ptr& frame, const std::string& except) {
    for (auto& [client, member] : members_)
      if (member.sink && client != except) member.sink->send(frame);
  }

  void schedule_flush() {
    if (flush_scheduled_) return;
    flush_scheduled_ = true;
    self_->delayed_send(self_, settings_.window, flush_atom::value);
  }

  companion* self_;
  std::string room_;
  presence_settings settings_;
  backend* backend_; // null: no webhooks
  core::presence_list list_;
  member_map members_;
  // Readers whose snapshot included their own pending arrival, with that entry.
  std::unordered_map<std::string, std::string> fresh_;
  bool flush_scheduled_ = false;
  std::uint64_t generation_ = 0; // tells current timers from stale ones
};

} // namespace

caf::actor spawn_presence(caf::actor_system& system, boost::asio::any_io_executor strand,
                          std::string room, const presence_settings& settings,
                          backend* app_backend) {
  return spawn_on_strand(system, std::move(strand), [&](companion* self) {
    auto state = std::make_shared<presence>(self, std::move(room), settings, app_backend);
    return caf::behavior{
        [state](presence_join& join) { state->join(join); },
        [state](const presence_leave& leave) { state->leave(leave); },
        [state](presence_get& get) { state->get(get); },
        [state](presence_set& set) { state->set(set); },
        [state](presence_typing& typing) { state->typing(typing); },
        [state](flush_atom) { state->flush(); },
        [state](grace_atom, const std::string& client, std::uint64_t generation) {
          state->grace_over(client, generation);
        },
        [state](lapse_atom, const std::string& client, std::uint64_t generation) {
          state->typing_lapsed(client, generation);
        },
        [self](stop_atom) { self->quit(); },
    };
  });
}

} // namespace troupe::actors
