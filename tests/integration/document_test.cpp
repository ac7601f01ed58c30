// Documents through a real engine: concurrent editors with dropped connections converge,
// resubmission by key is applied once, conflicts and refusals, recovery by rev, remote
// cursors, and the editing traces replayed end to end over one pipelined connection. Every
// wait is bounded and waits for an event (a reply, an ack, a text or cursor reached).
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "clients/cpp/blocking_document.hpp"
#include "clients/cpp/map_writer.hpp"
#include "document_support.hpp"
#include "raw_ws.hpp"
#include "support.hpp"
#include "tests/support/editing_trace.hpp"

namespace troupe::test {
namespace {

using client::blocking_document;
using client::client_error;
using client::connection_state;
using client::document_opened;
using client::map_writer;
using client::open_kind;
using client::remote_cursor;
using client::reply;
namespace ot = troupe::ot;

class DocumentTest : public EngineTest {};

class DocumentShortLogTest : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--doc-log", "5"}; }
};

// Hundreds of thousands of pipelined operations from one connection: far past the request
// budget (`--rate`), which this fixture turns off.
class DocumentTraceTest : public EngineTest {
protected:
  std::vector<std::string> extra_args() const override { return {"--rate", "0"}; }
};

// --- (1) concurrent editors with dropped connections
// ------------------------------------------------

TEST_F(DocumentTest, ConcurrentEditorsWithDroppedConnectionsConverge) {
  constexpr int kEditors = 5;
  constexpr int kEdits = 200;
  const std::string room = "doc-race";
  std::vector<Editor> eds;
  for (int i = 0; i < kEditors; ++i)
    eds.push_back(editor(engine(), "u" + std::to_string(i), room));

  std::atomic<int> drops{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kEditors; ++i) {
    threads.emplace_back([&, i] {
      std::mt19937 rng(1000 + static_cast<unsigned>(i));
      for (int k = 0; k < kEdits; ++k) {
        eds[static_cast<std::size_t>(i)]->edit_with(
            [&](const ot::rope& t) { return random_edit(rng, t.size()); });
        // Typing cadence, not synchronisation.
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 5000));
        if (rng() % 50 == 0) {
          eds[static_cast<std::size_t>(i)].c->drop_connection(); // reconnects by itself
          ++drops;
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_GT(drops.load(), 0);

  std::uint64_t made = 0;
  for (auto& e : eds) {
    e->wait_synced(30s);
    e.doc->doc().inspect([&](const client::document_state& st) { made += st.ops_made(); });
  }
  const auto [rev, text] = fresh_view(engine(), room);
  EXPECT_EQ(rev, made) << "every operation applied exactly once, resubmissions included";
  int recovered = 0;
  for (auto& e : eds) {
    SCOPED_TRACE(e.id);
    e->wait_rev(rev, 20s);
    EXPECT_EQ(e->text(), text);
    EXPECT_EQ(e->rev(), rev);
    while (auto ev = e->next_opened(0ms)) {
      EXPECT_FALSE(ev->dropped_local) << "nothing lost while the log reaches back";
      EXPECT_NE(ev->kind, open_kind::rebuilt);
      if (ev->kind == open_kind::recovered) ++recovered;
    }
  }
  EXPECT_GT(recovered, 0) << "the dropped connections were opened again with since";
  EXPECT_GT(ot::utf8_count(text), 0u);
}

// --- (2) dedup by key
// ------------------------------------------------------------------------------

TEST_F(DocumentTest, TheSameKeyIsAcknowledgedWithItsFirstRevAndAppliedOnce) {
  const std::string room = "doc-dedup";
  RawWs a(engine().port()), b(engine().port());
  a.hello("a");
  b.hello("b");
  EXPECT_EQ(raw_open(a, room).map().u64("rev"), 0u);
  raw_open(b, room);

  EXPECT_EQ(acked_rev(raw_op(a, room, 0, make_op(0, 0, "hé"), "k1")), 1u);
  EXPECT_EQ(acked_rev(raw_op(a, room, 0, make_op(0, 0, "hé"), "k1")), 1u) << "sent again";
  EXPECT_EQ(acked_rev(raw_op(a, room, 1, make_op(2, 0, "hé"), "k1")), 1u)
      << "again, against a later rev";
  EXPECT_EQ(acked_rev(raw_op(a, room, 1, make_op(2, 0, "!"), "k2")), 2u);

  std::vector<std::string> keys;
  std::vector<std::uint64_t> revs;
  for (const auto& m : maps_until_pong(b)) {
    if (m.type() != "op") continue;
    keys.emplace_back(m.map().str("key").value_or(""));
    revs.push_back(m.map().u64("rev").value_or(0));
    EXPECT_EQ(m.map().str("user").value_or(""), "a");
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(revs, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(fresh_view(engine(), room), std::make_pair(std::uint64_t{2}, std::string("hé!")));
}

// --- (3) conflict and refusals
// ------------------------------------------------------------------------

TEST_F(DocumentShortLogTest, OldBaseIsAConflictFutureOrUnfitIsABadRequest) {
  const std::string room = "doc-conflict";
  RawWs a(engine().port());
  a.hello("a");
  raw_open(a, room);
  for (std::uint64_t r = 0; r < 10; ++r)
    ASSERT_EQ(acked_rev(raw_op(a, room, r, make_op(0, 0, "x"), "x" + std::to_string(r))), r + 1);

  EXPECT_EQ(code_of(raw_op(a, room, 2, make_op(0, 0, "old"), "old")), "conflict")
      << "rev 2 is older than the log";
  EXPECT_EQ(acked_rev(raw_op(a, room, 5, make_op(1, 0, "y"), "base5")), 11u)
      << "rev 5 is the oldest the log holds";
  EXPECT_EQ(code_of(raw_op(a, room, 12, make_op(0, 0, "z"), "future")), "bad_request");
  EXPECT_EQ(code_of(raw_op(a, room, 11, make_op(12, 0, "z"), "unfit")), "bad_request")
      << "retains past the end";
  EXPECT_EQ(code_of(raw_op(a, room, 11, make_op(5, 7, ""), "unfit2")), "bad_request")
      << "removes past the end";
  const auto [rev, text] = fresh_view(engine(), room);
  EXPECT_EQ(rev, 11u);
  EXPECT_EQ(text, "xxxxxxyxxxx");
}

TEST_F(DocumentShortLogTest, AClientTooFarBehindIsRebuiltAndToldItsChangesWereLost) {
  const std::string room = "doc-rebuild";
  auto x = editor(engine(), "x", room);
  RawWs a(engine().port());
  a.hello("a");
  raw_open(a, room);
  ASSERT_TRUE(x->insert(0, "base"));
  x->wait_synced();
  auto first = x->next_opened(0ms);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->kind, open_kind::initial);

  x.c->drop_connection(false);
  x.c->wait_state(connection_state::disconnected);
  ASSERT_TRUE(x->insert(4, " offline")); // made against rev 1, never sent
  for (std::uint64_t r = 1; r <= 8; ++r)
    ASSERT_EQ(acked_rev(raw_op(a, room, r, make_op(0, 0, "-"), "k" + std::to_string(r))), r + 1);
  x.c->reconnect_now();

  auto ev = x->next_opened();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, open_kind::rebuilt);
  EXPECT_TRUE(ev->dropped_local);
  EXPECT_EQ(ev->rev, 9u);
  EXPECT_EQ(x->text(), "--------base");
  x->wait_synced();
  EXPECT_EQ(fresh_view(engine(), room).second, "--------base");
}

// --- (4) recovery by rev
// ---------------------------------------------------------------------------------

TEST_F(DocumentShortLogTest, ReopenWithSinceGetsExactlyTheMissedOpsOrTheText) {
  const std::string room = "doc-recover";
  RawWs a(engine().port());
  a.hello("a");
  const auto first = raw_open(a, room);
  const std::string epoch(first.map().str("epoch").value_or(""));
  ASSERT_FALSE(epoch.empty());
  ASSERT_EQ(acked_rev(raw_op(a, room, 0, make_op(0, 0, "ab"), "r1")), 1u);
  ASSERT_EQ(acked_rev(raw_op(a, room, 1, make_op(2, 0, "c"), "r2")), 2u);
  ASSERT_EQ(acked_rev(raw_op(a, room, 2, make_op(0, 1, ""), "r3")), 3u);
  ASSERT_EQ(acked_rev(raw_op(a, room, 3, make_op(0, 0, "😀"), "r4")), 4u);

  {
    RawWs b(engine().port());
    b.hello("b");
    auto r = raw_open(b, room, std::make_pair(std::uint64_t{1}, epoch));
    EXPECT_EQ(r.map().boolean("recovered"), true);
    EXPECT_EQ(r.map().u64("rev"), 4u);
    EXPECT_FALSE(r.map().has("text"));
    const auto ops = r.map().array("ops");
    ASSERT_TRUE(ops);
    std::vector<std::uint64_t> revs;
    std::vector<std::string> keys;
    for (std::uint32_t i = 0; i < ops->size; ++i) {
      client::map_view m(ops->ptr[i]);
      revs.push_back(m.u64("rev").value_or(0));
      keys.emplace_back(m.str("key").value_or(""));
      EXPECT_EQ(m.str("user").value_or(""), "a");
    }
    EXPECT_EQ(revs, (std::vector<std::uint64_t>{2, 3, 4}));
    EXPECT_EQ(keys, (std::vector<std::string>{"r2", "r3", "r4"}));
  }
  {
    RawWs b(engine().port());
    b.hello("b");
    auto r = raw_open(b, room, std::make_pair(std::uint64_t{4}, epoch));
    EXPECT_EQ(r.map().boolean("recovered"), true);
    EXPECT_EQ(r.map().array("ops")->size, 0u) << "nothing missed";
  }
  for (std::uint64_t r = 4; r < 10; ++r)
    ASSERT_EQ(acked_rev(raw_op(a, room, r, make_op(0, 0, "-"), "s" + std::to_string(r))), r + 1);
  for (auto since : {std::make_pair(std::uint64_t{1}, epoch),
                     std::make_pair(std::uint64_t{4}, std::string("other-epoch"))}) {
    RawWs b(engine().port());
    b.hello("b");
    auto r = raw_open(b, room, since);
    EXPECT_NE(r.map().boolean("recovered"), true);
    EXPECT_EQ(r.map().u64("rev"), 10u);
    EXPECT_EQ(r.map().str("text").value_or(""), "------😀bc");
  }
}

TEST_F(DocumentTest, AReconnectedEditorRecoversAndKeepsItsOfflineEdits) {
  const std::string room = "doc-reconnect";
  auto x = editor(engine(), "x", room);
  auto y = editor(engine(), "y", room);
  ASSERT_TRUE(x->insert(0, "abc"));
  x->wait_synced();
  y->wait_text([](const std::string& t) { return t == "abc"; });

  x.c->drop_connection(false);
  x.c->wait_state(connection_state::disconnected);
  ASSERT_TRUE(x->insert(3, "X")); // offline
  ASSERT_TRUE(y->insert(0, "1"));
  y->wait_synced();
  ASSERT_TRUE(y->insert(4, "2"));
  y->wait_synced();
  ASSERT_TRUE(y->insert(0, "3"));
  y->wait_synced();
  x.c->reconnect_now();

  auto first = x->next_opened(0ms);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->kind, open_kind::initial);
  auto ev = x->next_opened();
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->kind, open_kind::recovered);
  EXPECT_EQ(ev->missed, 3u);
  EXPECT_FALSE(ev->dropped_local);
  x->wait_synced();
  y->wait_rev(5);
  EXPECT_EQ(x->text(), "31abcX2");
  EXPECT_EQ(y->text(), "31abcX2");
  EXPECT_EQ(fresh_view(engine(), room), std::make_pair(std::uint64_t{5}, std::string("31abcX2")));
}

// --- (5) remote cursors
// ----------------------------------------------------------------------------------

std::optional<remote_cursor> cursor_of(const std::vector<remote_cursor>& cs,
                                       const std::string& client) {
  for (const auto& c : cs)
    if (c.client == client) return c;
  return std::nullopt;
}

TEST_F(DocumentTest, RemoteCursorsAreSeenAndMovedThroughOthersEdits) {
  const std::string room = "doc-cursors";
  auto a = editor(engine(), "ann", room);
  auto b = editor(engine(), "bob", room);
  auto c = editor(engine(), "cat", room);
  ASSERT_TRUE(a->insert(0, "hello world"));
  a->wait_synced();
  for (auto* e : {&b, &c})
    (*e)->wait_text([](const std::string& t) { return t == "hello world"; });

  a->set_cursor(6); // before "world"
  auto seen = b->wait_cursors([&](const auto& cs) {
    auto x = cursor_of(cs, a.id);
    return x && x->pos == 6;
  });
  EXPECT_EQ(cursor_of(seen, a.id)->user, "ann");
  EXPECT_FALSE(cursor_of(a->remote_cursors(), a.id)) << "not our own";

  // Someone else inserts before it: B moves A's cursor itself.
  ASSERT_TRUE(c->insert(0, "¡XY "));
  c->wait_synced();
  b->wait_cursors([&](const auto& cs) {
    auto x = cursor_of(cs, a.id);
    return x && x->pos == 10;
  });

  // A selection, then a removal around it pulls both ends to its start.
  a->wait_text([](const std::string& t) { return t == "¡XY hello world"; });
  a->set_cursor(10, 15);
  b->wait_cursors([&](const auto& cs) {
    auto x = cursor_of(cs, a.id);
    return x && x->pos == 10 && x->anchor == 15u;
  });
  ASSERT_TRUE(c->remove(8, 7)); // "¡XY hell"
  c->wait_synced();
  b->wait_cursors([&](const auto& cs) {
    auto x = cursor_of(cs, a.id);
    return x && x->pos == 8 && x->anchor == 8u;
  });
  // C sees A's cursor too, and B's own edit shows it moved in B's local text at once.
  c->wait_cursors([&](const auto& cs) {
    auto x = cursor_of(cs, a.id);
    return x && x->pos == 8;
  });
  ASSERT_TRUE(b->insert(0, "🙂"));
  auto local = cursor_of(b->remote_cursors(), a.id);
  ASSERT_TRUE(local);
  EXPECT_EQ(local->pos, 9u);

  // Gone with the connection's close.
  a->close();
  b->wait_cursors([&](const auto& cs) { return !cursor_of(cs, a.id); });
}

// --- (5b) one operation per WebSocket message, many messages in one read
// ---------------------------------------------------------------------

// A client that sends each edit as its own message, pipelined: the engine reads many of its
// messages at once and hands a document the `op`s of one read together. Every `op` still gets
// its own answer (an ack with its revision, or its error), acks of one document come in the
// order sent, a request of another kind between them is handled in its place, and the `op`s
// before a close frame in the same read are applied.
TEST_F(DocumentTest, OneOperationPerMessageManyMessagesPerRead) {
  const std::string room = "per-read", other = "per-read-other";
  RawWs ws(engine().port());
  ws.hello("ann");
  raw_open(ws, room);
  raw_open(ws, other);

  std::string bytes;
  std::map<std::uint64_t, std::string> expected; // id -> "ack <rev>" or "error <code>"
  std::vector<std::uint64_t> order;              // the acks' ids of `room`, in the order sent
  std::uint64_t rev = 0, other_rev = 0, next = 1000;
  auto op = [&](const std::string& in, std::uint64_t base, const ot::operation& o,
                const std::string& key, const std::string& outcome) {
    const auto id = next++;
    bytes += RawWs::client_frame(0x2, op_map(id, in, base, o, key));
    expected[id] = outcome;
    if (in == room && outcome.rfind("ack", 0) == 0) order.push_back(id);
  };
  for (int i = 0; i < 20; ++i) {
    op(room, rev, make_op(rev, 0, "x"), "a" + std::to_string(i), "ack " + std::to_string(rev + 1));
    ++rev;
  }
  op(room, rev, make_op(rev + 5, 0, "?"), "unfit", "error bad_request"); // does not fit
  op(room, rev + 3, make_op(0, 0, "?"), "future", "error bad_request");  // a rev not reached
  op(room, 0, make_op(0, 0, "y"), "a3", "ack 4");                        // a retry: its first rev
  const auto ping = next++;
  {
    map_writer w("ping");
    w.u64("id", ping);
    bytes += RawWs::client_frame(0x2, w.finish());
  }
  for (int i = 0; i < 5; ++i) { // another document between this one's operations
    op(other, other_rev, make_op(0, 0, "o"), "o" + std::to_string(i),
       "ack " + std::to_string(other_rev + 1));
    ++other_rev;
  }
  for (int i = 20; i < 40; ++i) {
    op(room, rev, make_op(0, 0, "z"), "a" + std::to_string(i), "ack " + std::to_string(rev + 1));
    ++rev;
  }
  ws.send_tcp(bytes); // one write: the engine reads most of it at once

  std::map<std::uint64_t, std::string> got;
  std::vector<std::uint64_t> acked;
  bool ponged = false;
  while (got.size() < expected.size() || !ponged) {
    auto f = ws.read(10s);
    ASSERT_FALSE(f.closed || !f.error.empty()) << f.close_reason << f.error;
    for (auto& m : f.maps) {
      const auto id = m.map().u64("id").value_or(0);
      if (id == ping) {
        ponged = true;
        continue;
      }
      if (!expected.count(id)) continue; // a push from `open`'s presence, say
      ASSERT_FALSE(got.count(id)) << "two answers to " << id;
      got[id] = m.type() == "ack" ? "ack " + std::to_string(m.map().u64("rev").value_or(0))
                                  : "error " + std::string(m.map().str("code").value_or(""));
      if (m.type() == "ack" && m.map().str("room") == room) acked.push_back(id);
    }
  }
  EXPECT_EQ(got, expected);
  // The retry's ack comes in its place among the others.
  std::vector<std::uint64_t> in_order;
  for (const auto id : acked)
    if (expected[id].rfind("ack", 0) == 0) in_order.push_back(id);
  EXPECT_EQ(in_order, order);
  EXPECT_EQ(fresh_view(engine(), room).first, rev);
  EXPECT_EQ(fresh_view(engine(), other).first, other_rev);

  // Operations followed by a close frame in the same write: applied before the end.
  bytes.clear();
  for (int i = 0; i < 10; ++i) {
    bytes += RawWs::client_frame(
        0x2, op_map(next++, room, rev, make_op(0, 0, "e"), "end" + std::to_string(i)));
    ++rev;
  }
  bytes += RawWs::client_frame(0x8, std::string("\x03\xe8", 2));
  ws.send_tcp(bytes);
  ws.drain_tcp_until_close();
  for (int attempt = 0; attempt < 100 && fresh_view(engine(), room).first != rev; ++attempt)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(fresh_view(engine(), room).first, rev);
}

// --- (6) the editing traces end to end
// ---------------------------------------------------------------------

void replay(const EngineProcess& engine, const std::string& name) {
  SCOPED_TRACE(name);
  const auto trace = traces::load_trace(traces::trace_path(name));
  std::vector<ot::operation> ops;
  ops.reserve(trace.patches.size() + 1);
  if (!trace.start_content.empty()) ops.push_back(make_op(0, 0, trace.start_content));
  for (const auto& p : trace.patches)
    ops.push_back(make_op(p.position, p.removed, p.inserted));

  const std::string room = "trace-" + name;
  RawWs ws(engine.port());
  ws.hello("tracer");
  raw_open(ws, room);

  // Op i is made against rev i; batches of many maps per frame, a few batches in flight.
  constexpr std::size_t kBatch = 1000, kWindow = 2;
  const std::uint64_t base_id = 1'000'000;
  std::size_t sent = 0, acked = 0;
  auto read_acks = [&](std::size_t until) {
    while (acked < until) {
      auto f = ws.read(30s);
      if (f.closed || !f.error.empty())
        throw std::runtime_error("connection ended: " + std::to_string(f.close_code) + " " +
                                 f.close_reason + f.error);
      for (auto& m : f.maps) {
        if (m.type() == "error")
          throw std::runtime_error("op refused: " + std::string(m.map().str("code").value_or("")) +
                                   " " + std::string(m.map().str("reason").value_or("")));
        if (m.type() != "ack") continue;
        const auto i = m.map().u64("id").value_or(0) - base_id;
        ASSERT_EQ(i, acked) << "acks in order";
        ASSERT_EQ(m.map().u64("rev"), i + 1);
        ++acked;
      }
    }
  };
  while (sent < ops.size()) {
    std::string frame;
    const auto end = std::min(ops.size(), sent + kBatch);
    for (; sent < end; ++sent)
      frame += op_map(base_id + sent, room, sent, ops[sent], name + "-" + std::to_string(sent));
    ws.send_binary(frame);
    if (sent > kBatch * kWindow) read_acks(sent - kBatch * kWindow);
    if (::testing::Test::HasFatalFailure()) return;
  }
  read_acks(ops.size());
  const auto [rev, text] = fresh_view(engine, room);
  EXPECT_EQ(rev, ops.size());
  EXPECT_TRUE(text == trace.end_content)
      << "the engine's text differs from the trace's end (" << text.size() << " bytes vs "
      << trace.end_content.size() << ")";
}

TEST_F(DocumentTraceTest, SephBlog1ReplayedEndToEnd) { replay(engine(), "seph-blog1"); }

TEST_F(DocumentTraceTest, AutomergePaperReplayedEndToEnd) { replay(engine(), "automerge-paper"); }

} // namespace
} // namespace troupe::test
