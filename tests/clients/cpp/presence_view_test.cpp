// The presence view's pure logic, without an engine: snapshots, diffs in pseq order, holes
// found and repaired by a fetch, grouping by user, typing, and decoding of the pushes.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "clients/cpp/decode.hpp"
#include "clients/cpp/map_writer.hpp"
#include "clients/cpp/presence_view.hpp"

using namespace troupe::client;

namespace {

struct recorder : presence_view::sink {
  std::vector<presence_event> events;
  std::vector<typing_event> typing;
  int fetches = 0;
  void presence_changed(const presence_event& ev) override {
    events.push_back(ev);
    events.back().view = nullptr;
  }
  void typing_changed(const typing_event& ev) override { typing.push_back(ev); }
  void fetch_presence(const std::string&) override { ++fetches; }
};

presence_entry entry(std::string client, std::string user, std::map<std::string, int> state = {}) {
  presence_entry e;
  e.client = std::move(client);
  e.user = std::move(user);
  e.name = e.user;
  if (!state.empty()) e.state = value::from(state);
  return e;
}

presence_diff diff(std::uint64_t pseq, std::vector<presence_entry> joins,
                   std::vector<presence_entry> leaves = {}) {
  presence_diff d;
  d.room = "r";
  d.pseq = pseq;
  d.joins = std::move(joins);
  d.leaves = std::move(leaves);
  return d;
}

std::vector<std::string> clients_of(const std::vector<presence_entry>& es) {
  std::vector<std::string> v;
  for (const auto& e : es)
    v.push_back(e.client);
  return v;
}

std::vector<std::string> clients_of(const presence_list& l) {
  std::vector<std::string> v;
  for (const auto& [c, e] : l.by_client())
    v.push_back(c);
  return v;
}

using strings = std::vector<std::string>;
using int_map = std::map<std::string, int>;
using str_map = std::map<std::string, std::string>;

} // namespace

TEST(PresenceView, SnapshotGroupsByUser) {
  recorder r;
  presence_view v("r", r);
  EXPECT_EQ(v.phase(), presence_view::phase_kind::idle);
  v.on_subscribed(4, {entry("c1", "alice"), entry("c2", "bob"), entry("c3", "alice")}, "c2");
  EXPECT_EQ(v.phase(), presence_view::phase_kind::live);
  EXPECT_EQ(v.pseq(), 4u);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, presence_event_kind::snapshot);
  EXPECT_EQ(r.events[0].pseq, 4u);
  EXPECT_EQ(clients_of(r.events[0].joined), (strings{"c1", "c2", "c3"}));
  EXPECT_EQ(r.events[0].users_joined, (strings{"alice", "bob"}));
  EXPECT_EQ(v.list().size(), 3u);
  EXPECT_EQ(v.list().users(), (strings{"alice", "bob"}));
  EXPECT_EQ(v.list().tabs("alice"), 2u);
  EXPECT_EQ(v.list().tabs("bob"), 1u);
  EXPECT_EQ(v.list().tabs("carol"), 0u);
  ASSERT_EQ(v.list().entries_of("alice").size(), 2u);
  EXPECT_EQ(v.list().entries_of("alice")[1]->client, "c3");
  ASSERT_NE(v.self(), nullptr);
  EXPECT_EQ(v.self()->user, "bob");
}

TEST(PresenceView, DiffsApplyInOrderAndOldOnesAreIgnored) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(1, {entry("c1", "alice")});
  v.on_diff(diff(2, {entry("c2", "bob")}));
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[1].kind, presence_event_kind::diff);
  EXPECT_EQ(r.events[1].pseq, 2u);
  EXPECT_EQ(clients_of(r.events[1].joined), (strings{"c2"}));
  EXPECT_EQ(r.events[1].users_joined, (strings{"bob"}));

  // A second tab of bob: a connection joined, but no user came online.
  v.on_diff(diff(3, {entry("c3", "bob")}));
  EXPECT_EQ(clients_of(r.events[2].joined), (strings{"c3"}));
  EXPECT_TRUE(r.events[2].users_joined.empty());
  EXPECT_EQ(v.list().tabs("bob"), 2u);

  // One tab closes: bob stays online. The other: bob leaves.
  v.on_diff(diff(4, {}, {entry("c2", "bob")}));
  EXPECT_EQ(clients_of(r.events[3].left), (strings{"c2"}));
  EXPECT_TRUE(r.events[3].users_left.empty());
  v.on_diff(diff(5, {}, {entry("c3", "bob")}));
  EXPECT_EQ(r.events[4].users_left, (strings{"bob"}));
  EXPECT_FALSE(v.list().online("bob"));

  // Repeated and old diffs change nothing.
  v.on_diff(diff(5, {entry("c9", "zed")}));
  v.on_diff(diff(2, {entry("c9", "zed")}));
  EXPECT_EQ(r.events.size(), 5u);
  EXPECT_EQ(v.pseq(), 5u);
  EXPECT_EQ(clients_of(v.list()), (strings{"c1"}));
  EXPECT_EQ(r.fetches, 0);
}

