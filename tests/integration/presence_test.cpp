// Presence, typing and liveness through a real engine: diffs in pseq order, tabs grouped by
// user, typing fan-out and lapse, leaving after an abrupt drop or a silent peer, reconnects
// within the grace period, holes in pseq, and the requests' refusals. Every wait is bounded
// and waits for an event, never for time to pass.
#include <algorithm>
#include <map>
#include <string>

#include "clients/cpp/map_writer.hpp"
#include "raw_ws.hpp"
#include "support.hpp"

namespace troupe::test {
namespace {

using client::client_error;
using client::connection_state;
using client::presence_event;
using client::presence_event_kind;
using client::presence_snapshot;
using client::typing_event;
using Strings = std::vector<std::string>;
using StrMap = std::map<std::string, std::string>;

constexpr const char* kRoom = "pres";

struct Member {
  std::unique_ptr<blocking_connection> c;
  std::string id;   // its connection's client id
  std::string sync; // the `sync` value of its state that settled it (see Presence::member)
  blocking_connection* operator->() const { return c.get(); }
};

Strings clients_of(const std::vector<client::presence_entry>& es) {
  Strings v;
  for (const auto& e : es)
    v.push_back(e.client);
  std::sort(v.begin(), v.end());
  return v;
}

Strings clients_of(const client::presence_list& l) {
  Strings v;
  for (const auto& [c, e] : l.by_client())
    v.push_back(c);
  return v;
}

std::string state_field(const client::presence_entry* e, const std::string& key) {
  if (!e || e->state.type() != msgpack::type::MAP) return "";
  auto m = e->state.as<StrMap>();
  auto it = m.find(key);
  return it == m.end() ? "" : it->second;
}

// The next presence event that is not a snapshot (a diff, or a resync).
presence_event next_change(blocking_connection& c, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto ev = c.next_presence(std::max(left, 0ms));
    if (!ev) throw std::runtime_error("no presence change in time");
    if (ev->kind != presence_event_kind::snapshot) return *ev;
  }
}

typing_event next_typing(blocking_connection& c, std::chrono::milliseconds timeout = 10s) {
  auto ev = c.next_typing(timeout);
  if (!ev) throw std::runtime_error("no typing event in time");
  return *ev;
}

class Presence : public EngineTest {
protected:
  // A connected client of `user`, subscribed to `room` (unless empty) and, if `settle`,
  // settled: it has seen its own state change `sync` come back in a diff, so every later
  // event the test waits for is past its arrival. Each attempt waits for an event, never
  // for time.
  Member member(const std::string& user, const std::string& room = kRoom, bool settle = true) {
    Member m;
    m.c = std::make_unique<blocking_connection>(options_for(engine(), user));
    m.id = m.c->connect().client;
    if (room.empty()) return m;
    m.c->subscribe(room);
    if (!settle) return m;
    for (int k = 1; k <= 20; ++k) {
      m.sync = std::to_string(k);
      m.c->set_state(room, value::from(StrMap{{"sync", m.sync}}));
      try {
        m.c->wait_view(
            room,
            [&](const presence_snapshot& s) {
              return state_field(s.members.find(m.id), "sync") == m.sync;
            },
            500ms);
        return m;
      } catch (const client_error&) {
        // that state change went into the window that carried its arrival: again
      }
    }
    throw std::runtime_error(user + " never heard a diff after its snapshot");
  }

