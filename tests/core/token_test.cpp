// Tokens (libjwt, HS256 pinned), room patterns and the request budget: pure logic.
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "core/rate_limiter.hpp"
#include "core/room_access.hpp"
#include "core/token.hpp"
#include "tests/support/tokens.hpp"

using namespace troupe;
using test::epoch_seconds;
using test::hand_token;
using test::mint_token;
using json = nlohmann::json;

namespace {

const std::string secret = "unit-test-secret";

core::token_result verify(const std::string& token) {
  return core::verify_token(token, secret, epoch_seconds());
}

} // namespace

TEST(Token, AValidTokenGivesItsClaims) {
  auto result = verify(mint_token({{"sub", "alice"},
                                   {"name", "Alice"},
                                   {"info", {{"color", "red"}, {"n", 3}}},
                                   {"exp", epoch_seconds(std::chrono::hours(1))},
                                   {"rooms", {"lobby", "team-42:*"}},
                                   {"read", {"news"}}},
                                  secret));
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.claims->user, "alice");
  EXPECT_EQ(result.claims->name, "Alice");
  ASSERT_TRUE(result.claims->expires);
  auto info = msgpack::unpack(result.claims->info.data(), result.claims->info.size());
  ASSERT_EQ(info->type, msgpack::type::MAP);
  EXPECT_EQ(info->via.map.size, 2u);
  const auto& access = result.claims->access;
  EXPECT_TRUE(access.may_write("lobby"));
  EXPECT_TRUE(access.may_write("team-42:design"));
  EXPECT_TRUE(access.may_read("news"));
  EXPECT_FALSE(access.may_write("news"));
  EXPECT_FALSE(access.may_read("team-43:design"));
}

TEST(Token, NoRoomClaimsMeansNoRoom) {
  auto result = verify(mint_token({{"sub", "bob"}}, secret));
  ASSERT_TRUE(result) << result.error;
  EXPECT_FALSE(result.claims->expires);
  EXPECT_TRUE(result.claims->info.empty());
  EXPECT_FALSE(result.claims->access.may_read("lobby"));
  EXPECT_FALSE(result.claims->access.may_write("lobby"));
}

TEST(Token, ForgedExpiredAndMalformedAreRefused) {
  EXPECT_FALSE(verify(mint_token({{"sub", "a"}}, "another-secret")));
  auto expired =
      verify(mint_token({{"sub", "a"}, {"exp", epoch_seconds(-std::chrono::seconds(1))}}, secret));
  EXPECT_FALSE(expired);
  EXPECT_EQ(expired.error, "token expired");
  EXPECT_FALSE(
      verify(mint_token({{"sub", "a"}, {"nbf", epoch_seconds(std::chrono::hours(1))}}, secret)));
  EXPECT_FALSE(verify(mint_token({{"sub", "a"}, {"exp", "tomorrow"}}, secret)));
  EXPECT_FALSE(verify(mint_token({{"name", "no sub"}}, secret)));
  EXPECT_FALSE(verify(mint_token({{"sub", ""}}, secret)));
  EXPECT_FALSE(verify(mint_token({{"sub", 42}}, secret)));
  EXPECT_FALSE(verify(mint_token({{"sub", "a"}, {"rooms", "lobby"}}, secret)));
  EXPECT_FALSE(verify(mint_token({{"sub", "a"}, {"read", {1, 2}}}, secret)));
  EXPECT_FALSE(verify(""));
  EXPECT_FALSE(verify("not.a.token"));
  EXPECT_FALSE(verify("a.b"));
  // A valid token with one character of its payload changed.
  std::string tampered = mint_token({{"sub", "alice"}}, secret);
  tampered[tampered.find('.') + 3] ^= 1;
  EXPECT_FALSE(verify(tampered));
}

TEST(Token, OnlyHs256IsAccepted) {
  const json claims = {{"sub", "mallory"}, {"rooms", {"*"}}};
  // Signed with the right key under another HMAC: libjwt verifies it, the pin refuses it.
  EXPECT_FALSE(verify(mint_token(claims, secret, JWT_ALG_HS512)));
  EXPECT_FALSE(verify(mint_token(claims, secret, JWT_ALG_HS384)));
  // Unsigned, by libjwt and by hand (with and without the trailing dot).
  EXPECT_FALSE(verify(mint_token(claims, secret, JWT_ALG_NONE)));
  EXPECT_FALSE(verify(hand_token({{"alg", "none"}, {"typ", "JWT"}}, claims)));
  EXPECT_FALSE(verify(hand_token({{"alg", "none"}}, claims)
                          .substr(0, hand_token({{"alg", "none"}}, claims).size() - 1)));
  EXPECT_FALSE(verify(hand_token({{"alg", "NONE"}}, claims)));
  // An RS256 header carrying a valid HS256 signature of another header.
  const std::string good = mint_token(claims, secret);
  const std::string rs_header = test::base64url(R"({"alg":"RS256","typ":"JWT"})");
  EXPECT_FALSE(verify(rs_header + good.substr(good.find('.'))));
  EXPECT_TRUE(verify(good));
}