TEST(PresenceView, StateChangeIsAnUpdate) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(7, {entry("c1", "alice"), entry("c2", "bob")});
  v.on_diff(diff(8, {entry("c2", "bob", {{"away", 1}})}, {entry("c2", "bob")}));
  ASSERT_EQ(r.events.size(), 2u);
  const auto& ev = r.events[1];
  EXPECT_TRUE(ev.joined.empty());
  EXPECT_TRUE(ev.left.empty());
  ASSERT_EQ(ev.updated.size(), 1u);
  EXPECT_EQ(ev.updated[0].client, "c2");
  EXPECT_EQ(ev.updated[0].state.as<int_map>().at("away"), 1);
  EXPECT_TRUE(ev.users_joined.empty());
  EXPECT_TRUE(ev.users_left.empty());
  EXPECT_EQ(v.list().find("c2")->state.as<int_map>().at("away"), 1);
  EXPECT_EQ(r.fetches, 0);
}

TEST(PresenceView, ReconnectDiffKeepsTheUserOnline) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(1, {entry("c1", "alice"), entry("old", "bob")});
  v.on_diff(diff(2, {entry("new", "bob")}, {entry("old", "bob")}));
  const auto& ev = r.events.back();
  EXPECT_EQ(clients_of(ev.joined), (strings{"new"}));
  EXPECT_EQ(clients_of(ev.left), (strings{"old"}));
  EXPECT_TRUE(ev.users_joined.empty());
  EXPECT_TRUE(ev.users_left.empty());
  EXPECT_EQ(v.list().tabs("bob"), 1u);
}

TEST(PresenceView, HoleFetchesAndHoldsLaterDiffs) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(1, {entry("c1", "alice")});
  // Diff 2 (bob joins) is lost; 3 (carol joins) shows the hole.
  v.on_diff(diff(3, {entry("c3", "carol")}));
  EXPECT_EQ(v.phase(), presence_view::phase_kind::fetching);
  EXPECT_EQ(r.fetches, 1);
  EXPECT_EQ(r.events.size(), 1u); // nothing applied across the hole
  v.on_diff(diff(4, {entry("c4", "dave")}));
  v.on_diff(diff(5, {}, {entry("c1", "alice")}));
  EXPECT_EQ(r.fetches, 1); // one fetch at a time
  EXPECT_EQ(v.held(), 3u);

  // The list as of pseq 4 (2, 3 and 4 applied); 5 still to apply after it.
  v.on_fetched(
      4, {entry("c1", "alice"), entry("c2", "bob"), entry("c3", "carol"), entry("c4", "dave")});
  EXPECT_EQ(v.phase(), presence_view::phase_kind::live);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[1].kind, presence_event_kind::resynced);
  EXPECT_EQ(r.events[1].pseq, 4u);
  EXPECT_EQ(clients_of(r.events[1].joined), (strings{"c2", "c3", "c4"}));
  EXPECT_EQ(r.events[2].kind, presence_event_kind::diff);
  EXPECT_EQ(r.events[2].pseq, 5u);
  EXPECT_EQ(clients_of(v.list()), (strings{"c2", "c3", "c4"}));
  EXPECT_EQ(v.pseq(), 5u);
  EXPECT_EQ(v.held(), 0u);

  v.on_diff(diff(6, {entry("c6", "erin")}));
  EXPECT_EQ(v.pseq(), 6u);
  EXPECT_EQ(r.fetches, 1);
}

