// The document actor driven through its mailbox on a real io_context, with sinks that record
// what each peer would have been sent. The sequencer's own logic is tested in
// tests/core/document_sequencer_test.cpp.

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <caf/all.hpp>
#include <msgpack.hpp>

#include <condition_variable>
#include <thread>

#include "actors/document.hpp"
#include "actors/messages.hpp"
#include "actors/presence.hpp"
#include "tests/actors/actor_harness.hpp"

using namespace troupe;
using namespace std::chrono_literals;

namespace {

/// Keeps every map it is sent, decoded.
class recording_sink final : public actors::frame_sink {
public:
  void send(protocol::frame_ptr frame) override {
    auto payload = frame->payload();
    std::size_t offset = 0;
    std::lock_guard lock(mutex_);
    while (offset < payload.size())
      maps_.push_back(msgpack::unpack(payload.data(), payload.size(), offset));
    changed_.notify_all();
  }

  /// Waits (bounded) for the `n`th map (1-based) and returns it.
  const msgpack::object& wait_for(std::size_t n) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 5s, [&] { return maps_.size() >= n; });
    if (maps_.size() < n)
      throw std::runtime_error("only " + std::to_string(maps_.size()) + " maps arrived");
    return maps_[n - 1].get();
  }

  std::size_t count() {
    std::lock_guard lock(mutex_);
    return maps_.size();
  }

  /// The revs of the acks and operations received, in order, once there are `n` of them
  /// (or what there is after a bounded wait).
  std::vector<std::uint64_t> revs(std::size_t n) {
    std::unique_lock lock(mutex_);
    std::vector<std::uint64_t> out;
    changed_.wait_for(lock, 5s, [&] {
      out.clear();
      for (const auto& handle : maps_) {
        const auto& map = handle.get();
        std::string type;
        std::uint64_t rev = 0;
        for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
          const auto key = map.via.map.ptr[i].key.as<std::string_view>();
          if (key == "t") type = map.via.map.ptr[i].val.as<std::string>();
          if (key == "rev") rev = map.via.map.ptr[i].val.as<std::uint64_t>();
        }
        if (type == "ack" || type == "op") out.push_back(rev);
      }
      return out.size() >= n;
    });
    return out;
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<msgpack::object_handle> maps_;
};

const msgpack::object* field(const msgpack::object& map, std::string_view key) {
  for (std::uint32_t i = 0; i < map.via.map.size; ++i)
    if (map.via.map.ptr[i].key.as<std::string_view>() == key) return &map.via.map.ptr[i].val;
  return nullptr;
}

std::string type_of(const msgpack::object& map) { return field(map, "t")->as<std::string>(); }

class DocumentActor : public tests::ActorHarness {
protected:
  caf::actor document(std::size_t log = 1000) {
    auto presence = actors::spawn_presence(system_, boost::asio::make_strand(io_), "d", {});
    return actors::spawn_document(system_, boost::asio::make_strand(io_), "d", {log}, presence,
                                  caf::actor{}, store_, metrics_);
  }

  static actors::peer_ref peer(const std::string& client, std::shared_ptr<recording_sink> sink) {
    return {client, "user-" + client, "", sink, ""};
  }

  static actors::doc_op op(protocol::request_id id, std::uint64_t rev,
                           std::vector<protocol::op_component> components, std::string key,
                           const actors::peer_ref& from) {
    return {from, {{id, "d", rev, std::move(components), std::move(key)}}};
  }
};

} // namespace

