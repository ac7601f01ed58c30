#include "transport/liveness_sweep.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>

namespace troupe::transport {

liveness_sweep::liveness_sweep(net::io_context& io, server_context& context)
    : timer_(net::make_strand(io)), context_(context), tick_(tick_for(context.settings)) {}

std::chrono::milliseconds liveness_sweep::tick_for(const server_settings& settings) {
  using namespace std::chrono;
  const auto shortest = std::min({settings.ping, settings.connect_timeout, settings.close_timeout});
  return std::clamp(duration_cast<milliseconds>(shortest) / 4, milliseconds(50),
                    milliseconds(1000));
}

void liveness_sweep::start() { wait(); }

void liveness_sweep::stop() {
  net::post(timer_.get_executor(), [this] {
    stopped_ = true;
    timer_.cancel();
  });
}

void liveness_sweep::wait() {
  timer_.expires_after(tick_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    context_.sessions.check_liveness(std::chrono::steady_clock::now());
    wait();
  });
}

} // namespace troupe::transport
