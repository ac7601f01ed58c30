#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "core/ordered_delivery.hpp"
#include "protocol/frame.hpp"

using namespace troupe;
using core::delivery_actions;
using core::ordered_delivery;
using core::reset_reason;

namespace {

protocol::frame_ptr payload(std::uint64_t seq) {
  protocol::frame_builder builder;
  builder.write("m" + std::to_string(seq));
  return builder.finish();
}

// The delivered seqs, each checked against its payload (the handle travels with its seq).
std::vector<std::uint64_t> seqs(const delivery_actions& actions) {
  std::vector<std::uint64_t> out;
  for (const auto& m : actions.deliver) {
    EXPECT_EQ(m.payload->payload(), "m" + std::to_string(m.seq));
    out.push_back(m.seq);
  }
  return out;
}

using v = std::vector<std::uint64_t>;

delivery_actions msg(ordered_delivery& d, std::uint64_t seq, std::string_view epoch = "e1") {
  return d.on_message(seq, epoch, payload(seq));
}

// The room's stream: seqs first..top of one epoch, as a repair read would find them.
core::stream_read read(std::uint64_t from, std::uint64_t to, std::uint64_t top,
                       std::uint64_t first_kept = 1, std::string epoch = "e1") {
  core::stream_read r{std::move(epoch), top, {}};
  for (std::uint64_t s = std::max(from, first_kept); s <= std::min(to, top); ++s)
    r.entries.push_back({s, payload(s)});
  return r;
}

ordered_delivery seeded(std::uint64_t top = 0, ordered_delivery::limits l = {}) {
  ordered_delivery d(l);
  auto a = d.seed("e1", top);
  EXPECT_TRUE(a.deliver.empty());
  EXPECT_FALSE(a.repair);
  return d;
}

} // namespace

