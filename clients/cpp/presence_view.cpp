#include "clients/cpp/presence_view.hpp"

#include <algorithm>
#include <memory>

#include "clients/cpp/map_view.hpp"

namespace troupe::client {

namespace {

bool same_value(const value& a, const value& b) {
  if (a.is_nil() || b.is_nil()) return a.is_nil() == b.is_nil();
  return a.encode() == b.encode();
}

// A deep copy of `obj` with a zone of its own, so that an entry does not pin its frame.
value own_copy(const msgpack::object& obj) {
  auto h = std::make_shared<msgpack::object_handle>(msgpack::clone(obj));
  const msgpack::object o = h->get();
  return value(std::move(h), o);
}

std::optional<presence_entry> parse_entry(const msgpack::object& obj) {
  map_view m(obj);
  if (!m.is_map()) return std::nullopt;
  auto client = m.id_string("client");
  auto user = m.id_string("user");
  if (!client || !user) return std::nullopt;
  presence_entry e;
  e.client = std::move(*client);
  e.user = std::move(*user);
  if (auto n = m.str("name")) e.name = std::string(*n);
  if (const auto* i = m.get("info"); i && i->type != msgpack::type::NIL) e.info = own_copy(*i);
  if (const auto* s = m.get("state"); s && s->type != msgpack::type::NIL) e.state = own_copy(*s);
  return e;
}

std::optional<std::vector<presence_entry>> entries_at(const reply& r, std::string_view key) {
  const auto* v = r.map().get(key);
  if (!v) return std::vector<presence_entry>{}; // absent: none
  return parse_presence_entries(*v);
}

} // namespace

// --- presence_entry / presence_list ---------------------------------------------------------

bool presence_entry::same_as(const presence_entry& o) const {
  return client == o.client && user == o.user && name == o.name && same_value(info, o.info) &&
         same_value(state, o.state);
}

const presence_entry* presence_list::find(const std::string& client) const {
  auto it = by_client_.find(client);
  return it == by_client_.end() ? nullptr : &it->second;
}

std::vector<const presence_entry*> presence_list::entries_of(const std::string& user) const {
  std::vector<const presence_entry*> out;
  auto it = by_user_.find(user);
  if (it == by_user_.end()) return out;
  for (const auto& c : it->second)
    if (const auto* e = find(c)) out.push_back(e);
  return out;
}

std::size_t presence_list::tabs(const std::string& user) const {
  auto it = by_user_.find(user);
  return it == by_user_.end() ? 0 : it->second.size();
}

std::vector<std::string> presence_list::users() const {
  std::vector<std::string> out;
  out.reserve(by_user_.size());
  for (const auto& [u, clients] : by_user_)
    out.push_back(u);
  return out;
}

void presence_list::insert(presence_entry e) {
  erase(e.client); // its user may have changed
  by_user_[e.user].insert(e.client);
  auto client = e.client;
  by_client_.emplace(std::move(client), std::move(e));
}

bool presence_list::erase(const std::string& client) {
  auto it = by_client_.find(client);
  if (it == by_client_.end()) return false;
  auto u = by_user_.find(it->second.user);
  if (u != by_user_.end()) {
    u->second.erase(client);
    if (u->second.empty()) by_user_.erase(u);
  }
  by_client_.erase(it);
  return true;
}

void presence_list::clear() {
  by_client_.clear();
  by_user_.clear();
}

const char* to_string(presence_event_kind k) {
  switch (k) {
  case presence_event_kind::snapshot:
    return "snapshot";
  case presence_event_kind::diff:
    return "diff";
  case presence_event_kind::resynced:
    return "resynced";
  }
  return "?";
}

// --- presence_view ---------------------------------------------------------------------------

namespace {

// Collects what changed while the list goes from one state to another.
class change_tracker {
public:
  explicit change_tracker(const presence_list& list) : list_(list) {}

  void touch(const std::string& client) {
    if (before_.count(client)) return;
    const auto* e = list_.find(client);
    before_.emplace(client, e ? std::optional<presence_entry>(*e) : std::nullopt);
    if (e) users_before_.emplace(e->user, true);
  }
  void touch_user(const std::string& user) { users_before_.emplace(user, list_.online(user)); }

