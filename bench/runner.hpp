#pragma once
#include "asio.hpp"
#include "connection.hpp"
#include "json.hpp"
#include "latency.hpp"
#include "options.hpp"
#include "redis_info.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace bench {

// Runs every scenario against one server and prints the results as JSON lines: the idle
// memory scenario first (on a fresh server), then each fan-out shape at each offered load
// and the closed-loop maximum, then a summary. Or, with --presence-join, only the presence
// join (presence_join.cpp).
class Runner final : public Connection::Listener {
public:
  // Connection i of a scenario goes to servers[i % servers.size()].
  Runner(net::io_context& ioc, const Options& options, Dialect& dialect,
         std::vector<tcp::endpoint> servers);
  net::awaitable<void> run();
  int exit_code() const { return exit_code_; }

private:
  struct Room {
    std::string name;
    std::vector<Connection*> members;
    std::size_t next = 0; // round-robin publisher
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
    std::optional<double> other_cpu_s;            // the rest of the machine: should be near 0
    std::vector<double> proc_cpu_s;               // by server process (--server-pid order)
    std::size_t samples_from = 0, samples_to = 0; // its latency samples in latency_
    std::optional<std::uint64_t> redis_commands;  // total_commands_processed delta, INFO excluded
    std::map<std::string, std::uint64_t> redis_calls; // commandstats delta by command
  };
  // One load point in progress.
  struct LoadRun {
    const Shape* shape = nullptr;
    std::optional<double> offered; // nullopt: closed loop
    double pub_rate = 0;
    int per_room = 0; // closed loop: messages in flight per room
    std::uint64_t closes_before = 0, gaps_before = 0, dups_before = 0;
    std::vector<Window> windows;
    int discarded = 0;
    bool drained = false;
    std::optional<long> server_rss_kb;
    // The server's VmRSS before the load (connections open and subscribed), its peak
    // (VmHWM, reset just before the load) and VmRSS after the drain.
    std::optional<long> rss_before_kb, rss_peak_kb, rss_after_kb;
  };
  // What the summary keeps of each load point.
  struct Point {
    std::string shape;
    double offered = 0; // 0: closed-loop maximum
    double delivered_dps = 0;
    std::optional<double> cpu_us;
    double p50 = 0, p99 = 0, p999 = 0;
    std::optional<double> server_cpu_pct;
    double gen_cpu_pct = 0;
    std::optional<double> other_cpu_pct;
  };

  // Presence join: one member's view of the room's presence, and what it received.
  struct Viewer {
    std::vector<RecordedFrame> log; // every message received from the first sub on
    // Online, only counted: enough to know when the join is over.
    std::uint64_t online_pseq = 0;
    std::int64_t online_size = -1; // -1: no snapshot yet
    bool online_complete = false;
    // The view, rebuilt from `log` after the phase.
    std::vector<std::uint8_t> listed;        // by slot: that member is in this view
    std::unordered_set<std::string> foreign; // listed clients that are not in the run
    std::uint32_t size = 0;                  // members of the run listed
    std::uint64_t pseq = 0;
    bool have_snapshot = false, complete = false;
    std::int64_t sub_ns = 0, reply_ns = 0;
    std::int64_t complete_ns = 0;    // when it last became complete
    std::int64_t last_change_ns = 0; // its last pdiff with entries
    std::uint64_t pdiffs = 0, pdiff_entries = 0, snapshot_entries = 0;
    // Errors.
    std::uint64_t holes = 0, repeats = 0, dup_entries = 0, absent_leaves = 0, wrong_user = 0;
    std::uint64_t malformed = 0, early = 0;
  };
  struct Replay; // feeds a viewer's log back through the dialect
  // Client id -> slot, open addressing over a flat array: the check looks up every entry
  // of every frame, millions of them.
  class ClientIndex {
  public:
    void reset(std::size_t n);
    bool add(std::string_view client, std::uint32_t slot); // false: already there
    std::optional<std::uint32_t> find(std::string_view client) const;

  private:
    static std::uint64_t hash(std::string_view s);
    struct Cell {
      std::uint64_t hash = 0;
      std::uint32_t slot = kEmpty;
    };
    static constexpr std::uint32_t kEmpty = ~std::uint32_t{0};
    std::vector<Cell> cells_;
    std::vector<std::string> clients_; // by slot
  };

