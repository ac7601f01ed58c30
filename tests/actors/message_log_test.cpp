// The room and directory actors driven through their mailboxes, on a real io_context, with
// a sink that records what each peer would have been sent.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/strand.hpp>
#include <caf/all.hpp>
#include <msgpack.hpp>

#include <condition_variable>
#include <future>
#include <thread>

#include "actors/directory.hpp"
#include "actors/messages.hpp"
#include "actors/presence.hpp"
#include "actors/message_log.hpp"
#include "tests/actors/actor_harness.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

/// Records every map it is sent, decoded to (type, seq, recovered, number of msgs).
class recording_sink final : public actors::frame_sink {
public:
  struct entry {
    std::string type;
    std::uint64_t seq = 0;
    bool recovered = false;
    std::vector<std::uint64_t> msgs; // seqs in subscribed.msgs / history.msgs
    std::string epoch;
    std::string code; // of an error
  };

  void send(protocol::frame_ptr frame) override {
    auto payload = frame->payload();
    std::size_t offset = 0;
    std::lock_guard lock(mutex_);
    while (offset < payload.size()) {
      auto handle = msgpack::unpack(payload.data(), payload.size(), offset);
      entries_.push_back(read(handle.get()));
    }
    changed_.notify_all();
  }

  std::size_t size() {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

  /// Waits (bounded) until `count` maps have arrived and returns them.
  std::vector<entry> wait_for(std::size_t count) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 5s, [&] { return entries_.size() >= count; });
    return entries_;
  }

private:
  static entry read(const msgpack::object& map) {
    entry e;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
      const auto& kv = map.via.map.ptr[i];
      const auto key = kv.key.as<std::string>();
      if (key == "t") e.type = kv.val.as<std::string>();
      if (key == "seq") e.seq = kv.val.as<std::uint64_t>();
      if (key == "recovered") e.recovered = kv.val.as<bool>();
      if (key == "epoch") e.epoch = kv.val.as<std::string>();
      if (key == "code") e.code = kv.val.as<std::string>();
      if (key == "msgs")
        for (std::uint32_t j = 0; j < kv.val.via.array.size; ++j)
          e.msgs.push_back(read(kv.val.via.array.ptr[j]).seq);
    }
    return e;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<entry> entries_;
};

class RoomActor : public tests::ActorHarness {
protected:
  caf::actor room(std::size_t history = 1000) {
    actors::message_log_settings settings;
    settings.history = history;
    auto presence = actors::spawn_presence(system_, boost::asio::make_strand(io_), "r", {});
    return actors::spawn_message_log(system_, boost::asio::make_strand(io_), "r", settings,
                                     presence, caf::actor{}, store_, metrics_);
  }

  /// A room whose writes go to `storage` (a test's own actor standing in for the storage
  /// actor) and whose state is loaded from the memory store.
  caf::actor durable_room(const caf::actor& storage) {
    auto presence = actors::spawn_presence(system_, boost::asio::make_strand(io_), "r", {});
    return actors::spawn_message_log(system_, boost::asio::make_strand(io_), "r", {}, presence,
                                     storage, store_, metrics_);
  }

  /// Waits (bounded) for the room's store_request.
  static store::room_writes next_writes(caf::scoped_actor& storage) {
    store::room_writes writes;
    storage->receive([&](actors::store_request& request) { writes = std::move(request.writes); },
                     caf::after(5s) >> [] { ADD_FAILURE() << "no store_request"; });
    return writes;
  }

  /// Once `room` has answered an unsub of a connection that never subscribed (a request that
  /// waits for nothing), everything sent to it before has been handled.
  void settle(const caf::actor& room) {
    auto probe = std::make_shared<recording_sink>();
    caf::anon_send(room, actors::room_unsub{peer("probe", probe), {99, "r"}});
    ASSERT_EQ(probe->wait_for(1).size(), 1u);
  }

  actors::peer_ref peer(const std::string& client, std::shared_ptr<recording_sink> sink) {
    return {client, "user-" + client, "", sink, ""};
  }

  static protocol::pub_request pub(protocol::request_id id, std::optional<std::string> key = {}) {
    return {id, "r", std::string("\xa1x", 2), std::move(key)};
  }
};

} // namespace