TEST(OrderedDelivery, InOrderIsDeliveredAtOnce) {
  auto d = seeded();
  for (std::uint64_t s = 1; s <= 5; ++s) {
    auto a = msg(d, s);
    EXPECT_EQ(seqs(a), v{s});
    EXPECT_FALSE(a.repair);
    EXPECT_EQ(a.reset, reset_reason::none);
  }
  EXPECT_EQ(d.last_delivered(), 5u);
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(OrderedDelivery, ReorderedWaitsForTheHoleAndAsksForIt) {
  auto d = seeded();
  auto a = msg(d, 3);
  EXPECT_TRUE(a.deliver.empty());
  ASSERT_TRUE(a.repair);
  EXPECT_EQ(a.repair->from, 1u);
  EXPECT_EQ(a.repair->to, 2u); // the hole ends below the buffered 3
  EXPECT_TRUE(msg(d, 2).deliver.empty());
  EXPECT_FALSE(msg(d, 4).repair); // one read in flight at a time
  EXPECT_EQ(seqs(msg(d, 1)), (v{1, 2, 3, 4}));
  // The read's answer, now stale in content: everything in it is a duplicate.
  auto r = d.on_repair(a.repair->ticket, read(1, 2, 4));
  EXPECT_TRUE(r.deliver.empty());
  EXPECT_EQ(r.dropped, 2u);
  EXPECT_FALSE(r.repair);
  EXPECT_EQ(r.reset, reset_reason::none);
}

TEST(OrderedDelivery, LostMiddleIsFilledByRepair) {
  auto d = seeded();
  EXPECT_EQ(seqs(msg(d, 1)), v{1});
  auto a = msg(d, 4); // 2 and 3 were lost
  ASSERT_TRUE(a.repair);
  EXPECT_EQ(a.repair->from, 2u);
  EXPECT_EQ(a.repair->to, 3u);
  EXPECT_TRUE(msg(d, 5).deliver.empty());
  auto r = d.on_repair(a.repair->ticket, read(2, 3, 5));
  EXPECT_EQ(seqs(r), (v{2, 3, 4, 5}));
  EXPECT_FALSE(r.repair);
  EXPECT_EQ(r.dropped, 0u);
  EXPECT_EQ(seqs(msg(d, 6)), v{6});
}

TEST(OrderedDelivery, RepairsInBatchesUpToTheKnownTop) {
  auto d = seeded(0, {.reorder = 8, .repair_batch = 3});
  auto a = d.on_top("e1", 7);
  ASSERT_TRUE(a.repair);
  EXPECT_EQ(a.repair->from, 1u);
  EXPECT_EQ(a.repair->to, 3u);
  auto r = d.on_repair(a.repair->ticket, read(1, 3, 7));
  EXPECT_EQ(seqs(r), (v{1, 2, 3}));
  ASSERT_TRUE(r.repair);
  EXPECT_EQ(r.repair->from, 4u);
  EXPECT_EQ(r.repair->to, 6u);
  r = d.on_repair(r.repair->ticket, read(4, 6, 7));
  EXPECT_EQ(seqs(r), (v{4, 5, 6}));
  ASSERT_TRUE(r.repair);
  r = d.on_repair(r.repair->ticket, read(r.repair->from, r.repair->to, 7));
  EXPECT_EQ(seqs(r), v{7});
  EXPECT_FALSE(r.repair);
}

TEST(OrderedDelivery, LostTailIsFoundByTheTopCheck) {
  auto d = seeded();
  EXPECT_EQ(seqs(msg(d, 1)), v{1});
  EXPECT_FALSE(d.on_top("e1", 1).repair); // nothing missing: no read
  auto a = d.on_top("e1", 3);             // 2 and 3 never came
  ASSERT_TRUE(a.repair);
  EXPECT_EQ(a.repair->from, 2u);
  auto r = d.on_repair(a.repair->ticket, read(a.repair->from, a.repair->to, 3));
  EXPECT_EQ(seqs(r), (v{2, 3}));
  EXPECT_FALSE(r.repair);
  EXPECT_EQ(d.last_delivered(), 3u);
}

TEST(OrderedDelivery, DuplicatesAreDropped) {
  auto d = seeded();
  EXPECT_EQ(seqs(msg(d, 1)), v{1});
  auto a = msg(d, 1);
  EXPECT_TRUE(a.deliver.empty());
  EXPECT_EQ(a.dropped, 1u);
  msg(d, 3);
  a = msg(d, 3); // a duplicate of a buffered one
  EXPECT_EQ(a.dropped, 1u);
  EXPECT_EQ(d.buffered(), 1u);
  EXPECT_EQ(seqs(msg(d, 2)), (v{2, 3}));
  EXPECT_EQ(msg(d, 2).dropped, 1u);
}

TEST(OrderedDelivery, ResubscriptionReadsFromTheLastDelivered) {
  auto d = seeded(10);
  EXPECT_EQ(seqs(msg(d, 11)), v{11});
  auto a = d.on_resubscribed(); // 12.. may have been published while unsubscribed
  ASSERT_TRUE(a.repair);
  EXPECT_EQ(a.repair->from, 12u);
  EXPECT_EQ(seqs(msg(d, 15)), v{}); // after the resubscription
  auto r = d.on_repair(a.repair->ticket, read(12, a.repair->to, 15));
  EXPECT_EQ(seqs(r), (v{12, 13, 14, 15}));
  EXPECT_EQ(r.dropped, 1u); // 15 came both ways
  EXPECT_FALSE(r.repair);
}

TEST(OrderedDelivery, ResubscriptionWithNothingMissedDeliversNothing) {
  auto d = seeded(4);
  auto a = d.on_resubscribed();
  ASSERT_TRUE(a.repair);
  auto r = d.on_repair(a.repair->ticket, read(a.repair->from, a.repair->to, 4));
  EXPECT_TRUE(r.deliver.empty());
  EXPECT_FALSE(r.repair);
  EXPECT_EQ(r.reset, reset_reason::none);
}

TEST(OrderedDelivery, ResubscriptionDuringARepairReadsAgainAfterIt) {
  auto d = seeded();
  auto a = msg(d, 2);
  ASSERT_TRUE(a.repair);
  EXPECT_FALSE(d.on_resubscribed().repair); // one in flight: the next read comes after it
  // The first read predates the resubscription: its top (2) says nothing of what came since.
  auto r = d.on_repair(a.repair->ticket, read(1, 1, 2));
  EXPECT_EQ(seqs(r), (v{1, 2}));
  ASSERT_TRUE(r.repair);
  EXPECT_EQ(r.repair->from, 3u);
  r = d.on_repair(r.repair->ticket, read(r.repair->from, r.repair->to, 4));
  EXPECT_EQ(seqs(r), (v{3, 4}));
  EXPECT_FALSE(r.repair);
}

TEST(OrderedDelivery, EpochChangeResetsAndTheNextSeedStartsOver) {
  auto d = seeded();
  msg(d, 1);
  msg(d, 2);
  auto a = msg(d, 1, "e2"); // the log was lost: seq 1 again, new epoch
  EXPECT_EQ(a.reset, reset_reason::epoch_changed);
  EXPECT_TRUE(a.deliver.empty());
  EXPECT_FALSE(a.repair);
  EXPECT_FALSE(d.seeded());
  EXPECT_TRUE(msg(d, 2, "e2").deliver.empty()); // waits for the seed
  // The caller reads again (after its clients were told) and seeds: 1 was read, 2 was not.
  auto s = d.seed("e2", 1);
  EXPECT_EQ(s.dropped, 1u);
  EXPECT_EQ(seqs(s), v{2});
  EXPECT_EQ(d.epoch(), "e2");
}

TEST(OrderedDelivery, EpochChangeSeenByTheTopCheckOrARead) {
  auto d = seeded();
  msg(d, 1);
  EXPECT_EQ(d.on_top("e2", 1).reset, reset_reason::epoch_changed);
  d = seeded();
  msg(d, 1);
  EXPECT_EQ(d.on_top("", 0).reset, reset_reason::epoch_changed); // the meta is gone
  d = seeded();
  auto a = msg(d, 3);
  ASSERT_TRUE(a.repair);
  auto r = d.on_repair(a.repair->ticket, read(1, 2, 5, 1, "e2"));
  EXPECT_EQ(r.reset, reset_reason::epoch_changed);
  EXPECT_TRUE(r.deliver.empty());
}

TEST(OrderedDelivery, RepairThatNoLongerReachesBackResets) {
  auto d = seeded();
  msg(d, 1);
  auto a = msg(d, 9);
  ASSERT_TRUE(a.repair);
  // The stream was trimmed to 5..9 meanwhile: 2..4 are gone.
  auto r = d.on_repair(a.repair->ticket, read(2, 8, 9, /*first_kept=*/5));
  EXPECT_EQ(r.reset, reset_reason::history_lost);
  EXPECT_TRUE(r.deliver.empty());
  EXPECT_FALSE(r.repair);
  EXPECT_FALSE(d.seeded());
  // An empty read of a range below the top means the same.
  d = seeded();
  a = d.on_top("e1", 3);
  ASSERT_TRUE(a.repair);
  EXPECT_EQ(d.on_repair(a.repair->ticket, {"e1", 3, {}}).reset, reset_reason::history_lost);
}

TEST(OrderedDelivery, HoleAfterSomeDeliveredDeliversThoseThenResets) {
  auto d = seeded();
  auto a = d.on_top("e1", 6);
  ASSERT_TRUE(a.repair);
  core::stream_read r{"e1", 6, {}};
  for (std::uint64_t s : {1, 2, 5, 6}) // 3 and 4 missing: not a trimmed front, but a hole
    r.entries.push_back({s, payload(s)});
  auto got = d.on_repair(a.repair->ticket, std::move(r));
  EXPECT_EQ(seqs(got), (v{1, 2}));
  EXPECT_EQ(got.reset, reset_reason::history_lost);
}

TEST(OrderedDelivery, StaleRepairAnswersAreIgnored) {
  auto d = seeded();
  auto a = msg(d, 2);
  ASSERT_TRUE(a.repair);
  msg(d, 1, "e2"); // reset
  d.seed("e2", 0);
  auto r = d.on_repair(a.repair->ticket, read(1, 1, 2));
  EXPECT_TRUE(r.deliver.empty());
  EXPECT_EQ(r.reset, reset_reason::none);
  EXPECT_EQ(d.on_repair(12345, read(1, 1, 2)).deliver.size(), 0u);
}

TEST(OrderedDelivery, ReorderBoundKeepsTheLowestAndRepairsTheRest) {
  auto d = seeded(0, {.reorder = 3, .repair_batch = 100});
  auto a = msg(d, 10);
  ASSERT_TRUE(a.repair);
  const auto ticket = a.repair->ticket;
  for (std::uint64_t s : {9, 8, 7, 6, 5, 4})
    msg(d, s);
  EXPECT_EQ(d.buffered(), 3u); // 4, 5, 6 kept; 7..10 left to the stream
  EXPECT_EQ(d.known_top(), 10u);
  auto r = d.on_repair(ticket, read(1, 9, 10));
  EXPECT_EQ(seqs(r), (v{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  ASSERT_TRUE(r.repair); // 10 was dropped from the buffer and was outside the first read
  EXPECT_EQ(r.repair->from, 10u);
  r = d.on_repair(r.repair->ticket, read(10, r.repair->to, 10));
  EXPECT_EQ(seqs(r), v{10});
  EXPECT_FALSE(r.repair);
}

TEST(OrderedDelivery, SubTimeRuleDropsWhatTheReadCovered) {
  ordered_delivery d;
  // Subscribed first: pub/sub messages wait while the history is read.
  EXPECT_TRUE(msg(d, 5).deliver.empty());
  EXPECT_TRUE(msg(d, 7).deliver.empty());
  EXPECT_TRUE(msg(d, 6).deliver.empty());
  EXPECT_FALSE(d.on_top("e1", 9).repair);   // ignored before the seed
  EXPECT_FALSE(d.on_resubscribed().repair); // remembered for after it
  auto s = d.seed("e1", 6); // the read saw up to 6: its messages went to the subscriber
  EXPECT_EQ(seqs(s), v{7});
  EXPECT_EQ(s.dropped, 2u);
  ASSERT_TRUE(s.repair); // the resubscription before the seed: read on from 8
  EXPECT_EQ(s.repair->from, 8u);
  EXPECT_EQ(d.last_delivered(), 7u);
}

TEST(OrderedDelivery, SeedDiscardsBufferedMessagesOfAnotherEpoch) {
  ordered_delivery d;
  msg(d, 40, "old");
  auto s = d.seed("e1", 2);
  EXPECT_TRUE(s.deliver.empty());
  EXPECT_FALSE(s.repair);
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_EQ(seqs(msg(d, 3)), v{3});
}

TEST(OrderedDelivery, RoomWithNoLogAdoptsItsFirstEpoch) {
  ordered_delivery d;
  EXPECT_FALSE(d.seed("", 0).repair);
  EXPECT_FALSE(d.on_top("", 0).repair);
  EXPECT_EQ(seqs(msg(d, 1, "fresh")), v{1});
  EXPECT_EQ(d.epoch(), "fresh");
  EXPECT_EQ(msg(d, 2, "other").reset, reset_reason::epoch_changed);
  // The first publish raced the read: its message was buffered before a seed with no log.
  ordered_delivery e;
  msg(e, 1, "fresh");
  EXPECT_EQ(seqs(e.seed("", 0)), v{1});
  EXPECT_EQ(e.epoch(), "fresh");
}

// Random permutations, drops, duplicates, resubscriptions and top checks against a model
// stream that grows as messages are published; repairs are answered late, from the stream
// as it is then. Whatever happens, the subscriber sees 1..N once each, in order.
TEST(OrderedDelivery, PropertyDeliversEverySeqOnceInOrder) {
  std::size_t repairs = 0, dropped = 0; // over all runs: the paths were taken
  for (unsigned seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937 rng(seed);
    auto chance = [&](int percent) { return int(rng() % 100) < percent; };
    const std::uint64_t n = 50 + rng() % 300;
    const std::uint64_t seeded_at = rng() % 5; // published before the first subscriber
    ordered_delivery d({.reorder = 1 + rng() % 20, .repair_batch = 1 + rng() % 16});

    std::uint64_t published = seeded_at;
    std::vector<std::uint64_t> network; // pub/sub messages on their way
    std::optional<core::repair_request> pending;
    std::vector<std::uint64_t> delivered;
    auto take = [&](delivery_actions a) {
      ASSERT_EQ(a.reset, reset_reason::none);
      dropped += a.dropped;
      repairs += a.repair.has_value();
      for (auto s : seqs(a))
        delivered.push_back(s);
      if (a.repair) {
        ASSERT_FALSE(pending);
        pending = a.repair;
      }
    };
    auto answer = [&] {
      auto r = read(pending->from, pending->to, published);
      auto ticket = pending->ticket;
      pending.reset();
      take(d.on_repair(ticket, std::move(r)));
    };

    // Subscribe, a few messages arrive, then the read seeds.
    for (int i = 0; i < 3 && published < n; ++i)
      network.push_back(++published);
    std::shuffle(network.begin(), network.end(), rng);
    for (auto s : network)
      take(msg(d, s));
    network.clear();
    for (std::uint64_t s = 1; s <= seeded_at; ++s)
      delivered.push_back(s); // the read's messages, in the subscriber's reply
    take(d.seed("e1", seeded_at));

    while (published < n || !network.empty() || pending) {
      const int what = rng() % 100;
      if (what < 35 && published < n) {
        ++published;
        if (!chance(10)) network.push_back(published);
        if (chance(5)) network.push_back(published);
      } else if (what < 75 && !network.empty()) {
        // A random one of the messages on their way: any permutation can happen.
        auto it = network.begin() + rng() % network.size();
        auto s = *it;
        network.erase(it);
        take(msg(d, s));
      } else if (what < 88 && pending) {
        answer();
      } else if (what < 94) {
        take(d.on_top("e1", published));
      } else if (what < 97) {
        network.erase(
            std::remove_if(network.begin(), network.end(), [&](auto) { return chance(50); }),
            network.end());
        take(d.on_resubscribed());
      } else if (!network.empty()) {
        network.push_back(network[rng() % network.size()]); // a repeat
      }
      if (HasFatalFailure()) return;
    }
    // The periodic check finds whatever tail was lost.
    take(d.on_top("e1", published));
    while (pending)
      answer();
    std::vector<std::uint64_t> expected(n);
    std::iota(expected.begin(), expected.end(), 1);
    ASSERT_EQ(delivered, expected);
    EXPECT_EQ(d.buffered(), 0u);
  }
  EXPECT_GT(repairs, 1000u);
  EXPECT_GT(dropped, 1000u);
}
