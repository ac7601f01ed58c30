// The document client's pure logic, without an engine: the OT client state machine (one
// operation in flight, a buffer behind it), acks, remote operations, recovery by rev,
// resubmission by key, conflicts, holes, remote cursors; and a randomised simulation of
// several clients against an in-test sequencer that follows the engine's rules.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "clients/cpp/document_state.hpp"
#include "core/document_sequencer.hpp"

using namespace troupe::client;
namespace ot = troupe::ot;

namespace {

ot::operation ins(std::size_t pos, std::string_view s) {
  ot::operation op;
  op.retain(pos).insert(s);
  return op;
}

ot::operation del(std::size_t pos, std::size_t n) {
  ot::operation op;
  op.retain(pos).remove(n);
  return op;
}

doc_op push(std::uint64_t rev, ot::operation op, std::string key = "other",
            std::string user = "bob") {
  return doc_op{rev, std::move(op), std::move(user), std::move(key)};
}

document_state opened(std::string_view text = "", std::uint64_t rev = 0) {
  document_state s("me");
  s.open_text(rev, "e1", text);
  return s;
}

std::optional<remote_cursor> cursor_of(const document_state& s, const std::string& client) {
  for (const auto& c : s.remote_cursors())
    if (c.client == client) return c;
  return std::nullopt;
}

// --- the state machine ----------------------------------------------------------------------

TEST(DocumentState, EditGoesInFlightThenBuffersUntilTheAck) {
  auto s = opened("abc", 4);
  EXPECT_FALSE(s.take_submit());
  ASSERT_TRUE(s.edit(ins(3, "d")));
  auto sub = s.take_submit();
  ASSERT_TRUE(sub);
  EXPECT_EQ(sub->rev, 4u);
  EXPECT_EQ(sub->op, ins(3, "d"));
  EXPECT_FALSE(s.take_submit()) << "sent once";

  ASSERT_TRUE(s.edit(ins(4, "e")));
  ASSERT_TRUE(s.edit(ins(5, "f")));
  EXPECT_TRUE(s.buffered());
  EXPECT_FALSE(s.take_submit()) << "one operation in flight at a time";
  EXPECT_EQ(s.text(), "abcdef");
  EXPECT_EQ(s.server().to_string(), "abc");

  EXPECT_EQ(s.ack("wrong-key", 5), document_state::outcome_kind::stale);
  EXPECT_EQ(s.ack(sub->key, 5), document_state::outcome_kind::acked);
  EXPECT_EQ(s.rev(), 5u);
  EXPECT_EQ(s.server().to_string(), "abcd");
  auto next = s.take_submit();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->rev, 5u);
  EXPECT_EQ(next->op, ins(4, "ef")) << "the buffer, composed";
  EXPECT_NE(next->key, sub->key);
  EXPECT_EQ(s.ack(sub->key, 5), document_state::outcome_kind::stale) << "a repeated ack";
  EXPECT_EQ(s.ack(next->key, 6), document_state::outcome_kind::acked);
  EXPECT_FALSE(s.pending());
  EXPECT_EQ(s.server().to_string(), "abcdef");
}

TEST(DocumentState, EditsThatDoNotFitAreRefused) {
  document_state never("me");
  EXPECT_FALSE(never.edit(ins(0, "x"))) << "never opened";
  auto s = opened("héllo");
  EXPECT_FALSE(s.edit(del(3, 3)));
  EXPECT_FALSE(s.edit(ins(6, "x")));
  EXPECT_TRUE(s.edit(del(3, 2)));
  EXPECT_EQ(s.text(), "hél");
  EXPECT_TRUE(s.edit(ot::operation{})) << "an empty edit is fine and sends nothing";
}