TEST_F(DocumentActor, AcksTheAuthorAndPushesTheTransformedOperationToOthers) {
  auto d = document();
  auto alice = std::make_shared<recording_sink>();
  auto bob = std::make_shared<recording_sink>();
  caf::anon_send(d, actors::doc_open{peer("a", alice), {1, "d", std::nullopt}});
  caf::anon_send(d, actors::doc_open{peer("b", bob), {1, "d", std::nullopt}});
  const auto& opened = bob->wait_for(1);
  EXPECT_EQ(type_of(opened), "opened");
  EXPECT_EQ(field(opened, "rev")->as<std::uint64_t>(), 0u);
  EXPECT_EQ(field(opened, "text")->as<std::string>(), "");
  // Opening joins presence: the reply lists the opener itself (alice's arrival may still
  // wait for its diff).
  const auto& members = *field(opened, "members");
  bool listed = false;
  for (std::uint32_t i = 0; i < members.via.array.size; ++i)
    listed = listed || field(members.via.array.ptr[i], "client")->as<std::string>() == "b";
  EXPECT_TRUE(listed);

  caf::anon_send(d, op(2, 0, {std::string("hi")}, "a1", peer("a", alice)));
  // Bob's op was made against rev 0 too, inserting at 0: accepted later, it goes first.
  caf::anon_send(d, op(2, 0, {std::string("yo")}, "b1", peer("b", bob)));
  const auto& ack = alice->wait_for(2);
  EXPECT_EQ(type_of(ack), "ack");
  EXPECT_EQ(field(ack, "rev")->as<std::uint64_t>(), 1u);
  const auto& pushed_to_bob = bob->wait_for(2);
  EXPECT_EQ(type_of(pushed_to_bob), "op");
  EXPECT_EQ(field(pushed_to_bob, "rev")->as<std::uint64_t>(), 1u);
  EXPECT_EQ(field(pushed_to_bob, "user")->as<std::string>(), "user-a");
  const auto& bob_ack = bob->wait_for(3);
  EXPECT_EQ(type_of(bob_ack), "ack");
  EXPECT_EQ(field(bob_ack, "rev")->as<std::uint64_t>(), 2u);
  const auto& pushed_to_alice = alice->wait_for(3);
  EXPECT_EQ(type_of(pushed_to_alice), "op");
  EXPECT_EQ(field(pushed_to_alice, "key")->as<std::string>(), "b1");
  const auto& transformed = *field(pushed_to_alice, "op");
  ASSERT_EQ(transformed.via.array.size, 1u); // "yo" at 0: no retain in front, none behind
  EXPECT_EQ(transformed.via.array.ptr[0].as<std::string>(), "yo");

  // A third holder opening now gets the text both converge to.
  auto carol = std::make_shared<recording_sink>();
  caf::anon_send(d, actors::doc_open{peer("c", carol), {1, "d", std::nullopt}});
  const auto& late = carol->wait_for(1);
  EXPECT_EQ(field(late, "text")->as<std::string>(), "yohi");
  EXPECT_EQ(field(late, "rev")->as<std::uint64_t>(), 2u);
}

// One operation per message, as an editor sends them: the actor answers a run of them with one
// frame, but every holder still sees every revision once, in order, acks included; an `open`
// or another author's operation in the middle of a run sees exactly what went out before it.
TEST_F(DocumentActor, OneOperationPerMessageKeepsEveryHolderInRevOrder) {
  auto d = document();
  auto alice = std::make_shared<recording_sink>();
  auto bob = std::make_shared<recording_sink>();
  caf::anon_send(d, actors::doc_open{peer("a", alice), {1, "d", std::nullopt}});
  caf::anon_send(d, actors::doc_open{peer("b", bob), {1, "d", std::nullopt}});
  bob->wait_for(1);
  constexpr std::uint64_t edits = 300;
  auto carol = std::make_shared<recording_sink>();
  for (std::uint64_t k = 0; k < edits; ++k) {
    // Alice types at the start, each edit made against the revision of her previous one.
    caf::anon_send(d, op(10 + k, k, {std::string("x")}, "a" + std::to_string(k), peer("a", alice)));
    if (k == 149) caf::anon_send(d, actors::doc_open{peer("c", carol), {1, "d", std::nullopt}});
    if (k == 199) caf::anon_send(d, op(2, 200, {std::string("b")}, "b1", peer("b", bob)));
  }
  std::vector<std::uint64_t> expected(edits + 1);
  for (std::uint64_t rev = 1; rev <= edits + 1; ++rev)
    expected[rev - 1] = rev;
  EXPECT_EQ(alice->revs(edits + 1), expected);
  EXPECT_EQ(bob->revs(edits + 1), expected);
  // Carol opened after alice's 150th edit: that text, then every later revision once.
  const auto& opened = carol->wait_for(1);
  ASSERT_EQ(type_of(opened), "opened");
  EXPECT_EQ(field(opened, "rev")->as<std::uint64_t>(), 150u);
  EXPECT_EQ(field(opened, "text")->as<std::string>(), std::string(150, 'x'));
  const std::vector<std::uint64_t> after_open(expected.begin() + 150, expected.end());
  EXPECT_EQ(carol->revs(after_open.size()), after_open);
  // And the text they all converge to: bob's "b" went in after 200 of alice's edits, at 0.
  auto dave = std::make_shared<recording_sink>();
  caf::anon_send(d, actors::doc_open{peer("e", dave), {1, "d", std::nullopt}});
  const auto& last = dave->wait_for(1);
  EXPECT_EQ(field(last, "rev")->as<std::uint64_t>(), edits + 1);
  EXPECT_EQ(field(last, "text")->as<std::string>(),
            std::string(100, 'x') + "b" + std::string(200, 'x'));
}

