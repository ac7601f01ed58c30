#include "redis_info.hpp"

#include <arpa/inet.h>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

namespace bench {

RedisInfo::~RedisInfo() {
  if (fd_ >= 0) ::close(fd_);
}

bool RedisInfo::connect() {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return false;
  timeval tv{2, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

std::optional<RedisCounters> RedisInfo::sample() {
  if (port_ == 0) return std::nullopt;
  if (fd_ < 0 && !connect()) return std::nullopt;
  static const char kRequest[] = "*3\r\n$4\r\nINFO\r\n$5\r\nstats\r\n$12\r\ncommandstats\r\n";
  if (::send(fd_, kRequest, sizeof kRequest - 1, MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof kRequest - 1)) {
    ::close(fd_);
    fd_ = -1;
    return std::nullopt;
  }
  // A bulk string: "$<len>\r\n<len bytes>\r\n".
  std::string in;
  char buf[8192];
  std::size_t want = 0;
  while (true) {
    ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
    if (got <= 0) {
      ::close(fd_);
      fd_ = -1;
      return std::nullopt;
    }
    in.append(buf, static_cast<std::size_t>(got));
    if (want == 0) {
      auto eol = in.find("\r\n");
      if (eol == std::string::npos) continue;
      if (in[0] != '$') {
        ::close(fd_);
        fd_ = -1;
        return std::nullopt;
      }
      want = eol + 2 + std::strtoull(in.c_str() + 1, nullptr, 10) + 2;
    }
    if (in.size() >= want) break;
  }
  RedisCounters c;
  std::istringstream lines(in);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("total_commands_processed:", 0) == 0) {
      c.total_commands = std::strtoull(line.c_str() + 25, nullptr, 10);
    } else if (line.rfind("cmdstat_", 0) == 0) {
      auto colon = line.find(':');
      auto calls = line.find("calls=");
      if (colon == std::string::npos || calls == std::string::npos) continue;
      c.calls[line.substr(8, colon - 8)] = std::strtoull(line.c_str() + calls + 6, nullptr, 10);
    }
  }
  return c;
}

} // namespace bench
