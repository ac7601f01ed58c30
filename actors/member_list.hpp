#pragma once
// The connections that receive a room's pushes (its log's subscribers, its document's
// holders). A member admitted to presence gets its reply from the presence actor; until that
// actor says it has queued the reply, the member's pushes are held back so that none
// overtakes it. A vector, not a map: the fan-out walks it for every push, and joins and
// leaves are rare next to deliveries. A member keeps its client id and its sink only (not
// the whole peer_ref): every idle subscriber is one, and presence keeps the rest.

#include <string>
#include <string_view>
#include <vector>

#include "actors/messages.hpp"

namespace troupe::actors {

class member_list {
public:
  /// Adds `who`, or refreshes it if listed already (never listed twice); its pushes are held
  /// until activate().
  void add(peer_ref who) {
    if (auto* member = find(who.client)) {
      member->sink = std::move(who.sink);
      member->active = false;
      return;
    }
    members_.push_back({std::move(who.client), std::move(who.sink), false, {}});
  }

  /// Its reply is queued: sends what was held, then everything as it comes.
  void activate(std::string_view client) {
    auto* member = find(client);
    if (!member || member->active) return;
    member->active = true;
    for (auto& push : member->held)
      member->sink->send(std::move(push));
    member->held = {};
  }

  /// True if it was a member.
  bool remove(std::string_view client) {
    auto* member = find(client);
    if (!member) return false;
    *member = std::move(members_.back());
    members_.pop_back();
    return true;
  }

  bool contains(std::string_view client) const {
    for (const auto& member : members_)
      if (member.client == client) return true;
    return false;
  }

  /// Sends a reply to `to`: held behind its pending pushes if it is a member whose own reply
  /// is not out yet (a frame that opens and edits at once gets its acks after `opened`),
  /// straight to its sink otherwise.
  void reply(const peer_ref& to, protocol::frame_ptr frame) {
    auto* member = find(to.client);
    if (member && !member->active)
      member->held.push_back(std::move(frame));
    else
      to.sink->send(std::move(frame));
  }

  /// Sends `push` to every member but `except` (a client id; empty: none).
  void send(const protocol::frame_ptr& push, std::string_view except = {}) {
    for (auto& member : members_) {
      if (!except.empty() && member.client == except) continue;
      if (member.active)
        member.sink->send(push);
      else
        member.held.push_back(push);
    }
  }

  std::size_t size() const noexcept { return members_.size(); }

  /// Calls visit(client, sink) for every member.
  template <class Visit>
  void for_each(Visit&& visit) const {
    for (const auto& member : members_)
      visit(member.client, member.sink);
  }

  struct handle {
    std::string client;
    sink_ptr sink;
  };

  /// Removes every member and hands them over (their held pushes are dropped): the room's
  /// state they held is gone (a cluster's Redis lost it) and they are being reset.
  std::vector<handle> take_all() {
    std::vector<handle> out;
    out.reserve(members_.size());
    for (auto& member : members_)
      out.push_back({std::move(member.client), std::move(member.sink)});
    members_.clear();
    return out;
  }

private:
  struct member {
    std::string client;
    sink_ptr sink;
    bool active = false;                   ///< its reply has been queued
    std::vector<protocol::frame_ptr> held; ///< pushes waiting for that reply
  };

  member* find(std::string_view client) {
    for (auto& member : members_)
      if (member.client == client) return &member;
    return nullptr;
  }

  std::vector<member> members_;
};

} // namespace troupe::actors