TEST_F(RoomActor, SequencesWithoutHolesAndFansOut) {
  auto r = room();
  auto member = std::make_shared<recording_sink>();
  auto publisher = std::make_shared<recording_sink>();
  caf::anon_send(r, actors::room_sub{peer("m", member), {1, "r", std::nullopt}});
  for (protocol::request_id id = 1; id <= 50; ++id)
    caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(id)});
  auto acks = publisher->wait_for(50);
  ASSERT_EQ(acks.size(), 50u);
  for (std::size_t i = 0; i < acks.size(); ++i) {
    EXPECT_EQ(acks[i].type, "ack");
    EXPECT_EQ(acks[i].seq, i + 1);
  }
  auto seen = member->wait_for(51);
  ASSERT_EQ(seen.size(), 51u);
  EXPECT_EQ(seen[0].type, "subscribed");
  EXPECT_EQ(seen[0].seq, 0u);
  for (std::size_t i = 1; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].type, "msg");
    EXPECT_EQ(seen[i].seq, i);
  }
}

TEST_F(RoomActor, IdempotencyKeyAcksTheFirstSeqAndDeliversOnce) {
  auto r = room();
  auto member = std::make_shared<recording_sink>();
  auto publisher = std::make_shared<recording_sink>();
  caf::anon_send(r, actors::room_sub{peer("m", member), {1, "r", std::nullopt}});
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(1, "k")});
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(2)});
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(3, "k")});
  auto acks = publisher->wait_for(3);
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[0].seq, 1u);
  EXPECT_EQ(acks[1].seq, 2u);
  EXPECT_EQ(acks[2].seq, 1u); // the resubmission
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(4)});
  publisher->wait_for(4);
  auto seen = member->wait_for(4);
  ASSERT_EQ(seen.size(), 4u); // subscribed + seq 1, 2, 4... no second delivery of seq 1
  EXPECT_EQ(seen[1].seq, 1u);
  EXPECT_EQ(seen[2].seq, 2u);
  EXPECT_EQ(seen[3].seq, 3u);
}

TEST_F(RoomActor, SubscribeSinceRecoversExactlyTheMissed) {
  auto r = room(5);
  auto publisher = std::make_shared<recording_sink>();
  for (protocol::request_id id = 1; id <= 8; ++id)
    caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(id)});
  auto acks = publisher->wait_for(8);
  auto first = std::make_shared<recording_sink>();
  caf::anon_send(r, actors::room_sub{peer("a", first), {1, "r", std::nullopt}});
  auto fresh = first->wait_for(1).at(0);
  EXPECT_FALSE(fresh.recovered);
  EXPECT_EQ(fresh.seq, 8u);
  EXPECT_EQ(fresh.msgs, (std::vector<std::uint64_t>{4, 5, 6, 7, 8})); // the kept ones

  auto resumed = std::make_shared<recording_sink>();
  caf::anon_send(
      r, actors::room_sub{peer("b", resumed), {2, "r", protocol::log_position{5, fresh.epoch}}});
  auto reply = resumed->wait_for(1).at(0);
  EXPECT_TRUE(reply.recovered);
  EXPECT_EQ(reply.msgs, (std::vector<std::uint64_t>{6, 7, 8}));

  auto too_old = std::make_shared<recording_sink>();
  caf::anon_send(
      r, actors::room_sub{peer("c", too_old), {3, "r", protocol::log_position{2, fresh.epoch}}});
  EXPECT_FALSE(too_old->wait_for(1).at(0).recovered); // 3 is gone

  auto other_epoch = std::make_shared<recording_sink>();
  caf::anon_send(r, actors::room_sub{peer("d", other_epoch),
                                     {4, "r", protocol::log_position{7, "elsewhere"}}});
  EXPECT_FALSE(other_epoch->wait_for(1).at(0).recovered);
}

TEST_F(RoomActor, HistoryAfterWithLimit) {
  auto r = room();
  auto publisher = std::make_shared<recording_sink>();
  for (protocol::request_id id = 1; id <= 6; ++id)
    caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(id)});
  publisher->wait_for(6);
  auto reader = std::make_shared<recording_sink>();
  caf::anon_send(r, actors::room_history{peer("h", reader), {1, "r", 2, 3}});
  auto reply = reader->wait_for(1).at(0);
  EXPECT_EQ(reply.type, "history");
  EXPECT_EQ(reply.seq, 6u);
  EXPECT_EQ(reply.msgs, (std::vector<std::uint64_t>{3, 4, 5}));
}

