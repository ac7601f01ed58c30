#pragma once
// A minimal blocking Redis client for one thing: INFO stats and commandstats, sampled at
// the edges of a measurement window (bench/cluster). Loopback only, every call bounded by
// a 2 s socket timeout.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace bench {

struct RedisCounters {
  std::uint64_t total_commands = 0;           // total_commands_processed (script calls included)
  std::map<std::string, std::uint64_t> calls; // commandstats: command -> calls
};

class RedisInfo {
public:
  explicit RedisInfo(std::uint16_t port) : port_(port) {}
  ~RedisInfo();
  RedisInfo(const RedisInfo&) = delete;
  RedisInfo& operator=(const RedisInfo&) = delete;
  std::optional<RedisCounters> sample(); // nullopt when Redis does not answer

private:
  bool connect();
  std::uint16_t port_;
  int fd_ = -1;
};

} // namespace bench
