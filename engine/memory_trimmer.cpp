#include "engine/memory_trimmer.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <ctime>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace troupe::engine {

namespace {

using namespace std::chrono_literals;

constexpr auto tick_interval = 1s;
/// A second with more CPU than this is busy; one with less is quiet.
constexpr double busy_second_cpu_s = 0.05;
/// Busy CPU time that makes a trim worth it once things are quiet again.
constexpr double worth_trimming_cpu_s = 0.2;
/// So many fewer connections than at the last trim are worth a trim too.
constexpr std::int64_t connections_dropped = 100;

double process_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

} // namespace

memory_trimmer::memory_trimmer(boost::asio::io_context& io, const core::metrics& metrics)
    : timer_(boost::asio::make_strand(io)), metrics_(metrics) {}

void memory_trimmer::start() {
  last_cpu_s_ = process_cpu_s();
  connections_at_trim_ = metrics_.connections.load(std::memory_order_relaxed);
  timer_.expires_after(tick_interval);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopped_) tick();
  });
}

void memory_trimmer::stop() {
  // From the thread that stops the engine: onto the timer's strand.
  boost::asio::post(timer_.get_executor(), [this] {
    stopped_ = true;
    timer_.cancel();
  });
}

void memory_trimmer::tick() {
  const double cpu = process_cpu_s();
  const double used = cpu - last_cpu_s_;
  last_cpu_s_ = cpu;
  const auto connections = metrics_.connections.load(std::memory_order_relaxed);
  // Many connections gone: their memory is free now, whatever else the engine is doing (a
  // busy engine never has a quiet second, and would keep the peak of a burst for good).
  const bool dropped = connections + connections_dropped <= connections_at_trim_;
  if (used > busy_second_cpu_s && !dropped) {
    busy_cpu_s_ += used;
  } else if (dropped || busy_cpu_s_ > worth_trimming_cpu_s) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    ++trims_;
    busy_cpu_s_ = 0;
    connections_at_trim_ = connections;
    last_cpu_s_ = process_cpu_s(); // the trim's own time is not the engine's work
  }
  if (connections > connections_at_trim_) connections_at_trim_ = connections;
  timer_.expires_after(tick_interval);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopped_) tick();
  });
}

} // namespace troupe::engine