TEST(Token, WithoutASecretTheClaimsAreReadUnverified) {
  auto result =
      core::read_token_unverified(mint_token({{"sub", "carol"}, {"name", "Carol"}}, "whatever"));
  ASSERT_TRUE(result) << result.error;
  EXPECT_EQ(result.claims->user, "carol");
  EXPECT_EQ(result.claims->name, "Carol");
  EXPECT_TRUE(result.claims->access.may_write("anything"));
  EXPECT_FALSE(core::read_token_unverified("garbage"));
}

TEST(RoomAccess, GlobPatterns) {
  using core::glob_match;
  EXPECT_TRUE(glob_match("lobby", "lobby"));
  EXPECT_FALSE(glob_match("lobby", "lobby2"));
  EXPECT_FALSE(glob_match("lobby", "lobb"));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("team-42:*", "team-42:"));
  EXPECT_TRUE(glob_match("team-42:*", "team-42:design"));
  EXPECT_FALSE(glob_match("team-42:*", "team-420:design"));
  EXPECT_TRUE(glob_match("*:chat", "x:y:chat"));
  EXPECT_FALSE(glob_match("*:chat", "x:chatter"));
  EXPECT_TRUE(glob_match("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXbYbZ"));
  EXPECT_TRUE(glob_match("**", ""));
  EXPECT_FALSE(glob_match("", "x"));
  EXPECT_FALSE(glob_match("?", "x")); // only `*` is special
  // Many stars against a long near-miss stays fast (no exponential backtracking).
  EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*a*b", std::string(10000, 'a')));
}

TEST(RoomAccess, ReadPatternsOnlyRead) {
  core::room_access access({"team-42:*"}, {"news", "archive-*"});
  EXPECT_TRUE(access.may_read("team-42:x"));
  EXPECT_TRUE(access.may_write("team-42:x"));
  EXPECT_TRUE(access.may_read("archive-2024"));
  EXPECT_FALSE(access.may_write("archive-2024"));
  EXPECT_FALSE(access.may_read("lobby"));
  EXPECT_FALSE(core::room_access().may_read("lobby"));
  EXPECT_TRUE(core::room_access::everything().may_write("lobby"));
}

TEST(RoomAccess, UserRoomsAreTheirUsersToReadAndNoClientsToWrite) {
  for (auto access :
       {core::room_access::everything(), core::room_access({"*"}, {"*"}), core::room_access()}) {
    access.set_user("alice");
    EXPECT_TRUE(access.may_read("user:alice"));
    EXPECT_FALSE(access.may_write("user:alice"));
    EXPECT_FALSE(access.may_read("user:bob"));
    EXPECT_FALSE(access.may_read("user:alice2"));
    EXPECT_FALSE(access.may_read("user:"));
  }
  EXPECT_FALSE(core::room_access::everything().may_read("user:")) << "no user: no inbox";
  EXPECT_TRUE(core::is_user_room("user:x"));
  EXPECT_FALSE(core::is_user_room("users:x"));
}

TEST(RateLimiter, BurstThenRate) {
  using clock = core::rate_limiter::clock;
  using verdict = core::rate_limiter::verdict;
  const auto start = clock::now();
  core::rate_limiter budget(10, std::chrono::seconds(3), std::chrono::seconds(1), start);
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(budget.take(start), verdict::allowed) << i;
  EXPECT_EQ(budget.take(start), verdict::refused);
  // 10 per second: one more after 100 ms.
  EXPECT_EQ(budget.take(start + std::chrono::milliseconds(100)), verdict::allowed);
  EXPECT_EQ(budget.take(start + std::chrono::milliseconds(100)), verdict::refused);
  // Refilled to the burst, never beyond it.
  const auto later = start + std::chrono::seconds(60);
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(budget.take(later), verdict::allowed) << i;
  EXPECT_EQ(budget.take(later), verdict::refused);
}

TEST(RateLimiter, KeepingOnPastTheBudgetIsAbuse) {
  using clock = core::rate_limiter::clock;
  using verdict = core::rate_limiter::verdict;
  const auto start = clock::now();
  core::rate_limiter budget(10, std::chrono::seconds(3), std::chrono::seconds(1), start);
  // 100 requests a second: refused over and over, abusive once that has lasted 3 s.
  verdict last = verdict::allowed;
  auto t = start;
  for (; t < start + std::chrono::seconds(5) && last != verdict::abusive;
       t += std::chrono::milliseconds(10))
    last = budget.take(t);
  EXPECT_EQ(last, verdict::abusive);
  EXPECT_GE(t - start, std::chrono::seconds(3));
  EXPECT_LT(t - start, std::chrono::seconds(4));
  // A pause longer than the calm period starts afresh.
  core::rate_limiter calmer(10, std::chrono::seconds(3), std::chrono::seconds(1), start);
  for (int i = 0; i < 21; ++i)
    calmer.take(start);
  const auto after_pause = start + std::chrono::seconds(2) + std::chrono::milliseconds(500);
  for (int i = 0; i < 20; ++i)
    calmer.take(after_pause);
  EXPECT_EQ(calmer.take(after_pause), verdict::refused);
}

TEST(RateLimiter, ZeroTurnsItOff) {
  core::rate_limiter budget(0);
  const auto now = core::rate_limiter::clock::now();
  for (int i = 0; i < 100000; ++i)
    ASSERT_EQ(budget.take(now), core::rate_limiter::verdict::allowed);
}