  // Waits until `observer` sees each of `others` as settled, then forgets its queued events.
  static presence_snapshot quiet(Member& observer, std::initializer_list<const Member*> others) {
    auto v = observer->wait_view(kRoom, [&](const presence_snapshot& s) {
      for (const auto* o : others)
        if (state_field(s.members.find(o->id), "sync") != o->sync) return false;
      return true;
    });
    while (observer->next_presence(0ms)) {}
    while (observer->next_typing(0ms)) {}
    return v;
  }
};

TEST_F(Presence, JoinStateAndLeaveAreDiffsNumberedOneByOne) {
  auto a = member("alice");
  auto snap = a->next_presence();
  ASSERT_TRUE(snap);
  EXPECT_EQ(snap->kind, presence_event_kind::snapshot);
  EXPECT_EQ(clients_of(snap->joined), Strings{a.id});
  EXPECT_EQ(snap->users_joined, Strings{"alice"});
  auto first = quiet(a, {&a});
  EXPECT_EQ(clients_of(first.members), Strings{a.id});
  const auto p0 = first.pseq;

  auto b = member("bob", kRoom, /*settle=*/false);
  auto bv = b->view(kRoom);
  EXPECT_EQ(bv.members.users(), (Strings{"alice", "bob"}));
  EXPECT_EQ(bv.members.find(b.id)->name, std::optional<std::string>("bob"));

  auto join = next_change(*a.c);
  EXPECT_EQ(join.kind, presence_event_kind::diff);
  EXPECT_EQ(join.pseq, p0 + 1);
  EXPECT_EQ(clients_of(join.joined), Strings{b.id});
  EXPECT_EQ(join.users_joined, Strings{"bob"});
  EXPECT_TRUE(join.left.empty());
  // bob's snapshot is the version before the diff that carries its arrival; bob gets that
  // diff too, without its own arrival.
  EXPECT_EQ(bv.pseq + 1, join.pseq);

  b->set_state(kRoom, value::from(StrMap{{"status", "away"}}));
  auto change = next_change(*a.c);
  EXPECT_EQ(change.pseq, p0 + 2);
  ASSERT_EQ(clients_of(change.updated), Strings{b.id});
  EXPECT_EQ(state_field(&change.updated[0], "status"), "away");
  EXPECT_TRUE(change.joined.empty());
  EXPECT_TRUE(change.left.empty());
  EXPECT_TRUE(change.users_joined.empty() && change.users_left.empty());
  // bob gets the diff that carried its arrival, without it, and then its own state change.
  auto arrival = next_change(*b.c);
  EXPECT_EQ(arrival.pseq, p0 + 1);
  EXPECT_TRUE(arrival.joined.empty() && arrival.left.empty());
  auto own = next_change(*b.c);
  EXPECT_EQ(own.pseq, p0 + 2);
  EXPECT_EQ(state_field(b->view(kRoom).members.find(b.id), "status"), "away");

  b->unsubscribe(kRoom);
  auto leave = next_change(*a.c);
  EXPECT_EQ(leave.pseq, p0 + 3);
  EXPECT_EQ(clients_of(leave.left), Strings{b.id});
  EXPECT_EQ(leave.users_left, Strings{"bob"});
  auto av = a->view(kRoom);
  EXPECT_EQ(av.pseq, p0 + 3);
  EXPECT_EQ(clients_of(av.members), Strings{a.id});
  EXPECT_EQ(a->queued_presence(), 0u);
  EXPECT_EQ(b->view(kRoom).pseq, p0 + 2); // the unsubscribed view stays as it was
}

TEST_F(Presence, TwoConnectionsOfOneUserAreTwoEntriesOneUser) {
  auto tab1 = member("alice");
  auto tab2 = member("alice");
  auto bob = member("bob");
  auto v = quiet(bob, {&tab1, &tab2, &bob});
  EXPECT_EQ(v.members.users(), (Strings{"alice", "bob"}));
  EXPECT_EQ(v.members.tabs("alice"), 2u);
  EXPECT_EQ(v.members.tabs("bob"), 1u);
  Strings alice_clients;
  for (const auto* e : v.members.entries_of("alice"))
    alice_clients.push_back(e->client);
  Strings expected{tab1.id, tab2.id};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(alice_clients, expected);
  EXPECT_NE(tab1.id, tab2.id);

  // Closing one tab: one entry leaves, the user stays online.
  tab2->close();
  auto ev = next_change(*bob.c);
  EXPECT_EQ(clients_of(ev.left), Strings{tab2.id});
  EXPECT_TRUE(ev.users_left.empty());
  auto after = bob->view(kRoom);
  EXPECT_EQ(after.members.tabs("alice"), 1u);
  EXPECT_TRUE(after.members.online("alice"));

  // The last tab: the user goes.
  tab1->unsubscribe(kRoom);
  auto gone = next_change(*bob.c);
  EXPECT_EQ(gone.users_left, Strings{"alice"});
  EXPECT_FALSE(bob->view(kRoom).members.online("alice"));
}

TEST_F(Presence, TypingFansOutToOthersAndLapsesAfterSixSeconds) {
  auto a = member("alice");
  auto b = member("bob");
  auto c = member("carol");

  a->typing(kRoom, true);
  for (auto* who : {b.c.get(), c.c.get()}) {
    auto on = next_typing(*who);
    EXPECT_TRUE(on.on);
    EXPECT_EQ(on.user, "alice");
    EXPECT_EQ(on.client, a.id);
    EXPECT_EQ(on.room, kRoom);
  }
  EXPECT_EQ(b->view(kRoom).typing, (StrMap{{a.id, "alice"}}));

  // An explicit stop.
  a->typing(kRoom, false);
  EXPECT_FALSE(next_typing(*b.c).on);
  EXPECT_TRUE(b->view(kRoom).typing.empty());

  // No refresh: it lapses by itself (the engine's lapse is 6 s; wait at most 9).
  a->typing(kRoom, true);
  auto on = next_typing(*b.c);
  ASSERT_TRUE(on.on);
  const auto t0 = std::chrono::steady_clock::now();
  auto off = next_typing(*b.c, 9s);
  EXPECT_FALSE(off.on);
  EXPECT_EQ(off.client, a.id);
  // Not a stop for some other reason: it came after most of the lapse had passed.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 4s);
  EXPECT_TRUE(b->view(kRoom).typing.empty());

  // Typing is not echoed to the typer.
  EXPECT_FALSE(a->next_typing(0ms).has_value());
}

TEST_F(Presence, AMemberThatLeavesWhileTypingStopsTyping) {
  auto a = member("alice");
  auto b = member("bob");
  quiet(a, {&b});
  b->typing(kRoom, true);
  ASSERT_TRUE(next_typing(*a.c).on);
  b->unsubscribe(kRoom);
  auto off = next_typing(*a.c);
  EXPECT_FALSE(off.on);
  EXPECT_EQ(off.client, b.id);
  auto left = next_change(*a.c);
  EXPECT_EQ(clients_of(left.left), Strings{b.id});
  EXPECT_TRUE(a->view(kRoom).typing.empty());
}

TEST_F(Presence, PresenceIsReadableWithoutASubscription) {
  auto a = member("alice");
  auto b = member("bob");
  auto av = quiet(a, {&a, &b});
  auto outsider = member("eve", "");
  auto p = outsider->presence(kRoom);
  EXPECT_EQ(p.room, kRoom);
  EXPECT_EQ(clients_of(p.members), clients_of(av.members));
  EXPECT_FALSE(p.members.online("eve"));
  auto empty = outsider->presence("nobody-here");
  EXPECT_TRUE(empty.members.empty());
}

TEST_F(Presence, StateRequestsAreRefusedWhenTooLargeOrNotSubscribed) {
  auto a = member("alice");
  // `state` is a map of at most 1 KiB encoded: {"s": <1018 chars>} is exactly 1024 bytes.
  a->set_state(kRoom, value::from(StrMap{{"s", std::string(1018, 'x')}}));
  try {
    a->set_state(kRoom, value::from(StrMap{{"s", std::string(1019, 'x')}}));
    ADD_FAILURE() << "a 1025-byte state was accepted";
  } catch (const client_error& e) {
    EXPECT_EQ(e.code(), "too_large") << e.what();
  }
  try {
    a->set_state("not-subscribed", value::from(StrMap{{"status", "x"}}));
    ADD_FAILURE() << "pset without a subscription was accepted";
  } catch (const client_error& e) {
    EXPECT_EQ(e.code(), "not_subscribed") << e.what();
  }
  try {
    a->set_state(kRoom, value::from(std::string("not a map")));
    ADD_FAILURE() << "a state that is not a map was accepted";
  } catch (const client_error& e) {
    EXPECT_EQ(e.code(), "bad_request") << e.what();
  }
  // The accepted one is what the others see.
  auto b = member("bob");
  auto v = b->view(kRoom);
  EXPECT_EQ(state_field(v.members.find(a.id), "s").size(), 1018u);
  a->ping(); // still connected
}

TEST_F(Presence, TypingWithoutASubscriptionIsAnErrorWithoutId) {
  RawWs raw(engine().port());
  raw.hello("raw");
  client::map_writer w("typing");
  w.str("room", "elsewhere").boolean("on", true);
  raw.send_binary(w.finish());
  auto f = raw.read(5s);
  ASSERT_FALSE(f.closed) << f.close_code;
  ASSERT_EQ(f.maps.size(), 1u);
  auto m = f.maps[0].map();
  EXPECT_EQ(m.str("t"), "error");
  EXPECT_EQ(m.str("code"), "not_subscribed");
  EXPECT_FALSE(m.has("id"));

  // Through the client library: an error that belongs to no request.
  auto a = member("alice", "");
  a->typing("elsewhere", true);
  auto e = a->wait_error("not_subscribed", 5s);
  ASSERT_TRUE(e.has_value());
  a->ping();
}

TEST_F(Presence, AMissedDiffIsFoundByItsPseqAndTheViewResyncs) {
  auto a = member("alice");
  auto watcher = member("walt");
  quiet(a, {&watcher});
  a->drop_next_pdiffs(kRoom, 1);

  // bob's arrival never reaches alice's view; the diff after it shows her the hole.
  auto b = member("bob");
  b.sync = "again"; // a change after the missed diff
  b->set_state(kRoom, value::from(StrMap{{"sync", b.sync}}));
  auto wv = quiet(watcher, {&b});
  auto av = a->wait_view(kRoom, [&](const presence_snapshot& s) {
    return state_field(s.members.find(b.id), "sync") == b.sync;
  });
  EXPECT_EQ(clients_of(av.members), clients_of(wv.members));
  EXPECT_EQ(av.members.users(), (Strings{"alice", "bob", "walt"}));
  EXPECT_EQ(av.pseq, wv.pseq);

  bool resynced = false;
  while (auto ev = a->next_presence(0ms))
    if (ev->kind == presence_event_kind::resynced) resynced = true;
  EXPECT_TRUE(resynced) << "the hole was not reported as a resync";

  // After the resync diffs apply one by one again, and the views agree.
  b->unsubscribe(kRoom);
  auto leave = next_change(*a.c);
  EXPECT_EQ(leave.kind, presence_event_kind::diff);
  EXPECT_EQ(leave.pseq, av.pseq + 1);
  EXPECT_EQ(clients_of(leave.left), Strings{b.id});
  EXPECT_EQ(a->view(kRoom).pseq, leave.pseq);
  auto wv2 =
      watcher->wait_view(kRoom, [&](const presence_snapshot& s) { return s.pseq == leave.pseq; });
  EXPECT_EQ(clients_of(a->view(kRoom).members), clients_of(wv2.members));
  auto fetched = a->presence(kRoom);
  EXPECT_EQ(clients_of(fetched.members), clients_of(a->view(kRoom).members));
}

// --- a member's view hears of every change after its snapshot, also within the 50 ms
// window that carries its own arrival ---------------------------------------------------

// Two members joining within one window: the first hears of the second.
TEST_F(Presence, AMemberJoiningInAnothersWindowIsSeenByIt) {
  auto a = member("alice", kRoom, /*settle=*/false);
  auto b = member("bob", kRoom, /*settle=*/false); // at once: inside alice's window
  a->wait_view(
      kRoom, [&](const presence_snapshot& s) { return s.members.find(b.id) != nullptr; }, 3s);
}

// A change inside a new member's window (after its snapshot, before the diff carrying its
// arrival is sealed) reaches the new member.
TEST_F(Presence, ChangesInTheJoinersWindowReachTheJoiner) {
  auto a = member("alice");
  auto b = member("bob");
  quiet(a, {&b});
  auto c = member("carol", kRoom, /*settle=*/false);
  EXPECT_TRUE(c->view(kRoom).members.find(b.id));
  b->unsubscribe(kRoom); // at once: inside carol's window
  a->wait_view(kRoom, [&](const presence_snapshot& s) { return !s.members.find(b.id); });
  c->wait_view(
      kRoom, [&](const presence_snapshot& s) { return !s.members.find(b.id); }, 3s);
}

// --- leaving: clean, abrupt, silent; reconnects -------------------------------------------

class PresenceLongGrace : public Presence {
protected:
  std::vector<std::string> extra_args() const override { return {"--grace", "30"}; }
};

TEST_F(PresenceLongGrace, CleanCloseLeavesAtOnceAnAbruptDropWaitsOutTheGrace) {
  auto a = member("alice");
  auto dropped = member("bob");
  auto closing = member("carol");
  quiet(a, {&dropped, &closing});

  dropped->drop_connection(/*reconnect=*/false);
  dropped->wait_state(connection_state::disconnected);
  closing->close();
  // carol's clean close shows well inside the 30 s grace; bob, dropped first, is still listed.
  auto ev = next_change(*a.c);
  EXPECT_EQ(clients_of(ev.left), Strings{closing.id});
  auto v = a->view(kRoom);
  EXPECT_TRUE(v.members.find(dropped.id));
  EXPECT_FALSE(v.members.find(closing.id));
}

class PresenceLiveness : public Presence {
protected:
  std::vector<std::string> extra_args() const override { return {"--grace", "1", "--ping", "1"}; }
};

TEST_F(PresenceLiveness, AnAbruptDropLeavesWithinGracePlusTwoPings) {
  auto a = member("alice");
  auto b = member("bob");
  quiet(a, {&b});
  b->typing(kRoom, true);
  ASSERT_TRUE(next_typing(*a.c).on);

  b->drop_connection(/*reconnect=*/false); // RST, no close frame
  // Its typing stops at once; its entry goes after the grace (1 s), well within 1 + 2 × 1 s.
  auto off = next_typing(*a.c);
  EXPECT_FALSE(off.on);
  EXPECT_EQ(off.client, b.id);
  auto v = a->wait_view(
      kRoom, [&](const presence_snapshot& s) { return !s.members.find(b.id); }, 1s + 2 * 1s + 3s);
  EXPECT_FALSE(v.members.online("bob"));
  auto ev = next_change(*a.c);
  EXPECT_EQ(clients_of(ev.left), Strings{b.id});
  EXPECT_EQ(ev.users_left, Strings{"bob"});
}

// A raw peer that completed the handshake and `connect`, subscribed, and then reads nothing
// (the TCP connection stays open; no pong, no close answer).
struct Ghost {
  RawWs ws;
  std::string id;
  explicit Ghost(int port) : ws(port) {
    id = ws.hello("ghost").map().id_string("client").value_or("");
    const auto sub = ws.next_id();
    client::map_writer w("sub");
    w.u64("id", sub).str("room", kRoom);
    ws.send_binary(w.finish());
    if (ws.read_reply(sub).type() != "subscribed") throw std::runtime_error("ghost not subscribed");
  }
};

TEST_F(PresenceLiveness, APeerThatStopsAnsweringPingsIsClosedWith4408AndLeaves) {
  auto a = member("alice");
  Ghost ghost(engine().port());
  ASSERT_FALSE(ghost.id.empty());
  a->wait_view(kRoom,
               [&](const presence_snapshot& s) { return s.members.find(ghost.id) != nullptr; });

  // Read below the WebSocket, so that nothing is answered: pings, then a 4408 close after
  // 2 × ping (2 s) of silence.
  const auto bytes = ghost.ws.drain_tcp_until_close(2s + 4s);
  EXPECT_EQ(RawWs::close_code_in(bytes), 4408);
  bool pinged = false;
  for (const auto& [op, payload] : RawWs::frames_in(bytes))
    if (op == 0x9) pinged = true;
  EXPECT_TRUE(pinged) << "the engine sent no WebSocket ping";

  // The entry goes once the grace (1 s) after the 4408 has passed.
  a->wait_view(
      kRoom, [&](const presence_snapshot& s) { return !s.members.find(ghost.id); }, 1s + 4s);
  EXPECT_FALSE(a->view(kRoom).members.online("ghost"));
}

// protocol.md: "a vanished client is gone at most 2 × ping + grace after its last frame"
// (the engine starts the grace when it closes the silent connection, not when the close
// handshake it will never get times out).
TEST_F(PresenceLiveness, ASilentPeerIsGoneWithinTwoPingsPlusGrace) {
  auto a = member("alice");
  Ghost ghost(engine().port()); // its last frame: the `sub`
  a->wait_view(kRoom,
               [&](const presence_snapshot& s) { return s.members.find(ghost.id) != nullptr; });
  a->wait_view(
      kRoom, [&](const presence_snapshot& s) { return !s.members.find(ghost.id); }, 2s + 1s + 2s);
}

class PresenceReconnect : public Presence {
protected:
  // Long enough for the client to come back (backoff 20–300 ms) even on a busy machine.
  std::vector<std::string> extra_args() const override { return {"--grace", "5"}; }
};

TEST_F(PresenceReconnect, ReconnectWithinTheGraceIsOneDiffAndKeepsTheState) {
  auto a = member("alice");
  auto b = member("bob");
  b->set_state(kRoom, value::from(StrMap{{"status", "busy"}}));
  a->wait_view(kRoom, [&](const presence_snapshot& s) {
    return state_field(s.members.find(b.id), "status") == "busy";
  });
  while (a->next_presence(0ms)) {}

  b->drop_connection(/*reconnect=*/true); // comes back by itself
  const auto b2 = b->wait_state(connection_state::connected).info.client;
  ASSERT_FALSE(b2.empty());
  ASSERT_NE(b2, b.id);

  // One diff: the old entry leaves and the new one joins; bob never goes offline.
  auto ev = next_change(*a.c);
  EXPECT_EQ(ev.kind, presence_event_kind::diff);
  EXPECT_EQ(clients_of(ev.left), Strings{b.id});
  EXPECT_EQ(clients_of(ev.joined), Strings{b2});
  EXPECT_TRUE(ev.users_left.empty());
  EXPECT_TRUE(ev.users_joined.empty());

  // The client sets its state again on the new connection.
  auto v = a->wait_view(kRoom, [&](const presence_snapshot& s) {
    return state_field(s.members.find(b2), "status") == "busy";
  });
  EXPECT_EQ(v.members.tabs("bob"), 1u);
  EXPECT_FALSE(v.members.find(b.id));
  while (auto more = a->next_presence(0ms))
    EXPECT_TRUE(more->users_left.empty());

  // bob's own view was rebuilt from its new subscription. Its snapshot shows the last sealed
  // diff (its pseq), which may still list the vanished entry; the diff that replaces it follows
  // within the diff window, so wait (bounded) for the view without it.
  auto bv = b->wait_view(kRoom, [&](const presence_snapshot& s) {
    return s.members.find(b2) != nullptr && s.members.find(b.id) == nullptr;
  });
  EXPECT_TRUE(bv.members.find(a.id));
  EXPECT_EQ(bv.members.tabs("bob"), 1u);
}

} // namespace
} // namespace troupe::test