TEST(PresenceView, FetchedListNewerThanTheHeldDiffsIgnoresThem) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(1, {entry("c1", "alice")});
  v.on_diff(diff(3, {entry("c3", "carol")}));
  // The engine promised the pending diff 4 to this fetch: 4 is never sent; 5 is next.
  v.on_fetched(4, {entry("c1", "alice"), entry("c3", "carol"), entry("c4", "dave")});
  EXPECT_EQ(v.pseq(), 4u);
  EXPECT_EQ(v.held(), 0u);
  v.on_diff(diff(4, {entry("zz", "ghost")})); // ignored if it came anyway
  v.on_diff(diff(5, {entry("c5", "erin")}));
  EXPECT_EQ(v.pseq(), 5u);
  EXPECT_EQ(clients_of(v.list()), (strings{"c1", "c3", "c4", "c5"}));
  EXPECT_EQ(r.fetches, 1);
}

TEST(PresenceView, AHoleAmongTheHeldDiffsFetchesAgain) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(1, {});
  v.on_diff(diff(3, {entry("c3", "carol")}));
  v.on_diff(diff(7, {entry("c7", "gus")}));
  v.on_fetched(4, {entry("c3", "carol")});
  EXPECT_EQ(v.phase(), presence_view::phase_kind::fetching); // 5 and 6 are missing too
  EXPECT_EQ(r.fetches, 2);
  v.on_fetched(7, {entry("c3", "carol"), entry("c7", "gus")});
  EXPECT_EQ(v.phase(), presence_view::phase_kind::live);
  EXPECT_EQ(v.pseq(), 7u);
}

TEST(PresenceView, FailedFetchIsRetriedByTheNextDiff) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(1, {});
  v.on_diff(diff(3, {}));
  EXPECT_EQ(r.fetches, 1);
  v.on_fetch_failed();
  EXPECT_EQ(v.phase(), presence_view::phase_kind::fetching);
  v.on_diff(diff(4, {}));
  EXPECT_EQ(r.fetches, 2);
  v.on_fetched(4, {entry("c1", "a")});
  EXPECT_EQ(v.phase(), presence_view::phase_kind::live);
  EXPECT_EQ(v.pseq(), 4u);
}

TEST(PresenceView, ADiffThatDoesNotFitTheListFetchesIt) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(1, {entry("c1", "alice")});
  v.on_diff(diff(2, {}, {entry("cx", "who")})); // leaves, but was never here
  EXPECT_EQ(v.phase(), presence_view::phase_kind::fetching);
  EXPECT_EQ(r.fetches, 1);
  v.on_fetched(2, {entry("c1", "alice")});
  v.on_diff(diff(3, {entry("c1", "alice")})); // joins, but is here already
  EXPECT_EQ(r.fetches, 2);
}

TEST(PresenceView, TypingChangesAndClearsWithLeaves) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(1, {entry("c1", "alice"), entry("c2", "bob"), entry("c3", "bob")});
  v.on_typing({"r", "bob", "c2", true});
  v.on_typing({"r", "bob", "c2", true}); // no change
  v.on_typing({"r", "bob", "c3", true});
  v.on_typing({"r", "alice", "c1", true});
  EXPECT_EQ(r.typing.size(), 3u);
  EXPECT_EQ(v.typing_users(), (strings{"alice", "bob"}));
  v.on_typing({"r", "alice", "c1", false});
  v.on_typing({"r", "alice", "c1", false}); // no change
  EXPECT_EQ(r.typing.size(), 4u);
  EXPECT_FALSE(r.typing.back().on);
  EXPECT_EQ(v.typing_users(), (strings{"bob"}));

  // c2 leaves while typing (its off was missed): cleared. c3's state change keeps it typing.
  v.on_diff(diff(2, {entry("c3", "bob", {{"s", 1}})}, {entry("c2", "bob"), entry("c3", "bob")}));
  ASSERT_EQ(r.typing.size(), 5u);
  EXPECT_EQ(r.typing.back().client, "c2");
  EXPECT_FALSE(r.typing.back().on);
  EXPECT_EQ(v.typing().size(), 1u);
  EXPECT_EQ(v.typing().count("c3"), 1u);

  // A lost connection clears every indicator.
  v.on_connection_lost();
  EXPECT_TRUE(v.typing().empty());
  ASSERT_EQ(r.typing.size(), 6u);
  EXPECT_EQ(r.typing.back().client, "c3");
  EXPECT_FALSE(r.typing.back().on);
}

