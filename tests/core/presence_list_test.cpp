#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "core/presence_list.hpp"

using namespace troupe::core;

namespace {

presence_entry entry(const std::string& client, const std::string& user = "u",
                     std::string state = {}) {
  return {client, user, "", "", std::move(state)};
}

std::string packed_state(int cursor) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(1);
  pk.pack(std::string("cursor"));
  pk.pack(cursor);
  return {buffer.data(), buffer.size()};
}

std::vector<std::string> clients(const std::vector<std::pair<std::string, std::string>>& joins) {
  std::vector<std::string> out;
  for (const auto& [client, bytes] : joins)
    out.push_back(client);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> clients(const std::vector<std::string>& encoded) {
  std::vector<std::string> out;
  for (const auto& bytes : encoded) {
    auto handle = msgpack::unpack(bytes.data(), bytes.size());
    auto map = handle.get().as<std::map<std::string, msgpack::object>>();
    out.push_back(map.at("client").as<std::string>());
  }
  std::sort(out.begin(), out.end());
  return out;
}

} // namespace

TEST(PresenceList, JoinsAreCoalescedIntoOneDiff) {
  presence_list list;
  list.upsert(entry("a"));
  list.upsert(entry("b"));
  auto diff = list.take_diff();
  ASSERT_TRUE(diff);
  EXPECT_EQ(diff->pseq, 1u);
  EXPECT_EQ(clients(diff->joins), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(diff->leaves.empty());
  EXPECT_FALSE(list.take_diff()); // nothing since
  EXPECT_EQ(list.pseq(), 1u);
}

TEST(PresenceList, StateChangeIsLeaveAndJoinOfTheEntry) {
  presence_list list;
  list.upsert(entry("a"));
  list.take_diff();
  list.upsert(entry("a", "u", packed_state(1)));
  list.upsert(entry("a", "u", packed_state(2))); // only the last state within a window
  auto diff = list.take_diff();
  ASSERT_TRUE(diff);
  EXPECT_EQ(diff->pseq, 2u);
  ASSERT_EQ(diff->joins.size(), 1u);
  ASSERT_EQ(diff->leaves.size(), 1u);
  EXPECT_EQ(diff->leaves[0], encode_entry(entry("a")));
  EXPECT_EQ(diff->joins[0].second, encode_entry(entry("a", "u", packed_state(2))));
}

TEST(PresenceList, JoinAndLeaveWithinAWindowCancel) {
  presence_list list;
  list.upsert(entry("a"));
  list.remove("a");
  EXPECT_FALSE(list.take_diff());
  EXPECT_EQ(list.pseq(), 0u);
}

std::size_t snapshot_size(const presence_list& list, const std::string* extra = nullptr) {
  auto bytes = list.encoded_snapshot(extra);
  auto handle = msgpack::unpack(bytes.data(), bytes.size());
  return handle.get().via.array.size;
}

TEST(PresenceList, SnapshotShowsTheLastSealedVersion) {
  presence_list list;
  list.upsert(entry("a"));
  list.take_diff();
  list.upsert(entry("b")); // pending
  list.remove("a");        // pending
  EXPECT_TRUE(list.sealed("a"));
  EXPECT_FALSE(list.sealed("b"));
  EXPECT_EQ(snapshot_size(list), 1u); // just "a", as diff 1 left it
  const std::string own = encode_entry(entry("b"));
  EXPECT_EQ(snapshot_size(list, &own), 2u);
  auto diff = list.take_diff();
  ASSERT_TRUE(diff);
  EXPECT_EQ(diff->pseq, 2u);
  EXPECT_EQ(snapshot_size(list), 1u); // now just "b"
  EXPECT_TRUE(list.sealed("b"));
}

TEST(PresenceList, ReplacingAUsersEntryIsOneDiff) {
  presence_list list;
  list.upsert(entry("old", "ann"));
  list.take_diff();
  list.remove("old");
  list.upsert(entry("new", "ann"));
  auto diff = list.take_diff();
  ASSERT_TRUE(diff);
  EXPECT_EQ(clients(diff->leaves), (std::vector<std::string>{"old"}));
  EXPECT_EQ(clients(diff->joins), (std::vector<std::string>{"new"}));
}

TEST(PresenceList, EntryEncodingOmitsEmptyFields) {
  auto bytes = encode_entry({"c1", "ann", "Ann", "", packed_state(3)});
  auto map = msgpack::unpack(bytes.data(), bytes.size())
                 .get()
                 .as<std::map<std::string, msgpack::object>>();
  EXPECT_EQ(map.at("client").as<std::string>(), "c1");
  EXPECT_EQ(map.at("name").as<std::string>(), "Ann");
  EXPECT_EQ(map.count("info"), 0u);
  using state_map = std::map<std::string, int>;
  EXPECT_EQ(map.at("state").as<state_map>().at("cursor"), 3);
}