TEST(DocumentState, RemoteOpsAreTransformedOverInFlightAndBuffer) {
  auto s = opened("abc");
  ASSERT_TRUE(s.edit(ins(1, "X"))); // in flight
  auto sub = s.take_submit();
  ASSERT_TRUE(s.edit(ins(4, "!"))); // buffered: "aXbc!"
  // Someone else inserted at the same place first: ours (accepted later) goes before it.
  auto r = s.remote(push(1, ins(1, "Y")));
  ASSERT_EQ(r.outcome, document_state::outcome_kind::applied);
  EXPECT_EQ(r.local, ins(2, "Y"));
  EXPECT_EQ(s.text(), "aXYbc!");
  EXPECT_EQ(s.server().to_string(), "aYbc");
  EXPECT_EQ(s.rev(), 1u);
  // A removal that covers our buffered insert's neighbourhood.
  r = s.remote(push(2, del(0, 4))); // server "" ← "aYbc"
  ASSERT_EQ(r.outcome, document_state::outcome_kind::applied);
  EXPECT_EQ(s.text(), "X!");
  EXPECT_EQ(s.server().to_string(), "");
  EXPECT_EQ(s.ack(sub->key, 3), document_state::outcome_kind::acked);
  EXPECT_EQ(s.server().to_string(), "X");
  auto next = s.take_submit();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->rev, 3u);
  EXPECT_EQ(next->op, ins(1, "!"));
}

TEST(DocumentState, StaleHolesAndMismatches) {
  auto s = opened("abc", 10);
  EXPECT_EQ(s.remote(push(10, ins(0, "x"))).outcome, document_state::outcome_kind::stale);
  EXPECT_EQ(s.remote(push(12, ins(0, "x"))).outcome, document_state::outcome_kind::hole);
  EXPECT_EQ(s.text(), "abc") << "a hole changes nothing";
  EXPECT_EQ(s.remote(push(11, del(0, 4))).outcome, document_state::outcome_kind::mismatch);
  EXPECT_EQ(s.rev(), 10u);

  ASSERT_TRUE(s.edit(ins(0, "z")));
  auto sub = s.take_submit();
  EXPECT_EQ(s.ack(sub->key, 12), document_state::outcome_kind::hole) << "rev 11 never reached us";
  EXPECT_EQ(s.ack(sub->key, 10), document_state::outcome_kind::mismatch);
  EXPECT_TRUE(s.in_flight());
}

TEST(DocumentState, OwnOpSeenAsAPushIsItsAck) {
  auto s = opened("abc");
  ASSERT_TRUE(s.edit(ins(0, "x")));
  auto sub = s.take_submit();
  // E.g. accepted from the old connection after the new one opened.
  auto r = s.remote(push(1, ins(0, "x"), sub->key, "me"));
  EXPECT_EQ(r.outcome, document_state::outcome_kind::acked);
  EXPECT_FALSE(s.pending());
  EXPECT_EQ(s.ack(sub->key, 1), document_state::outcome_kind::stale) << "the resubmission's ack";
}

TEST(DocumentState, ReconnectResubmitsTheSameKeyAfterRecovery) {
  auto s = opened("abc", 3);
  ASSERT_TRUE(s.edit(ins(3, "d")));
  auto first = s.take_submit();
  ASSERT_TRUE(s.edit(ins(0, ">"))); // buffered
  s.connection_lost();
  // Others edited meanwhile; ours was not accepted.
  std::vector<doc_op> missed{push(4, ins(0, "1")), push(5, ins(4, "2"))};
  std::vector<std::uint64_t> heard;
  ASSERT_TRUE(s.open_recovered(
      5, "e1", missed, [&](const doc_op& op, const ot::operation&) { heard.push_back(op.rev); }));
  EXPECT_EQ(heard, (std::vector<std::uint64_t>{4, 5}));
  EXPECT_EQ(s.server().to_string(), "1abc2");
  EXPECT_EQ(s.text(), ">1abcd2") << "ours inserted at the tie goes first";
  auto again = s.take_submit();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->key, first->key);
  EXPECT_EQ(again->rev, 5u);
  EXPECT_EQ(again->op, ins(4, "d"));
}

