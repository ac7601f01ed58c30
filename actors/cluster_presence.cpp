#include "actors/cluster_presence.hpp"

#include "actors/backend.hpp"

#include <caf/actor_companion.hpp>
#include <caf/all.hpp>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "actors/cluster_hub.hpp"
#include "actors/messages.hpp"
#include "actors/strand_actor.hpp"
#include "cluster/presence_script.hpp"
#include "core/presence_list.hpp"
#include "protocol/codec.hpp"
#include "protocol/string_sink.hpp"

// One presence list per room for the whole cluster, kept in Redis (cluster/scripts/
// presence.lua): this actor writes its node's changes, batched per coalescing window, and
// mirrors the list from the room's diff channel in pseq order. The mirror is what members on
// this node were shown; every diff they get is the change of the mirror it describes.
//
// Choices, where the contract leaves room:
// - The actor subscribes to the room's channels for its whole life (the directory spawns it
//   with the room and stops it when the room is evicted), not only while it has members.
// - A join is answered at once from the mirror and the member's own entry, as on one node;
//   the write follows within the window. If Redis fails, the answer still goes out (the
//   reply head is already encoded by the log) and the write is retried until Redis takes it:
//   presence catches up when Redis is back. pset is answered only once Redis took the change
//   (`unavailable` if it did not; the change is then retried, so it may still take effect).
// - Leaves (unsub, close, grace over) never fail: they are retried until Redis takes them.
// - A reconnect within the grace period replaces the old entry in one diff on any node: the
//   node of the vanished connection marks its entry in tr:{room}:pgrace, and a join of the
//   same user anywhere removes the marked entries in its own diff.
// - Typing goes over a channel of its own, never stored; each receiving node also lapses a
//   remote typer by itself (its node may have died), a little after the typer's node would.

namespace troupe::actors {

namespace {

using start_atom = caf::atom_constant<caf::atom("pstart")>;
using retry_atom = caf::atom_constant<caf::atom("pretry")>;
using remote_lapse_atom = caf::atom_constant<caf::atom("prlapse")>;
using change = cluster::presence_change;

// Write retries while Redis refuses them; short, so presence catches up soon after an outage.
constexpr std::chrono::milliseconds retry_interval{1000};
// A remote typer lapses here this much after its own node would have sent `off`.
constexpr std::chrono::milliseconds remote_lapse_margin{1000};

class cluster_presence {
public:
  cluster_presence(companion* self, std::string room, const presence_settings& settings,
                   cluster_hub& hub, backend* app_backend)
      : self_(self), room_(std::move(room)), settings_(settings), hub_(hub), backend_(app_backend),
        keys_(cluster::presence_keys_for(room_)) {}

  /// Subscribe first, then read the list: nothing published in between is missed (diffs
  /// arriving before the read are held and applied past its pseq).
  void start() {
    reading_ = true;
    schedule_retry();
    hub_.subscribe(keys_.typing, me());
    hub_.subscribe(keys_.channel, me(), [this](std::error_code) {
      // Read even if the subscription failed: the read fails too, or the list is right and
      // the `resubscribed` that follows repairs whatever the channel missed.
      reading_ = false;
      resync();
    });
  }

  void stop() {
    // The node stops serving the room: its entries leave now (best effort, the reply is not
    // awaited), or a dead node's sweep removes them.
    for (auto& [client, member] : members_)
      pending_[client] = removal(client);
    members_.clear();
    if (!pending_.empty()) write(/*final=*/true);
    hub_.unsubscribe(keys_.channel, me());
    hub_.unsubscribe(keys_.typing, me());
    self_->quit();
  }

  /// Requests that arrive before the list was first read wait for it.
  bool defer(std::function<void()> request) {
    if (ready_) return false;
    deferred_.push_back(std::move(request));
    return true;
  }

