// troupe_loadgen: many WebSocket connections from one process and one thread, driving a
// Troupe engine, a node `ws` broadcast server or a Socket.IO 4 server with the same
// fan-out scenarios, and printing what each costs as JSON lines. See bench/README.md.
#include "asio.hpp"
#include "dialect.hpp"
#include "options.hpp"
#include "proc_stats.hpp"
#include "runner.hpp"

#include <algorithm>
#include <csignal>
#include <iostream>
#include <unistd.h>

int main(int argc, char** argv) {
  using namespace bench;
  auto options = Options::parse(argc, argv);
  if (!options) return 2;
  const Options& opt = *options;

  std::signal(SIGPIPE, SIG_IGN);
  long fds = raise_fd_limit();
  const long needed = std::max({opt.idle + opt.idle_base, opt.presence_join, 1000}) + 64;
  if (fds < needed) {
    std::cerr << "open-file limit " << fds << " is below the " << needed
              << " this run needs (raise the hard limit: ulimit -Hn)\n";
    return 2;
  }

  // Every wait inside is bounded; this is the backstop so that no run outlives its budget.
  double budget = 120 + (opt.idle > 0 ? 60 + opt.settle_s + opt.setup_timeout_s : 0);
  const double per_load =
      opt.warmup_s + (opt.windows + opt.retries) * opt.window_s + opt.drain_timeout_s + 5;
  budget += opt.shapes.size() *
            (opt.setup_timeout_s + 10 + per_load * (opt.loads.size() + (opt.closed_loop ? 1 : 0)));
  if (opt.presence_join > 0) {
    budget = 60 + opt.setup_timeout_s + 1 + opt.join_spread_ms / 1000 + opt.presence_timeout_s +
             opt.presence_quiet_s + 10;
  }
  if (opt.fault_round) {
    budget = 60 + 2 * opt.setup_timeout_s + opt.fault_seconds + opt.fault_drain_s + 20;
  }
  alarm(static_cast<unsigned>(budget));

  auto dialect = make_dialect(opt.kind);
  // Online, presence is only counted (to know when the join is over); every entry is
  // checked after the phase, from the recorded frames, so that the check's cost does not
  // slow the generator while it is being measured.
  if (opt.presence_join > 0) dialect->presence = PresenceParse::counts;
  boost::system::error_code ec;
  auto address = net::ip::make_address(opt.host, ec);
  if (ec) {
    std::cerr << "bad --host " << opt.host << "\n";
    return 2;
  }

  net::io_context ioc(1);
  std::vector<tcp::endpoint> servers;
  for (auto port : opt.ports)
    servers.emplace_back(address, port);
  Runner runner(ioc, opt, *dialect, std::move(servers));
  bool failed = false;
  net::co_spawn(ioc, runner.run(), [&](std::exception_ptr e) {
    if (e) {
      failed = true;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::cerr << "troupe_loadgen: " << ex.what() << "\n";
      }
    }
    ioc.stop(); // leftover handlers of closed connections need not run
  });
  ioc.run();
  return failed ? 1 : runner.exit_code();
}