TEST(DocumentState, RecoveryFindsOurOpAmongTheMissedOnes) {
  auto s = opened("abc", 3);
  ASSERT_TRUE(s.edit(ins(3, "d")));
  auto first = s.take_submit();
  ASSERT_TRUE(s.edit(ins(4, "e")));
  s.connection_lost();
  std::vector<doc_op> missed{push(4, ins(0, "1")), push(5, ins(4, "d"), first->key, "me"),
                             push(6, ins(0, "2"))};
  ASSERT_TRUE(s.open_recovered(6, "e1", missed));
  EXPECT_EQ(s.server().to_string(), "21abcd");
  EXPECT_EQ(s.text(), "21abcde");
  auto next = s.take_submit();
  ASSERT_TRUE(next);
  EXPECT_NE(next->key, first->key) << "the buffer is the next operation";
  EXPECT_EQ(next->rev, 6u);
  EXPECT_EQ(next->op, ins(6, "e"));
}

TEST(DocumentState, RecoveryThatDoesNotLeadToTheReplyRevFails) {
  auto s = opened("abc", 3);
  EXPECT_FALSE(s.open_recovered(5, "e1", {push(5, ins(0, "x"))})) << "rev 4 missing";
  auto t = opened("abc", 3);
  EXPECT_FALSE(t.open_recovered(5, "e1", {push(4, ins(0, "x"))})) << "stops short";
  auto u = opened("abc", 3);
  EXPECT_FALSE(u.open_recovered(4, "e2", {push(4, ins(0, "x"))})) << "another epoch";
  auto v = opened("abc", 3);
  EXPECT_TRUE(v.open_recovered(3, "e1", {})) << "nothing missed";
}

TEST(DocumentState, ConflictDropsPendingChangesAtTheFreshOpen) {
  auto s = opened("abc", 3);
  ASSERT_TRUE(s.edit(ins(0, "x")));
  auto sub = s.take_submit();
  ASSERT_TRUE(s.edit(ins(0, "y")));
  s.refused();
  s.connection_lost();
  EXPECT_FALSE(s.take_submit()) << "nothing more goes out";
  EXPECT_TRUE(s.edit(ins(0, "z"))) << "edits go on until the fresh open";
  EXPECT_TRUE(s.open_text(3, "e1", "abc")) << "pending changes were dropped, even at the same rev";
  EXPECT_EQ(s.text(), "abc");
  EXPECT_FALSE(s.pending());
  EXPECT_FALSE(s.is_refused());
  ASSERT_TRUE(s.edit(ins(0, "w")));
  EXPECT_TRUE(s.take_submit());
}

TEST(DocumentState, OpenWithTextKeepsPendingChangesOnlyWhereWeStand) {
  auto s = opened("abc", 3);
  ASSERT_TRUE(s.edit(ins(0, "x")));
  auto sub = s.take_submit();
  s.connection_lost();
  bool kept = false;
  EXPECT_FALSE(s.open_text(3, "e1", "abc", &kept)) << "nothing happened meanwhile";
  EXPECT_TRUE(kept);
  auto again = s.take_submit();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->key, sub->key);
  EXPECT_TRUE(s.open_text(9, "e2", "new", &kept)) << "a new epoch";
  EXPECT_FALSE(kept);
  EXPECT_EQ(s.text(), "new");
  EXPECT_EQ(s.epoch(), "e2");
  EXPECT_FALSE(s.take_submit());
}

TEST(DocumentState, AstralCharactersCountAsOneCodePoint) {
  auto s = opened("😀𝄞");
  ASSERT_TRUE(s.edit(ins(1, "é€")));
  EXPECT_EQ(s.text(), "😀é€𝄞");
  EXPECT_EQ(s.length(), 4u);
  auto r = s.remote(push(1, del(0, 1)));
  ASSERT_EQ(r.outcome, document_state::outcome_kind::applied);
  EXPECT_EQ(s.text(), "é€𝄞");
}

// --- cursors ---------------------------------------------------------------------------------