  void join(presence_join& join, const caf::actor& sender) {
    const std::string& client = join.who.client;
    // The same user back within the grace period, on this node: the vanished entry leaves
    // in the diff the new one joins in (the script does the same for other nodes' entries).
    for (auto it = members_.begin(); it != members_.end();) {
      if (!it->second.sink && it->second.user == join.who.user && it->first != client) {
        pending_[it->first] = removal(it->first);
        it = members_.erase(it);
      } else {
        ++it;
      }
    }
    auto& m = members_[client];
    m.sink = join.who.sink;
    m.user = join.who.user;
    m.holds |= static_cast<std::uint8_t>(join.hold);
    m.grace_generation = 0;
    if (m.encoded.empty()) {
      m.entry = {client, join.who.user, join.who.name, join.who.info, {}};
      m.encoded = core::encode_entry(m.entry);
    }
    pending_[client] = upsert(client, m);
    schedule_flush();
    const std::string snapshot = snapshot_for(client);
    m.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      out.write(join.reply_head);
      protocol::encode_members_tail(out, pseq_, snapshot);
    }));
    self_->send(sender, joined_atom::value, client);
  }

  void leave(const presence_leave& leave) {
    auto it = members_.find(leave.client);
    if (it == members_.end() || !it->second.sink) return;
    auto& m = it->second;
    m.holds &= static_cast<std::uint8_t>(~static_cast<std::uint8_t>(leave.hold));
    if (m.holds != 0) return; // still here through its other hold
    stop_typing(leave.client, m);
    if (leave.abrupt && settings_.grace.count() > 0) {
      m.sink = nullptr; // listed, but sent nothing, until the grace period ends
      m.fresh.reset();
      m.grace_generation = ++generation_;
      pending_[leave.client] = upsert(leave.client, m); // a grace mark, see upsert()
      schedule_flush();
      self_->delayed_send(self_, settings_.grace, grace_atom::value, leave.client,
                          m.grace_generation);
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
    if (stale_) {
      return unavailable(get.from, get.request.id,
                         "presence of " + room_ + " is not readable: Redis is unreachable");
    }
    const std::string snapshot = snapshot_for(get.from.client);
    get.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_presence(out, get.request.id, room_, pseq_, snapshot);
    }));
  }

  void set(presence_set& set) {
    auto it = members_.find(set.from.client);
    if (it == members_.end() || !it->second.sink) {
      set.from.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
        protocol::encode_error(out, set.request.id, protocol::error_code::not_subscribed,
                               "state belongs to a member: subscribe or open first");
      }));
      return;
    }
    auto& m = it->second;
    m.entry.state = std::move(set.request.state);
    m.encoded = core::encode_entry(m.entry);
    pending_[set.from.client] = upsert(set.from.client, m);
    pending_acks_.push_back({set.from, set.request.id});
    schedule_flush();
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
    auto& m = it->second;
    if (!typing.request.on) return stop_typing(it->first, m);
    if (!m.typing) {
      m.typing = true;
      fan_out(typing_frame(it->first, m.user, true), it->first);
    }
    // Every `on` is published (the other nodes refresh their own lapse with it); only changes
    // reach the members.
    publish_typing(it->first, m.user, true);
    m.typing_generation = ++generation_;
    self_->delayed_send(self_, settings_.typing_lapse, lapse_atom::value, it->first,
                        m.typing_generation);
  }

  void typing_lapsed(const std::string& client, std::uint64_t generation) {
    auto it = members_.find(client);
    if (it != members_.end() && it->second.typing && it->second.typing_generation == generation)
      stop_typing(client, it->second);
  }

  void remote_typing_lapsed(const std::string& client, std::uint64_t generation) {
    auto it = remote_typers_.find(client);
    if (it != remote_typers_.end() && it->second.generation == generation) end_remote_typing(it);
  }

  void pubsub(const redis_pubsub& message) {
    if (message.channel == keys_.typing) return remote_typing(message.payload);
    if (message.channel != keys_.channel) return;
    if (reading_) {
      held_.push_back(message.payload); // applied past the read's pseq
      return;
    }
    on_diff(message.payload);
  }

  void link_event(const redis_link_event& e) {
    using event = cluster::redis_subscriber::event;
    if (e.event == event::down) {
      stale_ = true; // diffs are being missed
      return;
    }
    if (e.event == event::resubscribed) {
      // This node may have been counted dead meanwhile and its entries swept: assert them
      // again (the script changes nothing where they are still right), then read the list.
      for (auto& [client, member] : members_)
        if (!pending_.count(client)) pending_[client] = upsert(client, member);
      schedule_flush();
      resync();
    }
  }

  void flush() {
    flush_scheduled_ = false;
    write(false);
  }

  void retry() {
    retry_scheduled_ = false;
    if (!ready_ && ++start_waits_ >= 3) {
      // Redis has not confirmed the subscription yet: serve what is known (nothing), and
      // repair when it does (unavailable within the contract's 5 s rather than hanging).
      stale_ = true;
      release_deferred();
    } else if (!ready_) {
      schedule_retry();
    }
    if (stale_ && !reading_) resync();
    write(false);
  }

