#include <stdexcept>

#include <gtest/gtest.h>

#include "cluster/redis_url.hpp"

using troupe::cluster::parse_redis_url;

TEST(RedisUrl, HostAloneTakesTheDefaultPortAndDb) {
  auto u = parse_redis_url("redis://cache.internal");
  EXPECT_EQ(u.host, "cache.internal");
  EXPECT_EQ(u.port, 6379);
  EXPECT_EQ(u.db, 0);
  EXPECT_TRUE(u.password.empty());
}

TEST(RedisUrl, PasswordHostPortDb) {
  auto u = parse_redis_url("redis://:s3cret@10.0.0.5:7000/3");
  EXPECT_EQ(u.host, "10.0.0.5");
  EXPECT_EQ(u.port, 7000);
  EXPECT_EQ(u.db, 3);
  EXPECT_TRUE(u.username.empty());
  EXPECT_EQ(u.password, "s3cret");
  EXPECT_EQ(u.redacted(), "redis://:***@10.0.0.5:7000/3");
}

TEST(RedisUrl, UserPercentDecodingIpv6AndEmptyPath) {
  auto u = parse_redis_url("redis://app:p%40ss%3Aw%2Fd@[::1]:6380/");
  EXPECT_EQ(u.username, "app");
  EXPECT_EQ(u.password, "p@ss:w/d");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 6380);
  EXPECT_EQ(u.db, 0);
  EXPECT_EQ(parse_redis_url("redis://[::1]").port, 6379);
}

TEST(RedisUrl, ErrorsSayWhatIsWrong) {
  auto message = [](const char* text) {
    try {
      parse_redis_url(text);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("http://h").find("must start with redis://"), std::string::npos);
  EXPECT_NE(message("rediss://h").find("TLS"), std::string::npos);
  EXPECT_NE(message("redis://").find("no host"), std::string::npos);
  EXPECT_NE(message("redis://:pw@:6379").find("no host"), std::string::npos);
  EXPECT_NE(message("redis://h:0").find("port"), std::string::npos);
  EXPECT_NE(message("redis://h:65536").find("port"), std::string::npos);
  EXPECT_NE(message("redis://h:x").find("port"), std::string::npos);
  EXPECT_NE(message("redis://h:").find("without a port"), std::string::npos);
  EXPECT_NE(message("redis://h/x").find("database"), std::string::npos);
  EXPECT_NE(message("redis://h/-1").find("database"), std::string::npos);
  EXPECT_NE(message("redis://pw@h").find("':password'"), std::string::npos);
  EXPECT_NE(message("redis://:@h").find("password"), std::string::npos);
  EXPECT_NE(message("redis://:%zz@h").find("hex"), std::string::npos);
  EXPECT_NE(message("redis://h?db=1").find("query"), std::string::npos);
  EXPECT_NE(message("redis://[::1").find("IPv6"), std::string::npos);
}