TEST(DocumentStateCursors, MoveWithInsertsAndArePulledToRemovals) {
  auto s = opened("abcdef");
  s.set_remote_cursor("c1", "bob", cursor_at{0, 2, std::nullopt});
  s.set_remote_cursor("c2", "eve", cursor_at{0, 4, 5});
  s.set_remote_cursor("c3", "ann", cursor_at{0, 1, std::nullopt});
  ASSERT_EQ(s.remote(push(1, ins(0, "ZZ"))).outcome,
            document_state::outcome_kind::applied); // "ZZabcdef"
  EXPECT_EQ(cursor_of(s, "c1")->pos, 4u);
  EXPECT_EQ(cursor_of(s, "c2")->pos, 6u);
  EXPECT_EQ(cursor_of(s, "c2")->anchor, 7u);
  ASSERT_EQ(s.remote(push(2, del(3, 4))).outcome, document_state::outcome_kind::applied); // "ZZaef"
  EXPECT_EQ(cursor_of(s, "c1")->pos, 3u) << "inside the removal: pulled to its start";
  EXPECT_EQ(cursor_of(s, "c2")->pos, 3u);
  EXPECT_EQ(cursor_of(s, "c2")->anchor, 3u);
  EXPECT_EQ(cursor_of(s, "c2")->user, "eve");
  ASSERT_EQ(s.remote(push(3, ins(3, "!"))).outcome, document_state::outcome_kind::applied);
  EXPECT_EQ(cursor_of(s, "c1")->pos, 3u) << "an insert exactly at the cursor leaves it";
  EXPECT_EQ(cursor_of(s, "c3")->pos, 3u);
  s.remove_remote_cursor("c3");
  EXPECT_FALSE(cursor_of(s, "c3"));
  s.set_remote_cursor("c2", "eve", std::nullopt);
  EXPECT_FALSE(cursor_of(s, "c2"));
}

TEST(DocumentStateCursors, OurAckedOpMovesThemToo) {
  auto s = opened("abc");
  s.set_remote_cursor("c1", "bob", cursor_at{0, 2, std::nullopt});
  ASSERT_TRUE(s.edit(ins(0, "xy")));
  EXPECT_EQ(cursor_of(s, "c1")->pos, 4u) << "shown in the local text";
  ASSERT_TRUE(s.edit(ins(0, "q")));
  EXPECT_EQ(cursor_of(s, "c1")->pos, 5u) << "through the buffer too";
  auto sub = s.take_submit();
  ASSERT_EQ(s.ack(sub->key, 1), document_state::outcome_kind::acked);
  EXPECT_EQ(cursor_of(s, "c1")->pos, 5u);
  // Its next state refers to rev 1, where the cursor stood at 4.
  s.set_remote_cursor("c1", "bob", cursor_at{1, 4, std::nullopt});
  EXPECT_EQ(cursor_of(s, "c1")->pos, 5u);
}

TEST(DocumentStateCursors, FutureRevsAreParkedOlderOnesTransformed) {
  auto s = opened("abcdef");
  s.set_remote_cursor("c1", "bob", cursor_at{0, 1, std::nullopt});
  s.set_remote_cursor("c1", "bob", cursor_at{2, 0, std::nullopt}); // ahead of us
  EXPECT_EQ(s.parked_cursors(), 1u);
  EXPECT_EQ(cursor_of(s, "c1")->pos, 1u) << "the previous one stays on show meanwhile";
  s.set_remote_cursor("c2", "eve", cursor_at{2, 3, std::nullopt});
  EXPECT_FALSE(cursor_of(s, "c2"));
  ASSERT_EQ(s.remote(push(1, ins(0, "12"))).outcome, document_state::outcome_kind::applied);
  EXPECT_EQ(s.parked_cursors(), 2u);
  EXPECT_EQ(cursor_of(s, "c1")->pos, 3u);
  ASSERT_EQ(s.remote(push(2, ins(0, "3"))).outcome, document_state::outcome_kind::applied);
  EXPECT_EQ(s.parked_cursors(), 0u);
  EXPECT_EQ(cursor_of(s, "c1")->pos, 0u) << "placed as given, at its revision";
  EXPECT_EQ(cursor_of(s, "c2")->pos, 3u);
  ASSERT_EQ(s.remote(push(3, ins(0, "4"))).outcome, document_state::outcome_kind::applied);
  EXPECT_EQ(cursor_of(s, "c2")->pos, 4u);
  // A state that refers to rev 1 ("12abcdef", at 'c'): moved through revs 2 and 3.
  s.set_remote_cursor("c3", "ann", cursor_at{1, 4, 6});
  EXPECT_EQ(cursor_of(s, "c3")->pos, 6u);
  EXPECT_EQ(cursor_of(s, "c3")->anchor, 8u);
}