  net::awaitable<void> presence_scenario();
  net::awaitable<void> sample_rss(const bool& running, long& peak_kb);
  void check_view(Viewer& v, std::uint64_t id, std::uint64_t pseq,
                  const std::vector<PresenceEntry>& joins, const std::vector<PresenceEntry>& leaves,
                  std::int64_t now);
  void apply_presence(Viewer& v, const std::vector<PresenceEntry>& joins,
                      const std::vector<PresenceEntry>& leaves, std::int64_t now);
  void list_entry(Viewer& v, std::uint32_t slot, bool listed, std::int64_t now);

  // The fault round (fault_round.cpp): a node killed mid-run, its clients recover.
  struct Pending {
    std::string key;
    std::vector<std::uint8_t> payload;
  };
  struct FaultSlot {
    std::map<std::uint64_t, Pending> pending; // request id on the current connection -> pub
    std::vector<std::uint8_t> seen;           // by seq: how many times it was received
    std::uint64_t first_seq = 0;              // the room's seq when it subscribed first
    std::uint64_t distinct = 0;               // seqs above first_seq received at least once
    bool reconnecting = false;
    std::uint64_t since_seq = 0; // what it resubscribes from
    std::string epoch;
    int attempts = 0, reconnects = 0, recovered = 0, not_recovered = 0;
    std::int64_t down_ns = 0; // when its connection died
  };
  net::awaitable<void> fault_scenario();
  void fault_reconnect(std::uint32_t slot);
  void fault_publish(Connection& c);
  std::optional<double> servers_cpu(std::vector<double>* each = nullptr) const;

  net::awaitable<void> idle_scenario();
  net::awaitable<std::size_t> subscribe_idle(std::size_t from);
  net::awaitable<void> fanout_scenario(const Shape& shape);
  net::awaitable<void> run_load(const Shape& shape, std::optional<double> offered);
  void begin_load(LoadRun& run);
  net::awaitable<void> measure(LoadRun& run);
  void report(const LoadRun& run);
  void add_tags(Json& j) const; // round and commit, when given
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
  void on_ack(Connection&, std::uint64_t id, std::uint64_t seq) override;
  void on_msg(Connection&, std::uint64_t seq, const std::uint8_t* data, std::size_t n) override;
  void on_error(Connection&, std::string_view code) override;
  void on_request_error(Connection&, std::uint64_t id, std::string_view code) override;
  void on_closed(Connection&, Connection::State was, std::string_view why) override;
  void on_presence(Connection&, std::uint64_t id, std::uint64_t pseq, std::size_t joins,
                   std::size_t leaves) override;

  net::io_context& ioc_;
  const Options& opt_;
  Dialect& dialect_;
  tcp::endpoint server_;
  std::vector<tcp::endpoint> servers_;
  std::unique_ptr<RedisInfo> redis_;
  std::optional<double> redis_background_per_s_; // Redis commands/s with nothing published
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
  Latency latency_same_, latency_cross_; // several nodes: publisher on the subscriber's node or not
  std::uint64_t delivered_ = 0, pubs_sent_ = 0, acked_ = 0, expected_ = 0, pub_errors_ = 0;
  std::uint64_t unexpected_closes_ = 0, stalls_ = 0, short_payloads_ = 0;
  std::map<std::string, std::uint64_t> errors_;

  // Presence join.
  std::vector<Viewer> viewers_;
  ClientIndex client_slot_;
  std::vector<std::string> slot_user_;
  // How long a join took to reach a view: from the later of the joiner's and the viewer's
  // sub until the viewer listed it. Every (viewer, joiner) pair in µs, and by joiner the
  // slowest in ns.
  std::vector<std::int32_t> seen_us_;
  std::vector<std::int64_t> seen_by_all_ns_;
  std::uint32_t online_complete_ = 0; // views whose counts add up to every member
  bool phase_over_ = false;           // …all of them

  // Fault round.
  bool fault_ = false;
  std::vector<FaultSlot> fault_slots_;
  std::vector<std::uint8_t> acked_seqs_;   // by seq: acknowledged to some publisher
  std::uint64_t top_seq_ = 0;              // highest seq acknowledged or received
  std::vector<std::uint8_t> seq_seen_any_; // by seq: received by some subscriber
  std::unordered_map<std::uint64_t, std::uint64_t> payload_seq_; // (slot, counter) -> seq
  std::uint64_t double_published_ = 0; // one publish under two seqs: the key did not hold
  std::uint64_t retried_ = 0, reconnect_failures_ = 0, retried_on_error_ = 0, orphan_ids_ = 0;
  std::size_t held_retries_ = 0; // refused publishes waiting to be sent again
  std::int64_t kill_ns_ = 0, last_resub_ns_ = 0;
  int killed_node_ = -1;

  // For the summary.
  std::vector<Point> points_;
  std::optional<double> idle_bytes_per_conn_;
};

} // namespace bench