private:
  struct member {
    sink_ptr sink; ///< null while its connection is gone and it waits out the grace period
    std::string user;
    std::uint8_t holds = 0;
    bool typing = false;
    std::uint64_t typing_generation = 0;
    std::uint64_t grace_generation = 0;
    core::presence_entry entry; ///< as this node wants it listed
    std::string encoded;        ///< entry, encoded
    /// Its own entry as its last snapshot showed it while the mirror did not have it yet:
    /// the diff that brings it is sent to this member without that arrival.
    std::optional<std::string> fresh;
  };
  using member_map = std::unordered_map<std::string, member>;

  struct ack {
    peer_ref to;
    protocol::request_id id;
  };

  struct transition {
    std::string client;
    std::optional<std::string> before, after;
  };

  struct remote_typer {
    std::string user;
    std::uint64_t generation = 0;
  };

  caf::actor me() const { return caf::actor_cast<caf::actor>(self_); }

  change upsert(const std::string& client, const member& m) const {
    // A member waiting out its grace period is written with a grace mark: a join of its
    // user, on any node, replaces it.
    return {m.sink ? change::kind::upsert : change::kind::grace, client, m.user, m.encoded};
  }
  static change removal(const std::string& client) {
    return {change::kind::remove, client, {}, {}};
  }

  void remove(member_map::iterator it) {
    pending_[it->first] = removal(it->first);
    members_.erase(it);
    schedule_flush();
  }

  void schedule_flush() {
    if (flush_scheduled_ || pending_.empty()) return;
    flush_scheduled_ = true;
    self_->delayed_send(self_, settings_.window, flush_atom::value);
  }

  void schedule_retry() {
    if (retry_scheduled_) return;
    retry_scheduled_ = true;
    self_->delayed_send(self_, retry_interval, retry_atom::value);
  }

  /// Sends the pending changes as one batch; one batch in flight at a time, so a failed one
  /// can be queued again under the changes made since.
  void write(bool final) {
    if ((in_flight_ && !final) || pending_.empty()) return;
    std::vector<change> batch;
    batch.reserve(pending_.size());
    for (auto& [client, c] : pending_)
      batch.push_back(std::move(c));
    pending_.clear();
    auto acks = std::exchange(pending_acks_, {});
    const auto call = cluster::presence_call(keys_, room_, hub_.incarnation(), batch);
    if (final) {
      // The actor is ending: the reply, on the command link's strand, finds only the backend
      // (which outlives the rooms).
      hub_.commands().eval_script(
          cluster::presence_script(), call.keys, call.args,
          [app = backend_, room = room_](std::error_code ec, cluster::redis_reply reply) {
            if (ec || !app) return;
            try {
              for (auto& e : cluster::decode_presence_write(reply).events)
                app->emit({std::move(e.name), room, std::move(e.user), std::move(e.client), {}});
            } catch (const std::exception&) {}
          });
      return;
    }
    in_flight_ = true;
    for (const auto& c : batch)
      in_flight_clients_.insert(c.client);
    hub_.eval(me(), cluster::presence_script(), call.keys, call.args,
              [this, batch = std::move(batch),
               acks = std::move(acks)](std::error_code ec, cluster::redis_reply reply) mutable {
                written(ec, reply, std::move(batch), std::move(acks));
              });
  }

  void written(std::error_code ec, const cluster::redis_reply& reply, std::vector<change> batch,
               std::vector<ack> acks) {
    in_flight_ = false;
    in_flight_clients_.clear();
    std::string error;
    if (ec) {
      error = ec.message();
    } else {
      try {
        // The script computed the webhook events of this batch against the whole cluster's
        // list: this node, which ran it, emits them (once for the cluster).
        auto written = cluster::decode_presence_write(reply);
        if (backend_)
          for (auto& e : written.events)
            backend_->emit({std::move(e.name), room_, std::move(e.user), std::move(e.client), {}});
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    if (error.empty()) {
      for (const auto& a : acks)
        a.to.sink->send(protocol::make_frame(
            [&](protocol::frame_builder& out) { protocol::encode_ok(out, a.id); }));
    } else {
      // Again later, under whatever changed since (the newer change of a client wins).
      for (auto& c : batch)
        pending_.try_emplace(c.client, std::move(c));
      for (const auto& a : acks)
        unavailable(a.to, a.id, "presence: Redis did not take the change: " + error);
      return schedule_retry();
    }
    schedule_flush();
  }

  /// Reads the whole list again: at start, after a hole in pseq, after an outage.
  void resync() {
    if (reading_) {
      read_again_ = true;
      return;
    }
    reading_ = true;
    const auto call = cluster::presence_read_call(keys_);
    hub_.eval(me(), cluster::presence_read_script(), call.keys, call.args,
              [this](std::error_code ec, cluster::redis_reply reply) { read(ec, reply); });
  }

  void read(std::error_code ec, const cluster::redis_reply& reply) {
    reading_ = false;
    std::optional<cluster::presence_list_read> list;
    if (!ec) {
      try {
        list = cluster::decode_presence_read(reply);
      } catch (const std::exception& e) {
        std::cerr << "troupe: cluster: presence of " << room_ << ": " << e.what() << std::endl;
      }
    }
    if (!list) {
      // Serve from what is known (the requests that need Redis are refused while stale) and
      // read again soon.
      stale_ = true;
      held_.clear();
      schedule_retry();
      release_deferred();
      return;
    }
    stale_ = false;
    std::map<std::string, std::string> next(std::make_move_iterator(list->entries.begin()),
                                            std::make_move_iterator(list->entries.end()));
    std::vector<transition> changes;
    for (const auto& [client, entry] : mirror_) {
      auto it = next.find(client);
      if (it == next.end())
        changes.push_back({client, entry, std::nullopt});
      else if (it->second != entry)
        changes.push_back({client, entry, it->second});
    }
    for (const auto& [client, entry] : next)
      if (!mirror_.count(client)) changes.push_back({client, std::nullopt, entry});
    apply(std::move(changes), list->pseq);
    // Whatever the outage or the hole changed under this node's members.
    for (auto it = members_.begin(); it != members_.end();)
      it = reconcile(it);
    // The diffs that arrived during the read, past it.
    auto held = std::exchange(held_, {});
    for (const auto& payload : held) {
      if (reading_) break; // a hole among them: read again
      on_diff(payload);
    }
    release_deferred();
    if (read_again_) {
      read_again_ = false;
      resync();
    }
  }

  void release_deferred() {
    if (ready_) return;
    ready_ = true;
    for (auto& request : std::exchange(deferred_, {}))
      request();
  }

  void on_diff(std::string_view payload) {
    cluster::presence_diff_message d;
    try {
      d = cluster::decode_presence_diff(payload);
    } catch (const std::exception& e) {
      std::cerr << "troupe: cluster: presence of " << room_ << ": " << e.what() << std::endl;
      return resync();
    }
    if (d.pseq <= pseq_) return;              // already in the mirror (a read brought it)
    if (d.pseq != pseq_ + 1) return resync(); // a hole: the channel lost a diff
    std::vector<transition> changes;
    for (const auto& [client, entry] : d.leaves) {
      auto it = mirror_.find(std::string(client));
      changes.push_back({std::string(client), it == mirror_.end() ? std::string(entry) : it->second,
                         std::nullopt});
    }
    for (const auto& [client, entry] : d.joins) {
      auto found = std::find_if(changes.begin(), changes.end(),
                                [&](const transition& t) { return t.client == client; });
      if (found != changes.end()) {
        found->after = std::string(entry);
        continue;
      }
      auto it = mirror_.find(std::string(client));
      changes.push_back({std::string(client),
                         it == mirror_.end() ? std::nullopt : std::optional(it->second),
                         std::string(entry)});
    }
    std::vector<std::string> touched;
    for (const auto& t : changes)
      touched.push_back(t.client);
    apply(std::move(changes), d.pseq);
    for (const auto& client : touched)
      if (auto it = members_.find(client); it != members_.end()) reconcile(it);
  }

  /// The mirror moves to `pseq` by `changes`; each member here gets the diff from what it
  /// was shown.
  void apply(std::vector<transition> changes, std::uint64_t pseq) {
    const bool moved = pseq != pseq_;
    pseq_ = pseq;
    for (const auto& t : changes) {
      if (t.after)
        mirror_[t.client] = *t.after;
      else
        mirror_.erase(t.client);
    }
    if (changes.empty() && !moved) return;
    auto encode = [&](const member* own, const std::string* own_client) {
      std::vector<std::string_view> joins;
      std::vector<std::string> leaves;
      for (const auto& t : changes) {
        const std::optional<std::string>& before =
            own && own_client && t.client == *own_client ? own->fresh : t.before;
        if (before && t.after && *before == *t.after) continue;
        if (before) leaves.push_back(*before);
        if (t.after) joins.push_back(*t.after);
      }
      return protocol::make_frame([&](protocol::frame_builder& out) {
        protocol::encode_pdiff(out, room_, pseq_, joins, leaves);
      });
    };
    const auto full = encode(nullptr, nullptr);
    for (auto& [client, m] : members_) {
      if (!m.sink) continue;
      const bool own_changed =
          m.fresh && std::any_of(changes.begin(), changes.end(),
                                 [&](const transition& t) { return t.client == client; });
      if (!own_changed) {
        m.sink->send(full);
        continue;
      }
      m.sink->send(encode(&m, &client));
      m.fresh.reset(); // its view now is the mirror
    }
    // A remote typer whose entry left stops typing, as a local one does when it leaves.
    for (const auto& t : changes)
      if (!t.after)
        if (auto it = remote_typers_.find(t.client); it != remote_typers_.end())
          end_remote_typing(it);
  }

  /// Makes Redis agree with this node about one of its members, once the change is no
  /// longer on its way: an entry removed under an active member (swept while this node was
  /// counted dead) joins again; a member in grace whose entry left (its user came back on
  /// another node, or it was swept) is gone.
  member_map::iterator reconcile(member_map::iterator it) {
    const auto& client = it->first;
    if (pending_.count(client) || in_flight_clients_.count(client)) return std::next(it);
    auto listed = mirror_.find(client);
    if (!it->second.sink) {
      if (listed == mirror_.end()) return members_.erase(it);
      return std::next(it);
    }
    if (listed == mirror_.end() || listed->second != it->second.encoded) {
      pending_[client] = upsert(client, it->second);
      schedule_flush();
    }
    return std::next(it);
  }

  /// The list as the mirror has it, and the reader's own entry if the mirror does not have
  /// it as the reader will be listed: the contract lists a subscriber in its own reply.
  std::string snapshot_for(const std::string& client) {
    const std::string* own = nullptr;
    if (auto it = members_.find(client); it != members_.end() && it->second.sink) {
      auto listed = mirror_.find(client);
      if (listed == mirror_.end() || listed->second != it->second.encoded) {
        own = &it->second.encoded;
        it->second.fresh = *own;
      } else {
        it->second.fresh.reset();
      }
    }
    protocol::string_sink sink;
    protocol::string_packer pk(sink);
    pk.pack_array(static_cast<std::uint32_t>(mirror_.size() + (own ? 1 : 0) -
                                             (own && mirror_.count(client) ? 1 : 0)));
    for (const auto& [c, entry] : mirror_)
      if (!own || c != client) sink.bytes.append(entry);
    if (own) sink.bytes.append(*own);
    return std::move(sink.bytes);
  }

  void unavailable(const peer_ref& to, protocol::request_id id, const std::string& reason) {
    to.sink->send(protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_error(out, id, protocol::error_code::unavailable, reason);
    }));
  }

  void stop_typing(const std::string& client, member& m) {
    if (!m.typing) return;
    m.typing = false;
    ++m.typing_generation;
    fan_out(typing_frame(client, m.user, false), client);
    publish_typing(client, m.user, false);
  }

  void publish_typing(const std::string& client, const std::string& user, bool on) {
    // Fire and forget: a typing may be dropped while Redis is away.
    hub_.command(me(),
                 {"PUBLISH", keys_.typing,
                  cluster::encode_typing_message(hub_.incarnation(), client, user, on)},
                 [](std::error_code, cluster::redis_reply) {});
  }

  void remote_typing(std::string_view payload) {
    cluster::typing_message t;
    try {
      t = cluster::decode_typing_message(payload);
    } catch (const std::exception& e) {
      std::cerr << "troupe: cluster: typing in " << room_ << ": " << e.what() << std::endl;
      return;
    }
    if (t.incarnation == hub_.incarnation()) return; // sent to the members here already
    const std::string client(t.client);
    auto it = remote_typers_.find(client);
    if (!t.on) {
      if (it != remote_typers_.end()) end_remote_typing(it);
      return;
    }
    if (it == remote_typers_.end()) {
      it = remote_typers_.emplace(client, remote_typer{std::string(t.user), 0}).first;
      fan_out(typing_frame(client, it->second.user, true), client);
    }
    it->second.generation = ++generation_;
    self_->delayed_send(self_, settings_.typing_lapse + remote_lapse_margin,
                        remote_lapse_atom::value, client, it->second.generation);
  }

  void end_remote_typing(std::unordered_map<std::string, remote_typer>::iterator it) {
    fan_out(typing_frame(it->first, it->second.user, false), it->first);
    remote_typers_.erase(it);
  }

  protocol::frame_ptr typing_frame(const std::string& client, const std::string& user, bool on) {
    return protocol::make_frame([&](protocol::frame_builder& out) {
      protocol::encode_typing(out, room_, user, client, on);
    });
  }

  void fan_out(const protocol::frame_ptr& frame, const std::string& except) {
    for (auto& [client, m] : members_)
      if (m.sink && client != except) m.sink->send(frame);
  }

  companion* self_;
  std::string room_;
  presence_settings settings_;
  cluster_hub& hub_;
  backend* backend_; // null: no webhooks
  cluster::presence_keys keys_;

  // The list as Redis has it, by the diffs applied in pseq order.
  std::map<std::string, std::string> mirror_;
  std::uint64_t pseq_ = 0;
  bool ready_ = false;   // the list was read once (or that failed): requests are served
  bool reading_ = false; // a read is on its way: diffs wait in held_
  bool read_again_ = false;
  bool stale_ = false; // the mirror may be missing diffs (pub/sub down, or a failed read)
  std::vector<std::string> held_;
  std::vector<std::function<void()>> deferred_;

  member_map members_;
  std::unordered_map<std::string, remote_typer> remote_typers_;

  // This node's changes not yet written, at most one per client, and the psets they answer.
  std::map<std::string, change> pending_;
  std::vector<ack> pending_acks_;
  bool in_flight_ = false;
  std::unordered_set<std::string> in_flight_clients_;
  bool flush_scheduled_ = false;
  bool retry_scheduled_ = false;
  int start_waits_ = 0;
  std::uint64_t generation_ = 0; // tells current timers from stale ones
};

} // namespace

