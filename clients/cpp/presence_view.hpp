// A room's presence as a client sees it: the entries (one per connection) kept current from
// `subscribed` / `pdiff` / `presence`, grouped by user, with who is typing. Pure logic: the
// view asks its `sink` to fetch the list again when it finds a hole in `pseq`, and tells the
// Sink what changed. A `sink` must not call back into the view from inside one of its methods.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "clients/cpp/reply.hpp"
#include "clients/cpp/value.hpp"

namespace troupe::client {

// One connection in a room: `{client, user, name?, info?, state?}`.
struct presence_entry {
  std::string client;
  std::string user;
  std::optional<std::string> name;
  value info;  // nil: none (from the token's `info` claim)
  value state; // nil: none; else the map the connection set with `pset`

  // Same fields, same encodings.
  bool same_as(const presence_entry& o) const;
};

// Entries by connection, and the same grouped by user ("in how many tabs"). Copyable.
class presence_list {
public:
  const std::map<std::string, presence_entry>& by_client() const { return by_client_; }
  // user → the client ids of its connections (never empty).
  const std::map<std::string, std::set<std::string>>& by_user() const { return by_user_; }

  const presence_entry* find(const std::string& client) const;
  // The entries of one user, by client id.
  std::vector<const presence_entry*> entries_of(const std::string& user) const;
  // How many connections (tabs) `user` has here.
  std::size_t tabs(const std::string& user) const;
  bool online(const std::string& user) const { return by_user_.count(user) != 0; }
  std::vector<std::string> users() const;
  std::size_t size() const { return by_client_.size(); }
  bool empty() const { return by_client_.empty(); }

  // Adds or replaces the entry of e.client.
  void insert(presence_entry e);
  // Removes the entry of `client`; false if there was none.
  bool erase(const std::string& client);
  void clear();

private:
  std::map<std::string, presence_entry> by_client_;
  std::map<std::string, std::set<std::string>> by_user_;
};

// A `pdiff` push.
struct presence_diff {
  std::string room;
  std::uint64_t pseq = 0;
  std::vector<presence_entry> joins;
  std::vector<presence_entry> leaves;
};

// The whole list at one `pseq` (a `presence` reply, or the presence part of `subscribed`).
struct presence_snapshot {
  std::string room;
  std::uint64_t pseq = 0;
  presence_list members;
  std::map<std::string, std::string> typing; // client → user (views only; a fetch has none)
};

// A `typing` push, or a typing indicator the view cleared itself (its member left, the
// connection was lost).
struct typing_event {
  std::string room;
  std::string user;
  std::string client;
  bool on = false;
};

class presence_view;

enum class presence_event_kind {
  snapshot, // a (re)subscription's list replaced the view (first one, after a reconnect, …)
  diff,     // a `pdiff` was applied
  resynced, // a hole in `pseq` was found and the list fetched again
};

const char* to_string(presence_event_kind k);

// What changed in a room's presence. For snapshot/resynced the changes are the difference
// between the view before and after, so a handler can treat every kind alike.
struct presence_event {
  std::string room;
  presence_event_kind kind = presence_event_kind::diff;
  std::uint64_t pseq = 0;
  std::vector<presence_entry> joined;    // connections that appeared
  std::vector<presence_entry> left;      // connections that are gone (as they were)
  std::vector<presence_entry> updated;   // connections whose entry changed (as they are now)
  std::vector<std::string> users_joined; // users online now that were not (first connection)
  std::vector<std::string> users_left;   // users no longer online (last connection gone)
  // The room's whole view after the change. Valid only during the callback.
  const presence_view* view = nullptr;

  bool empty() const { return joined.empty() && left.empty() && updated.empty(); }
};

class presence_view {
public:
  class sink {
  public:
    virtual ~sink() = default;
    virtual void presence_changed(const presence_event& ev) = 0;
    virtual void typing_changed(const typing_event& ev) = 0;
    // Ask `presence` for the room; answer with on_fetched / on_fetch_failed.
    virtual void fetch_presence(const std::string& room) = 0;
  };

  enum class phase_kind {
    idle,     // no subscription on the current connection (yet): diffs are ignored
    live,     // applying diffs as they come
    fetching, // a hole was seen: the list was asked for, later diffs are held back
  };

  presence_view(std::string room, sink& sink) : room_(std::move(room)), sink_(sink) {}

  // The `pseq` and `members` of a `subscribed` (or `opened`) reply: the view starts again.
  // `self`: this connection's client id (for self()).
  void on_subscribed(std::uint64_t pseq, std::vector<presence_entry> members,
                     std::string self = {});
  void on_diff(presence_diff d);
  void on_fetched(std::uint64_t pseq, std::vector<presence_entry> members);
  // The fetch failed (not for a lost connection): the next diff asks again.
  void on_fetch_failed();
  void on_typing(const typing_event& t);
  // The connection is gone: diffs are ignored until the next on_subscribed; typing
  // indicators are cleared (their `off` would not reach us). The list is kept as it was,
  // so the next snapshot reports only what really changed.
  void on_connection_lost();

  const std::string& room() const { return room_; }
  phase_kind phase() const { return phase_; }
  // The pseq of the last applied diff (or snapshot).
  std::uint64_t pseq() const { return pseq_; }
  const presence_list& list() const { return list_; }
  // This connection's own entry, if listed.
  const presence_entry* self() const { return self_.empty() ? nullptr : list_.find(self_); }
  const std::string& self_client() const { return self_; }
  // Who is typing: client → user.
  const std::map<std::string, std::string>& typing() const { return typing_; }
  // The users typing, each once, sorted.
  std::vector<std::string> typing_users() const;
  std::size_t held() const { return held_.size(); }
  std::uint64_t fetches() const { return fetches_; }
  presence_snapshot snapshot() const;

private:
  void apply(const presence_diff& d);
  void replace(presence_event_kind kind, std::uint64_t pseq, std::vector<presence_entry> members);
  void drain();
  void ask();
  void clear_typing_of_gone();

  std::string room_;
  sink& sink_;
  phase_kind phase_ = phase_kind::idle;
  std::uint64_t pseq_ = 0;
  presence_list list_;
  std::string self_;
  std::map<std::string, std::string> typing_;
  std::map<std::uint64_t, presence_diff> held_;
  bool asked_ = false; // a fetch is in flight
  std::uint64_t fetches_ = 0;
};

// --- decoding (pure) ---------------------------------------------------------------------

// An array of entries; nullopt if it is not an array of entries. The entries own copies of
// their values (they do not keep the frame alive).
std::optional<std::vector<presence_entry>> parse_presence_entries(const msgpack::object& arr);
std::optional<presence_diff> parse_pdiff(const reply& r);
// A `presence` reply (members as a list).
std::optional<presence_snapshot> parse_presence(const reply& r);
std::optional<typing_event> parse_typing(const reply& r);

} // namespace troupe::client
