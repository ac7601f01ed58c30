#pragma once
// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>, which
// breaks under C++20: include it first, everywhere Asio is used.
#include <utility>

#include <boost/asio.hpp>

namespace bench {
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}
} // namespace bench