caf::actor spawn_cluster_presence(caf::actor_system& system, boost::asio::any_io_executor strand,
                                  std::string room, const presence_settings& settings,
                                  cluster_hub& hub, backend* app_backend) {
  auto actor = spawn_on_strand(system, std::move(strand), [&](companion* self) {
    auto state =
        std::make_shared<cluster_presence>(self, std::move(room), settings, hub, app_backend);
    auto sender = [self] { return caf::actor_cast<caf::actor>(self->current_sender()); };
    return caf::behavior{
        [state, sender](presence_join& join) {
          auto from = sender();
          if (state->defer([state, join, from]() mutable { state->join(join, from); })) return;
          state->join(join, from);
        },
        [state](const presence_leave& leave) {
          if (state->defer([state, leave] { state->leave(leave); })) return;
          state->leave(leave);
        },
        [state](presence_get& get) {
          if (state->defer([state, get]() mutable { state->get(get); })) return;
          state->get(get);
        },
        [state](presence_set& set) {
          if (state->defer([state, set]() mutable { state->set(set); })) return;
          state->set(set);
        },
        [state](presence_typing& typing) {
          if (state->defer([state, typing]() mutable { state->typing(typing); })) return;
          state->typing(typing);
        },
        [state](start_atom) { state->start(); },
        [state](flush_atom) { state->flush(); },
        [state](retry_atom) { state->retry(); },
        [state](grace_atom, const std::string& client, std::uint64_t generation) {
          state->grace_over(client, generation);
        },
        [state](lapse_atom, const std::string& client, std::uint64_t generation) {
          state->typing_lapsed(client, generation);
        },
        [state](remote_lapse_atom, const std::string& client, std::uint64_t generation) {
          state->remote_typing_lapsed(client, generation);
        },
        [](redis_continuation& c) { c.run(); },
        [state](const redis_pubsub& message) { state->pubsub(message); },
        [state](const redis_link_event& e) { state->link_event(e); },
        [state](stop_atom) { state->stop(); },
    };
  });
  // The first message in its mailbox: nobody else has its handle yet.
  caf::anon_send(actor, start_atom::value);
  return actor;
}