TEST(DocumentStateCursors, TooOldForTheKeptLogIsClamped) {
  document_state s("me", 2);
  s.open_text(0, "e1", "abc");
  for (std::uint64_t r = 1; r <= 4; ++r)
    ASSERT_EQ(s.remote(push(r, ins(0, "x"))).outcome, document_state::outcome_kind::applied);
  EXPECT_EQ(s.kept_ops(), 2u);
  s.set_remote_cursor("c1", "bob", cursor_at{1, 99, std::nullopt});
  EXPECT_EQ(cursor_of(s, "c1")->pos, 7u) << "kept inside the text";
  s.set_remote_cursor("c2", "bob", cursor_at{2, 1, std::nullopt});
  EXPECT_EQ(cursor_of(s, "c2")->pos, 3u) << "revs 3 and 4 are still kept";
}

TEST(DocumentStateCursors, OwnCursorOnlyWhileNothingIsPending) {
  auto s = opened("abc", 7);
  auto c = s.own_cursor(2, 1);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->rev, 7u);
  auto st = s.cursor_state(2, 1);
  ASSERT_TRUE(st);
  auto back = parse_cursor(*st);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->rev, 7u);
  EXPECT_EQ(back->pos, 2u);
  EXPECT_EQ(back->anchor, 1u);
  EXPECT_EQ(parse_cursor(*s.cursor_state(9))->pos, 3u) << "clamped";
  EXPECT_FALSE(parse_cursor(*s.cursor_state(1))->anchor);

  ASSERT_TRUE(s.edit(ins(0, "x")));
  EXPECT_FALSE(s.own_cursor(1));
  EXPECT_FALSE(s.cursor_state(1));
  auto sub = s.take_submit();
  ASSERT_EQ(s.ack(sub->key, 8), document_state::outcome_kind::acked);
  EXPECT_EQ(s.own_cursor(1)->rev, 8u);

  EXPECT_FALSE(parse_cursor(value::from(std::map<std::string, int>{{"status", 1}})));
  EXPECT_FALSE(parse_cursor(value{}));
}

TEST(DocumentStateCursors, ARebuildForgetsThem) {
  auto s = opened("abc");
  s.set_remote_cursor("c1", "bob", cursor_at{0, 1, std::nullopt});
  s.set_remote_cursor("c2", "bob", cursor_at{5, 1, std::nullopt});
  EXPECT_TRUE(s.has_remote_cursor("c1"));
  EXPECT_TRUE(s.has_remote_cursor("c2")) << "parked";
  s.open_text(3, "e2", "xyz");
  EXPECT_FALSE(s.has_remote_cursor("c1"));
  EXPECT_TRUE(s.remote_cursors().empty());
  EXPECT_EQ(s.parked_cursors(), 0u);
}

// --- a randomised simulation -------------------------------------------------------------------
//
// The engine's own sequencer (core::document_sequencer: a bounded log, dedup by key, conflict
// for a base older than the log, ShareDB's tie rule), answering the way the document actor
// does, and clients driven the way the `document` handle drives its
// state: open / reopen with since, ops sent only while open, acks matched by key, pushes
// ignored while a reopen is under way. Messages travel in per-connection FIFO queues that are
// delivered in a random interleaving; connections drop (losing what is in their queues);
// pushes may be lost (holes).

struct sim_options {
  unsigned seed = 1;
  int clients = 4;
  int steps = 4000;
  std::size_t server_log = 100000;
  double p_drop = 0.01;     // per step: a connection drops
  double p_lose_push = 0.0; // per push: it is lost without the connection dropping
};

