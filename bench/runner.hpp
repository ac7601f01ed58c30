#pragma once
#include "asio.hpp"
#include "connection.hpp"
#include "json.hpp"
#include "latency.hpp"
#include "options.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bench {

// Runs every scenario against one server and prints the results as JSON lines: the idle
// memory scenario first (on a fresh server), then each fan-out shape at each offered load
// and the closed-loop maximum, then a summary.
class Runner final : public Connection::Listener {
 public:
  Runner(net::io_context& ioc, const Options& options, Dialect& dialect, tcp::endpoint server);
  net::awaitable<void> run();
  int exit_code() const { return exit_code_; }

 private:
  struct Room {
    std::string name;
    std::vector<Connection*> members;
    std::size_t next = 0;  // round-robin publisher
  };
  // Closed loop: a publisher's one message in flight, identified by (slot, counter).
  struct Slot {
    std::uint32_t counter = 0;
    std::uint32_t received = 0;
    bool busy = false;
    std::int64_t sent_ns = 0;
  };
  struct Window {
    double seconds = 0;
    std::uint64_t deliveries = 0;
    std::uint64_t pubs = 0;
    std::optional<double> server_cpu_s;
    double gen_cpu_s = 0;
    std::optional<double> other_cpu_s;  // the rest of the machine: should be near 0
  };
  // One load point in progress.
  struct LoadRun {
    const Shape* shape = nullptr;
    std::optional<double> offered;  // nullopt: closed loop
    double pub_rate = 0;
    int per_room = 0;               // closed loop: messages in flight per room
    std::uint64_t closes_before = 0, gaps_before = 0, dups_before = 0;
    std::vector<Window> windows;
    int discarded = 0;
    bool drained = false;
    std::optional<long> server_rss_kb;
  };
  // What the summary keeps of each load point.
  struct Point {
    std::string shape;
    double offered = 0;  // 0: closed-loop maximum
    double delivered_dps = 0;
    std::optional<double> cpu_us;
    double p50 = 0, p99 = 0, p999 = 0;
    std::optional<double> server_cpu_pct;
    double gen_cpu_pct = 0;
    std::optional<double> other_cpu_pct;
  };

  net::awaitable<void> idle_scenario();
  net::awaitable<void> fanout_scenario(const Shape& shape);
  net::awaitable<void> run_load(const Shape& shape, std::optional<double> offered);
  void begin_load(LoadRun& run);
  net::awaitable<void> measure(LoadRun& run);
  void report(const LoadRun& run);
  net::awaitable<std::size_t> open(std::size_t count);
  net::awaitable<void> close_all();
  net::awaitable<void> pace(double pubs_per_s);
  net::awaitable<void> closed_loop_watchdog();
  net::awaitable<void> sleep(double seconds);
  net::awaitable<bool> wait_until(std::function<bool()> done, double timeout_s);

  void start_more();
  void publish_next();
  void publish_from(Connection& c);
  void print(const Json& j);
  void print_summary();

  // Connection::Listener
  void on_ready(Connection&) override;
  void on_subscribed(Connection&) override;
  void on_ack(Connection&, std::uint64_t seq) override;
  void on_msg(Connection&, const std::uint8_t* data, std::size_t n) override;
  void on_error(Connection&, std::string_view code) override;
  void on_closed(Connection&, Connection::State was, std::string_view why) override;

  net::io_context& ioc_;
  const Options& opt_;
  Dialect& dialect_;
  tcp::endpoint server_;
  std::string run_tag_;
  int exit_code_ = 0;

  // Connections of the current scenario; a connection's slot is index() - base_.
  std::vector<std::shared_ptr<Connection>> conns_;
  std::vector<Room> rooms_;
  std::vector<Slot> slots_;
  std::uint32_t next_index_ = 0;
  std::uint32_t base_ = 0;

  // Connecting.
  std::size_t to_open_ = 0, opening_ = 0, ready_ = 0, setup_failed_ = 0, subscribed_ = 0;
  std::size_t sub_failed_ = 0;
  std::string last_setup_error_;

  // The current load.
  std::vector<std::uint8_t> payload_;
  std::size_t next_room_ = 0;
  bool pacing_ = false, pacer_running_ = false;
  bool closed_ = false, closed_running_ = false, watchdog_running_ = false;
  bool measuring_ = false;
  Latency latency_;
  std::uint64_t delivered_ = 0, pubs_sent_ = 0, acked_ = 0, expected_ = 0, pub_errors_ = 0;
  std::uint64_t unexpected_closes_ = 0, stalls_ = 0, short_payloads_ = 0;
  std::map<std::string, std::uint64_t> errors_;

  // For the summary.
  std::vector<Point> points_;
  std::optional<double> idle_bytes_per_conn_;
};

}  // namespace bench