TEST_F(RoomActor, EvictedRoomKeepsEpochSeqAndHistory) {
  actors::directory_settings settings;
  settings.room_idle = 20ms;
  auto directory = actors::spawn_directory(system_, io_, settings, store_, caf::actor{}, metrics_);
  caf::scoped_actor self(system_);
  auto acquire = [&] {
    auto got = std::make_shared<std::promise<caf::actor>>();
    caf::anon_send(directory, actors::acquire_atom::value, std::string("r"),
                   actors::room_reply{[got](const std::string&, const actors::room_handles& r) {
                     got->set_value(r.log);
                   }});
    auto room = got->get_future();
    if (room.wait_for(5s) != std::future_status::ready) {
      ADD_FAILURE() << "no room";
      return caf::actor{};
    }
    return room.get();
  };
  auto publisher = std::make_shared<recording_sink>();
  auto first = acquire();
  caf::anon_send(first, actors::room_pub{peer("p", publisher), pub(1)});
  caf::anon_send(first, actors::room_pub{peer("p", publisher), pub(2)});
  publisher->wait_for(2);
  self->send(directory, actors::release_atom::value, std::string("r"));
  // Eviction hands the log to the store; wait (bounded) until the room actor is gone.
  for (int i = 0; i < 500 && metrics_.rooms.load() > 0; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_EQ(metrics_.rooms.load(), 0);
  auto second = acquire();
  EXPECT_NE(second, first);
  auto resumed = std::make_shared<recording_sink>();
  caf::anon_send(second, actors::room_sub{peer("s", resumed), {1, "r", std::nullopt}});
  auto reply = resumed->wait_for(1).at(0);
  EXPECT_EQ(reply.seq, 2u);
  EXPECT_EQ(reply.msgs, (std::vector<std::uint64_t>{1, 2}));
  caf::anon_send(second, actors::room_pub{peer("p", publisher), pub(3)});
  EXPECT_EQ(publisher->wait_for(3).at(2).seq, 3u);
  caf::anon_send(directory, actors::stop_atom::value);
}

TEST_F(RoomActor, AcksAndPushesWaitForTheCommit) {
  caf::scoped_actor storage(system_);
  auto r = durable_room(storage);
  auto member = std::make_shared<recording_sink>();
  auto publisher = std::make_shared<recording_sink>();
  caf::anon_send(r, actors::room_sub{peer("m", member), {1, "r", std::nullopt}});
  ASSERT_EQ(member->wait_for(1).at(0).type, "subscribed");
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(1, "k1")});
  auto writes = next_writes(storage);
  ASSERT_EQ(writes.messages.size(), 1u);
  EXPECT_EQ(writes.room, "r");
  EXPECT_EQ(writes.messages[0].seq, 1u);
  EXPECT_EQ(writes.messages[0].key, "k1");
  // Published while the first commit runs: gathered into the next batch, not sent yet.
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(2)});
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(3)});
  settle(r);
  EXPECT_EQ(publisher->size(), 0u); // nothing acknowledged before its commit
  EXPECT_EQ(member->size(), 1u);    // nor pushed

  storage->send(r, actors::store_done{});
  EXPECT_EQ(publisher->wait_for(1).at(0).seq, 1u);
  EXPECT_EQ(member->wait_for(2).at(1).seq, 1u);
  writes = next_writes(storage); // the two that waited, in one batch
  ASSERT_EQ(writes.messages.size(), 2u);
  EXPECT_EQ(writes.messages[0].seq, 2u);
  EXPECT_EQ(writes.messages[1].seq, 3u);
  settle(r);
  EXPECT_EQ(publisher->size(), 1u);
  storage->send(r, actors::store_done{});
  auto acks = publisher->wait_for(3);
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[2].seq, 3u);
  EXPECT_EQ(member->wait_for(4).size(), 4u);
}