TEST_F(DocumentActor, RecoversByRevisionOrHandsOutTheText) {
  auto d = document(3);
  auto author = std::make_shared<recording_sink>();
  caf::anon_send(d, actors::doc_open{peer("a", author), {1, "d", std::nullopt}});
  const std::string epoch = field(author->wait_for(1), "epoch")->as<std::string>();
  for (std::uint64_t rev = 0; rev < 5; ++rev)
    caf::anon_send(d, op(rev + 2, rev, {static_cast<std::int64_t>(rev), std::string("x")},
                         "k" + std::to_string(rev), peer("a", author)));
  author->wait_for(6);

  auto reader = std::make_shared<recording_sink>();
  caf::anon_send(d,
                 actors::doc_open{peer("r", reader), {1, "d", protocol::doc_position{3, epoch}}});
  const auto& recovered = reader->wait_for(1);
  EXPECT_TRUE(field(recovered, "recovered")->as<bool>());
  const auto& ops = *field(recovered, "ops");
  ASSERT_EQ(ops.via.array.size, 2u);
  EXPECT_EQ(field(ops.via.array.ptr[0], "rev")->as<std::uint64_t>(), 4u);
  EXPECT_EQ(field(ops.via.array.ptr[1], "key")->as<std::string>(), "k4");
  EXPECT_EQ(field(recovered, "text"), nullptr);

  // Revision 1 is older than the three kept operations: the text instead.
  auto behind = std::make_shared<recording_sink>();
  caf::anon_send(d,
                 actors::doc_open{peer("s", behind), {1, "d", protocol::doc_position{1, epoch}}});
  const auto& rebuilt = behind->wait_for(1);
  EXPECT_EQ(field(rebuilt, "recovered"), nullptr);
  EXPECT_EQ(field(rebuilt, "text")->as<std::string>(), "xxxxx");
  EXPECT_EQ(field(rebuilt, "rev")->as<std::uint64_t>(), 5u);

  // Another epoch: the text.
  auto stranger = std::make_shared<recording_sink>();
  caf::anon_send(
      d, actors::doc_open{peer("t", stranger), {1, "d", protocol::doc_position{5, "other"}}});
  EXPECT_EQ(field(stranger->wait_for(1), "text")->as<std::string>(), "xxxxx");
}

TEST_F(DocumentActor, AnswersConflictAndBadRequest) {
  auto d = document(2);
  auto author = std::make_shared<recording_sink>();
  for (std::uint64_t rev = 0; rev < 4; ++rev)
    caf::anon_send(
        d, op(rev + 1, rev, {std::string("x")}, "k" + std::to_string(rev), peer("a", author)));
  caf::anon_send(d, op(10, 1, {std::string("y")}, "old", peer("a", author)));
  caf::anon_send(d, op(11, 9, {std::string("y")}, "future", peer("a", author)));
  caf::anon_send(d, op(12, 4, {std::int64_t{5}, std::string("y")}, "past-end", peer("a", author)));
  caf::anon_send(d, op(13, 4, {std::string("\xff")}, "not-utf8", peer("a", author)));
  caf::anon_send(d, op(14, 0, {std::string("x")}, "k0", peer("a", author))); // resubmitted? evicted
  const auto& conflict = author->wait_for(5);
  EXPECT_EQ(field(conflict, "code")->as<std::string>(), "conflict");
  EXPECT_EQ(field(conflict, "id")->as<int>(), 10);
  for (std::size_t n = 6; n <= 8; ++n) {
    const auto& error = author->wait_for(n);
    EXPECT_EQ(type_of(error), "error");
    EXPECT_EQ(field(error, "code")->as<std::string>(), "bad_request");
  }
  const auto& evicted = author->wait_for(9);
  EXPECT_EQ(field(evicted, "code")->as<std::string>(), "conflict");
}

TEST_F(DocumentActor, KeepsTheDocumentInTheStoreWhenStopped) {
  auto d = document();
  auto author = std::make_shared<recording_sink>();
  caf::anon_send(d, op(1, 0, {std::string("kept")}, "k", peer("a", author)));
  author->wait_for(1);
  caf::scoped_actor self(system_);
  self->send(d, actors::stop_atom::value);
  self->receive([](actors::stopped_atom, const std::string& name) { EXPECT_EQ(name, "d"); },
                caf::after(5s) >> [] { FAIL() << "the document did not stop"; });
  auto kept = store_.load_document("d", 1000).state;
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->rev(), 1u);
  EXPECT_EQ(kept->text().to_string(), "kept");
}