TEST(PresenceView, ResubscriptionRebuildsAndReportsOnlyTheDifference) {
  recorder r;
  presence_view v("r", r);
  v.on_subscribed(3, {entry("c1", "alice"), entry("me1", "me")}, "me1");
  v.on_connection_lost();
  EXPECT_EQ(v.phase(), presence_view::phase_kind::idle);
  v.on_diff(diff(4, {entry("c9", "zed")})); // ignored while idle
  EXPECT_EQ(r.events.size(), 1u);
  EXPECT_EQ(v.list().size(), 2u); // kept until the next snapshot

  v.on_subscribed(9, {entry("c1", "alice"), entry("c2", "bob"), entry("me2", "me")}, "me2");
  ASSERT_EQ(r.events.size(), 2u);
  const auto& ev = r.events[1];
  EXPECT_EQ(ev.kind, presence_event_kind::snapshot);
  EXPECT_EQ(clients_of(ev.joined), (strings{"c2", "me2"}));
  EXPECT_EQ(clients_of(ev.left), (strings{"me1"}));
  EXPECT_EQ(ev.users_joined, (strings{"bob"}));
  EXPECT_TRUE(ev.users_left.empty());
  EXPECT_EQ(v.pseq(), 9u);
  EXPECT_EQ(v.self()->client, "me2");
  v.on_diff(diff(10, {}, {entry("c1", "alice")}));
  EXPECT_EQ(v.pseq(), 10u);
}

TEST(PresenceDecode, PdiffPresenceAndTypingWithUnknownKeys) {
  map_writer w("pdiff");
  w.str("room", "r").u64("pseq", 12).str("future", "ignored");
  {
    auto& pk = w.begin("joins");
    pk.pack_array(1);
    pk.pack_map(5);
    pk.pack(std::string("client"));
    pk.pack(std::string("c1"));
    pk.pack(std::string("user"));
    pk.pack(std::string("alice"));
    pk.pack(std::string("name"));
    pk.pack(std::string("Alice"));
    pk.pack(std::string("state"));
    pk.pack(std::map<std::string, std::string>{{"status", "away"}});
    pk.pack(std::string("extra"));
    pk.pack(1);
  }
  {
    auto& pk = w.begin("leaves");
    pk.pack_array(1);
    pk.pack_map(2);
    pk.pack(std::string("client"));
    pk.pack(std::string("c1"));
    pk.pack(std::string("user"));
    pk.pack(std::string("alice"));
  }
  std::vector<reply> maps;
  ASSERT_TRUE(split_frame(w.finish(), maps));
  auto d = parse_pdiff(maps.at(0));
  std::weak_ptr<const msgpack::object_handle> frame = maps.at(0).handle();
  maps.clear();
  EXPECT_TRUE(frame.expired()); // the entries own copies: they do not pin the frame
  ASSERT_TRUE(d);
  EXPECT_EQ(d->room, "r");
  EXPECT_EQ(d->pseq, 12u);
  ASSERT_EQ(d->joins.size(), 1u);
  EXPECT_EQ(d->joins[0].name, std::optional<std::string>("Alice"));
  EXPECT_EQ(d->joins[0].state.as<str_map>().at("status"), "away");
  ASSERT_EQ(d->leaves.size(), 1u);
  EXPECT_FALSE(d->leaves[0].name.has_value());
  EXPECT_TRUE(d->leaves[0].state.is_nil());

  map_writer p("presence");
  p.u64("id", 3).str("room", "r").u64("pseq", 2);
  {
    auto& pk = p.begin("members");
    pk.pack_array(2);
    for (const char* c : {"a", "b"}) {
      pk.pack_map(2);
      pk.pack(std::string("client"));
      pk.pack(std::string(c));
      pk.pack(std::string("user"));
      pk.pack(std::string("u"));
    }
  }
  maps.clear();
  ASSERT_TRUE(split_frame(p.finish(), maps));
  auto s = parse_presence(maps.at(0));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->pseq, 2u);
  EXPECT_EQ(s->members.tabs("u"), 2u);

  map_writer t("typing");
  t.str("room", "r").str("user", "u").str("client", "c").boolean("on", true);
  maps.clear();
  ASSERT_TRUE(split_frame(t.finish(), maps));
  auto ty = parse_typing(maps.at(0));
  ASSERT_TRUE(ty);
  EXPECT_TRUE(ty->on);
  EXPECT_EQ(ty->client, "c");

  // Malformed: members not an array, an entry without client.
  map_writer bad("pdiff");
  bad.str("room", "r").u64("pseq", 1).str("joins", "nope");
  maps.clear();
  ASSERT_TRUE(split_frame(bad.finish(), maps));
  EXPECT_FALSE(parse_pdiff(maps.at(0)));
}