class simulation {
public:
  explicit simulation(sim_options o) : o_(o), rng_(o.seed), seq_(o.server_log, "e1") {
    for (int i = 0; i < o_.clients; ++i) {
      peers_.push_back(std::make_unique<peer>("c" + std::to_string(i)));
      connect(*peers_.back());
    }
  }

  void run() {
    for (int step = 0; step < o_.steps; ++step) {
      const double x = uniform();
      peer& p = *peers_[pick(peers_.size())];
      if (x < 0.25) {
        local_edit(p);
      } else if (x < 0.55) {
        server_step(p);
      } else if (x < 0.9) {
        client_step(p);
      } else if (x < 0.92) {
        if (p.connected && uniform() < o_.p_drop * 50) disconnect(p);
      } else if (x < 0.95) {
        // What a dead connection still had on its way reaches the server late.
        if (!limbo_.empty()) {
          auto i = pick(limbo_.size());
          to_server u = std::move(limbo_[i]);
          limbo_.erase(limbo_.begin() + static_cast<long>(i));
          serve(nullptr, std::move(u));
        }
      } else if (!p.connected) {
        connect(p);
      }
    }
    // Quiesce: everyone online, everything delivered.
    for (auto& u : limbo_)
      serve(nullptr, std::move(u));
    limbo_.clear();
    for (auto& p : peers_)
      if (!p->connected) connect(*p);
    for (int round = 0; round < 100; ++round) {
      bool moved = true;
      while (moved) {
        moved = false;
        for (auto& p : peers_) {
          while (!p->up.empty())
            moved |= server_step(*p);
          while (!p->down.empty())
            moved |= client_step(*p);
        }
      }
      // A client whose last pushes were lost cannot see the hole: it finds it on a reconnect.
      bool behind = false;
      for (auto& p : peers_) {
        if (p->st.rev() != seq_.rev() || !p->st.opened()) {
          behind = true;
          disconnect(*p);
          connect(*p);
        }
      }
      if (!behind) break;
    }
  }

  void check() const {
    if (std::getenv("SIM_VERBOSE"))
      std::printf(
          "rev %llu len %zu edits %d recov %d dedup %d holes %d conflicts %d rebuilds %d lost %d\n",
          (unsigned long long)seq_.rev(), seq_.text().size(), edits, recoveries, dedups, holes,
          conflicts, rebuilds, lost_edits);
    for (const auto& p : peers_) {
      SCOPED_TRACE(p->name);
      EXPECT_FALSE(p->opening);
      EXPECT_FALSE(p->st.pending());
      EXPECT_EQ(p->st.rev(), seq_.rev());
      EXPECT_EQ(p->st.text(), seq_.text().to_string());
      EXPECT_EQ(p->st.server().to_string(), seq_.text().to_string());
    }
  }

  std::uint64_t ops_made() const {
    std::uint64_t n = 0;
    for (const auto& p : peers_)
      n += p->st.ops_made();
    return n;
  }
  std::uint64_t rev() const { return seq_.rev(); }
  std::string text() const { return seq_.text().to_string(); }
  std::size_t accepted_keys() const { return accepted_; }
  int conflicts = 0, rebuilds = 0, holes = 0, recoveries = 0, dedups = 0, edits = 0, lost_edits = 0;

private:
  struct to_server {
    bool open = false;
    std::optional<std::pair<std::uint64_t, std::string>> since;
    std::uint64_t rev = 0;
    ot::operation op;
    std::string key;
  };
  struct to_client {
    enum kind_type { opened_text, opened_ops, op_push, ack, error } kind = op_push;
    std::uint64_t rev = 0;
    std::string epoch;
    std::string text;
    std::vector<doc_op> ops;
    doc_op push;
    std::string key;
    std::string code;
  };
  struct peer {
    explicit peer(std::string n) : name(n), st(n) {}
    std::string name;
    document_state st;
    bool connected = false;
    bool registered = false; // the server pushes to it
    bool opening = false;
    std::deque<to_server> up;   // on its way to the server
    std::deque<to_client> down; // on its way to the client
  };