  void finish(presence_event& ev) const {
    for (const auto& [client, before] : before_) {
      const auto* after = list_.find(client);
      if (before && !after)
        ev.left.push_back(*before);
      else if (!before && after)
        ev.joined.push_back(*after);
      else if (before && after && !before->same_as(*after))
        ev.updated.push_back(*after);
    }
    // Users: every user of a touched entry, before or after.
    std::map<std::string, bool> users = users_before_;
    for (const auto& [client, before] : before_) {
      if (const auto* after = list_.find(client)) users.emplace(after->user, false);
    }
    for (const auto& [user, was] : users) {
      const bool is = list_.online(user);
      if (is && !was) ev.users_joined.push_back(user);
      if (!is && was) ev.users_left.push_back(user);
    }
  }

private:
  const presence_list& list_;
  std::map<std::string, std::optional<presence_entry>> before_;
  std::map<std::string, bool> users_before_; // user → online before
};

} // namespace

void presence_view::on_subscribed(std::uint64_t pseq, std::vector<presence_entry> members,
                                  std::string self) {
  self_ = std::move(self);
  held_.clear();
  asked_ = false;
  phase_ = phase_kind::live;
  replace(presence_event_kind::snapshot, pseq, std::move(members));
}

void presence_view::replace(presence_event_kind kind, std::uint64_t pseq,
                            std::vector<presence_entry> members) {
  change_tracker t(list_);
  for (const auto& [client, e] : list_.by_client())
    t.touch(client);
  for (const auto& e : members) {
    t.touch(e.client);
    t.touch_user(e.user);
  }
  list_.clear();
  for (auto& e : members)
    list_.insert(std::move(e));
  pseq_ = pseq;

  presence_event ev;
  ev.room = room_;
  ev.kind = kind;
  ev.pseq = pseq_;
  t.finish(ev);
  ev.view = this;
  clear_typing_of_gone();
  sink_.presence_changed(ev);
}

void presence_view::on_diff(presence_diff d) {
  switch (phase_) {
  case phase_kind::idle:
    return; // not subscribed on this connection (yet)
  case phase_kind::fetching:
    if (d.pseq > pseq_) held_.emplace(d.pseq, std::move(d));
    ask(); // again, if the last fetch failed
    return;
  case phase_kind::live:
    break;
  }
  if (d.pseq <= pseq_) return; // old or repeated
  if (d.pseq != pseq_ + 1) {
    // A hole: some diff never reached us. Fetch the list; hold later diffs back.
    held_.emplace(d.pseq, std::move(d));
    phase_ = phase_kind::fetching;
    ask();
    return;
  }
  apply(d);
}

void presence_view::apply(const presence_diff& d) {
  change_tracker t(list_);
  bool consistent = true;
  std::set<std::string> rejoined;
  for (const auto* side : {&d.leaves, &d.joins}) {
    for (const auto& e : *side) {
      t.touch(e.client);
      t.touch_user(e.user);
    }
  }
  for (const auto& e : d.joins)
    rejoined.insert(e.client);
  for (const auto& e : d.leaves)
    if (!list_.erase(e.client)) consistent = false; // it leaves, but we never saw it
  for (const auto& e : d.joins) {
    if (list_.find(e.client)) consistent = false; // it joins, but we have it already
    list_.insert(e);
  }
  pseq_ = d.pseq;

  // The engine turns a leaver's typing off before it leaves; in case that was missed:
  std::vector<typing_event> off;
  for (const auto& e : d.leaves) {
    if (rejoined.count(e.client)) continue;
    auto it = typing_.find(e.client);
    if (it == typing_.end()) continue;
    off.push_back(typing_event{room_, it->second, it->first, false});
    typing_.erase(it);
  }

  presence_event ev;
  ev.room = room_;
  ev.kind = presence_event_kind::diff;
  ev.pseq = pseq_;
  t.finish(ev);
  ev.view = this;
  for (const auto& o : off)
    sink_.typing_changed(o);
  sink_.presence_changed(ev);
  if (!consistent && phase_ == phase_kind::live) {
    // The diff does not fit our list: it is wrong somehow. Fetch it again.
    phase_ = phase_kind::fetching;
    ask();
  }
}

void presence_view::on_fetched(std::uint64_t pseq, std::vector<presence_entry> members) {
  if (phase_ != phase_kind::fetching || !asked_) return; // stale
  asked_ = false;
  phase_ = phase_kind::live;
  // Diffs up to `pseq` are in the list already; the next one expected is pseq + 1.
  replace(presence_event_kind::resynced, pseq, std::move(members));
  drain();
}

void presence_view::drain() {
  while (phase_ == phase_kind::live && !held_.empty()) {
    auto it = held_.begin();
    if (it->first <= pseq_) {
      held_.erase(it);
    } else if (it->first == pseq_ + 1) {
      presence_diff d = std::move(it->second);
      held_.erase(it);
      apply(d);
    } else {
      phase_ = phase_kind::fetching; // another hole
      ask();
    }
  }
}

void presence_view::on_fetch_failed() {
  if (phase_ != phase_kind::fetching) return;
  asked_ = false; // the next diff asks again
}

void presence_view::ask() {
  if (asked_) return;
  asked_ = true;
  ++fetches_;
  sink_.fetch_presence(room_);
}

void presence_view::on_typing(const typing_event& t) {
  if (t.on) {
    auto [it, added] = typing_.try_emplace(t.client, t.user);
    if (!added) {
      if (it->second == t.user) return; // no change
      it->second = t.user;
    }
  } else if (!typing_.erase(t.client)) {
    return; // was not typing
  }
  typing_event ev = t;
  ev.room = room_;
  sink_.typing_changed(ev);
}

void presence_view::clear_typing_of_gone() {
  for (auto it = typing_.begin(); it != typing_.end();) {
    if (list_.find(it->first)) {
      ++it;
      continue;
    }
    typing_event ev{room_, it->second, it->first, false};
    it = typing_.erase(it);
    sink_.typing_changed(ev);
  }
}

void presence_view::on_connection_lost() {
  phase_ = phase_kind::idle;
  asked_ = false;
  held_.clear();
  auto typers = std::move(typing_);
  typing_.clear();
  for (const auto& [client, user] : typers)
    sink_.typing_changed(typing_event{room_, user, client, false});
}

std::vector<std::string> presence_view::typing_users() const {
  std::set<std::string> users;
  for (const auto& [client, user] : typing_)
    users.insert(user);
  return {users.begin(), users.end()};
}

presence_snapshot presence_view::snapshot() const {
  presence_snapshot s;
  s.room = room_;
  s.pseq = pseq_;
  s.members = list_;
  s.typing = typing_;
  return s;
}

// --- decoding ------------------------------------------------------------------------------

std::optional<std::vector<presence_entry>> parse_presence_entries(const msgpack::object& arr) {
  if (arr.type != msgpack::type::ARRAY) return std::nullopt;
  std::vector<presence_entry> out;
  out.reserve(arr.via.array.size);
  for (std::uint32_t i = 0; i < arr.via.array.size; ++i) {
    auto e = parse_entry(arr.via.array.ptr[i]);
    if (!e) return std::nullopt;
    out.push_back(std::move(*e));
  }
  return out;
}

std::optional<presence_diff> parse_pdiff(const reply& r) {
  auto m = r.map();
  auto room = m.str("room");
  auto pseq = m.u64("pseq");
  if (!room || !pseq) return std::nullopt;
  presence_diff d;
  d.room = std::string(*room);
  d.pseq = *pseq;
  auto joins = entries_at(r, "joins");
  auto leaves = entries_at(r, "leaves");
  if (!joins || !leaves) return std::nullopt;
  d.joins = std::move(*joins);
  d.leaves = std::move(*leaves);
  return d;
}

std::optional<presence_snapshot> parse_presence(const reply& r) {
  auto m = r.map();
  auto pseq = m.u64("pseq");
  if (!pseq) return std::nullopt;
  auto members = entries_at(r, "members");
  if (!members) return std::nullopt;
  presence_snapshot s;
  s.room = std::string(m.str("room").value_or(""));
  s.pseq = *pseq;
  for (auto& e : *members)
    s.members.insert(std::move(e));
  return s;
}

std::optional<typing_event> parse_typing(const reply& r) {
  auto m = r.map();
  auto room = m.str("room");
  auto on = m.boolean("on");
  auto client = m.id_string("client");
  if (!room || !on || !client) return std::nullopt;
  typing_event t;
  t.room = std::string(*room);
  t.client = std::move(*client);
  t.user = m.id_string("user").value_or("");
  t.on = *on;
  return t;
}

} // namespace troupe::client
