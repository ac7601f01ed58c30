#pragma once
// Gives memory back to the system after a burst (a wave of joins, a flood of messages):
// glibc keeps freed memory in its arenas, so without a trim the RSS of a burst's peak
// stays. Once a second the trimmer looks at the process's CPU time and its connection
// count; when a busy stretch is followed by a quiet second, or at once when 100 or more
// connections have gone since the last trim, it calls malloc_trim(0) once, which returns the
// arenas' free pages. Otherwise, while the engine is busy, it does nothing: memory freed
// under steady load is soon used again.

#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>

#include "core/metrics.hpp"

namespace troupe::engine {

class memory_trimmer {
public:
  memory_trimmer(boost::asio::io_context& io, const core::metrics& metrics);

  void start();
  void stop();
  /// Trims done so far (for logs and tests).
  std::uint64_t trims() const noexcept { return trims_; }

private:
  void tick();

  boost::asio::steady_timer timer_;
  const core::metrics& metrics_;
  bool stopped_ = false;
  double last_cpu_s_ = 0;
  double busy_cpu_s_ = 0; ///< CPU time of busy seconds since the last trim
  std::int64_t connections_at_trim_ = 0;
  std::uint64_t trims_ = 0;
};

} // namespace troupe::engine