  double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }

  std::string random_text() {
    static const char* pieces[] = {"a", "b", "c", " ", "\n", "é", "€", "😀", "𝄞"};
    std::string s;
    const auto n = 1 + pick(4);
    for (std::size_t i = 0; i < n; ++i)
      s += pieces[pick(std::size(pieces))];
    return s;
  }

  ot::operation random_edit(std::size_t len) {
    const auto pos = pick(len + 1);
    ot::operation op;
    op.retain(pos);
    std::size_t removed = 0;
    if (pos < len && uniform() < 0.4) removed = 1 + pick(std::min<std::size_t>(len - pos, 6));
    op.remove(removed);
    if (removed == 0 || uniform() < 0.5) op.insert(random_text());
    if (uniform() < 0.5) op.retain(len - pos - removed); // an explicit trailing retain
    return op;
  }

  // --- clients ---
  void connect(peer& p) {
    p.connected = true;
    open(p, p.st.opened());
  }
  void open(peer& p, bool with_since) {
    to_server u;
    u.open = true;
    if (with_since) u.since = std::make_pair(p.st.rev(), p.st.epoch());
    p.up.push_back(std::move(u));
    p.opening = true;
  }
  void disconnect(peer& p) {
    // Part of what was on its way up still reaches the server; the rest, and everything
    // on its way down, is lost.
    auto keep = pick(p.up.size() + 1);
    while (keep-- > 0 && !p.up.empty())
      server_step(p);
    for (auto& u : p.up)
      if (!u.open && uniform() < 0.5) limbo_.push_back(std::move(u));
    p.up.clear();
    p.down.clear();
    p.registered = false;
    p.connected = false;
    p.opening = false;
    p.st.connection_lost();
  }
  void flush(peer& p) {
    if (!p.connected || p.opening) return;
    if (auto s = p.st.take_submit())
      p.up.push_back(to_server{false, std::nullopt, s->rev, std::move(s->op), s->key});
  }
  void local_edit(peer& p) {
    if (!p.st.opened()) return;
    ASSERT_TRUE(p.st.edit(random_edit(p.st.length())));
    ++edits;
    flush(p);
  }
  void reopen_fresh(peer& p) {
    ++rebuilds;
    open(p, false);
  }

  bool client_step(peer& p) {
    if (p.down.empty()) return false;
    to_client d = std::move(p.down.front());
    p.down.pop_front();
    using outcome = document_state::outcome_kind;
    switch (d.kind) {
    case to_client::opened_text:
      p.opening = false;
      if (p.st.open_text(d.rev, d.epoch, d.text)) ++lost_edits;
      break;
    case to_client::opened_ops:
      p.opening = false;
      if (!p.st.open_recovered(d.rev, d.epoch, d.ops)) {
        reopen_fresh(p);
        return true;
      }
      ++recoveries;
      break;
    case to_client::op_push: {
      if (p.opening) return true; // the reply covers it
      auto r = p.st.remote(d.push);
      if (r.outcome == outcome::hole) {
        ++holes;
        open(p, true);
        return true;
      }
      EXPECT_NE(r.outcome, outcome::mismatch) << p.name << " rev " << d.push.rev;
      if (r.outcome == outcome::mismatch) return reopen_fresh(p), true;
      break;
    }
    case to_client::ack: {
      auto r = p.st.ack(d.key, d.rev);
      if (r == outcome::hole && !p.opening) {
        ++holes;
        open(p, true);
        return true;
      }
      EXPECT_NE(r, outcome::mismatch) << p.name << " ack " << d.rev;
      break;
    }
    case to_client::error:
      if (d.code == "conflict") ++conflicts;
      EXPECT_TRUE(d.code == "conflict") << d.code;
      p.st.refused();
      if (!p.opening) reopen_fresh(p);
      return true;
    }
    flush(p);
    return true;
  }

  // --- the server: the engine's sequencer, answering the way the document actor does ---
  void broadcast(const peer* from, const troupe::core::logged_operation& l) {
    for (auto& q : peers_) {
      if (q.get() == from || !q->registered) continue;
      if (o_.p_lose_push > 0 && uniform() < o_.p_lose_push) continue;
      to_client d;
      d.kind = to_client::op_push;
      d.push = doc_op{l.rev, l.op, l.user, l.key};
      q->down.push_back(std::move(d));
    }
  }
  bool server_step(peer& p) {
    if (p.up.empty()) return false;
    to_server u = std::move(p.up.front());
    p.up.pop_front();
    p.down.push_back(serve(&p, std::move(u)));
    return true;
  }
  // A request from `from` (nullptr: from a connection that is gone); returns the reply.
  to_client serve(peer* from, to_server u) {
    to_client d;
    if (u.open) {
      if (!from) return d;
      from->registered = true;
      d.rev = seq_.rev();
      d.epoch = seq_.epoch();
      if (u.since && u.since->second == seq_.epoch() && u.since->first <= seq_.rev() &&
          seq_.covers(u.since->first)) {
        d.kind = to_client::opened_ops;
        for (const auto* l : seq_.after(u.since->first))
          d.ops.push_back(doc_op{l->rev, l->op, l->user, l->key});
      } else {
        d.kind = to_client::opened_text;
        d.text = seq_.text().to_string();
      }
      return d;
    }
    d.key = u.key;
    using outcome = troupe::core::document_sequencer::outcome;
    const auto r = seq_.submit(u.rev, std::move(u.op), u.key, from ? from->name : "late");
    switch (r.kind) {
    case outcome::applied:
      ++accepted_;
      broadcast(from, *r.accepted);
      d.kind = to_client::ack;
      break;
    case outcome::duplicate:
      ++dedups;
      d.kind = to_client::ack;
      break;
    case outcome::conflict:
      d.kind = to_client::error;
      d.code = "conflict";
      break;
    case outcome::invalid:
      d.kind = to_client::error;
      d.code = "bad_request";
      break;
    }
    d.rev = r.rev;
    return d;
  }

  sim_options o_;
  std::mt19937 rng_;
  std::vector<std::unique_ptr<peer>> peers_;
  troupe::core::document_sequencer seq_;
  std::vector<to_server> limbo_;
  std::size_t accepted_ = 0;
};