void sweep_dead_node(cluster_hub& hub, const std::string& incarnation, std::function<void()> done,
                     backend* app_backend) {
  // On the hub's strand; the diffs reach each room's members through its channel.
  const auto call = cluster::presence_sweep_call(incarnation);
  hub.commands().eval_script(cluster::presence_sweep_script(), call.keys, call.args,
                             [incarnation, done = std::move(done),
                              app_backend](std::error_code ec, cluster::redis_reply reply) {
                               struct on_exit {
                                 const std::function<void()>& run;
                                 ~on_exit() {
                                   if (run) run();
                                 }
                               } finished{done};
                               if (ec)
                                 return; // the link is down: the next beat reports the node again
                               try {
                                 auto swept = cluster::decode_presence_sweep(reply);
                                 std::cout << "troupe: cluster: node " << incarnation
                                           << " stopped beating; " << swept.removed
                                           << " presence entries removed" << std::endl;
                                 if (app_backend)
                                   for (auto& e : swept.events)
                                     app_backend->emit({std::move(e.name),
                                                        std::move(e.room),
                                                        std::move(e.user),
                                                        std::move(e.client),
                                                        {}});
                               } catch (const std::exception& e) {
                                 std::cerr << "troupe: cluster: presence sweep of " << incarnation
                                           << ": " << e.what() << std::endl;
                               }
                             });
}

} // namespace troupe::actors