TEST_F(RoomActor, ASubscribeSeesOnlyCommittedMessages) {
  caf::scoped_actor storage(system_);
  auto r = durable_room(storage);
  auto publisher = std::make_shared<recording_sink>();
  auto late = std::make_shared<recording_sink>();
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(1)});
  next_writes(storage);
  // Subscribed while seq 1 is being committed, and the commit fails: had the reply been
  // sent at once it would show a message that no longer exists.
  caf::anon_send(r, actors::room_sub{peer("late", late), {1, "r", std::nullopt}});
  storage->send(r, actors::store_done{"the store could not write: disk is full"});
  auto reply = late->wait_for(1).at(0);
  EXPECT_EQ(reply.type, "subscribed");
  EXPECT_EQ(reply.seq, 0u);
  EXPECT_TRUE(reply.msgs.empty());
  EXPECT_EQ(publisher->wait_for(1).at(0).code, "unavailable");
}

TEST_F(RoomActor, AFailedCommitIsUnavailableAndTakesNothingBack) {
  caf::scoped_actor storage(system_);
  auto r = durable_room(storage);
  auto member = std::make_shared<recording_sink>();
  auto publisher = std::make_shared<recording_sink>();
  caf::anon_send(r, actors::room_sub{peer("m", member), {1, "r", std::nullopt}});
  ASSERT_EQ(member->wait_for(1).size(), 1u);
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(1, "k")});
  next_writes(storage);
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(2)}); // staged behind it
  settle(r);
  storage->send(r, actors::store_done{"the store could not write: disk is full"});
  auto replies = publisher->wait_for(2);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[0].type, "error");
  EXPECT_EQ(replies[0].code, "unavailable");
  EXPECT_EQ(replies[1].code, "unavailable");
  settle(r);
  EXPECT_EQ(member->size(), 1u); // nothing was pushed

  // The room starts again from what the store holds: the same key is new, seq 1 again.
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(3, "k")});
  auto writes = next_writes(storage);
  ASSERT_EQ(writes.messages.size(), 1u);
  EXPECT_EQ(writes.messages[0].seq, 1u);
  storage->send(r, actors::store_done{});
  EXPECT_EQ(publisher->wait_for(3).at(2).seq, 1u);
  EXPECT_EQ(member->wait_for(2).at(1).seq, 1u);
}

TEST_F(RoomActor, WhileACommitIsStalledANewPubIsUnavailableAndUsesNoSeq) {
  caf::scoped_actor storage(system_);
  auto r = durable_room(storage);
  auto member = std::make_shared<recording_sink>();
  auto publisher = std::make_shared<recording_sink>();
  caf::anon_send(r, actors::room_sub{peer("m", member), {1, "r", std::nullopt}});
  ASSERT_EQ(member->wait_for(1).size(), 1u);
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(1, "k1")});
  next_writes(storage);
  // The storage actor's commit runs past the bound (the watch is what the real one writes).
  auto& watch = metrics_.commits;
  watch.set_bound(1ms);
  watch.begin({1, 1, 0, 0});
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (!watch.stalled() && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(watch.stalled());

  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(2, "k2")});
  auto replies = publisher->wait_for(1);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].type, "error");
  EXPECT_EQ(replies[0].code, "unavailable");
  EXPECT_EQ(watch.refused(), 1u);
  // A resubmission of what is already in the commit is not a new write: it waits for it.
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(3, "k1")});
  settle(r);
  EXPECT_EQ(publisher->size(), 1u);

  watch.end(5ms);
  storage->send(r, actors::store_done{});
  replies = publisher->wait_for(3);
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[1].seq, 1u);
  EXPECT_EQ(replies[2].seq, 1u);
  // Sent again, the refused one gets the next seq: it had used none.
  caf::anon_send(r, actors::room_pub{peer("p", publisher), pub(4, "k2")});
  auto writes = next_writes(storage);
  ASSERT_EQ(writes.messages.size(), 1u);
  EXPECT_EQ(writes.messages[0].seq, 2u);
  storage->send(r, actors::store_done{});
  EXPECT_EQ(publisher->wait_for(4).at(3).seq, 2u);
  EXPECT_EQ(member->wait_for(3).size(), 3u); // seq 1 and 2 pushed once each
}