TEST(DocumentStateSimulation, ClientsConvergeWithDropsAndResubmission) {
  int dedups = 0, recoveries = 0;
  for (unsigned seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    sim_options o;
    o.seed = seed;
    o.clients = 3 + static_cast<int>(seed % 3);
    simulation sim(o);
    sim.run();
    sim.check();
    EXPECT_EQ(sim.conflicts, 0);
    EXPECT_EQ(sim.lost_edits, 0) << "nothing is lost while the log reaches back";
    EXPECT_GT(sim.rev(), 100u);
    EXPECT_EQ(sim.rev(), sim.ops_made()) << "every operation applied exactly once";
    dedups += sim.dedups;
    recoveries += sim.recoveries;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(recoveries, 0);
  EXPECT_GT(dedups, 0) << "some resubmissions were accepted already";
}

TEST(DocumentStateSimulation, LostPushesAreFoundAsHolesAndRecovered) {
  int holes = 0;
  for (unsigned seed = 100; seed < 120; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    sim_options o;
    o.seed = seed;
    o.p_lose_push = 0.03;
    o.p_drop = 0.002;
    simulation sim(o);
    sim.run();
    sim.check();
    EXPECT_EQ(sim.lost_edits, 0);
    holes += sim.holes;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(holes, 0);
}

TEST(DocumentStateSimulation, AShortServerLogMeansConflictsAndRebuildsButStillConvergence) {
  int conflicts = 0, lost = 0;
  for (unsigned seed = 200; seed < 220; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    sim_options o;
    o.seed = seed;
    o.server_log = 3;
    o.p_drop = 0.03;
    simulation sim(o);
    sim.run();
    sim.check();
    conflicts += sim.conflicts;
    lost += sim.lost_edits;
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_GT(conflicts + lost, 0);
}

} // namespace
