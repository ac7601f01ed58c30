#pragma once
// Command line of troupe_loadgen.
#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace bench {

// A fan-out shape: `rooms` rooms of `subs` subscribers each (every subscriber also
// publishes, as in a chat room).
struct Shape {
  std::string name; // "1x200"
  int rooms = 1;
  int subs = 200;
};

struct Options {
  std::string kind = "troupe"; // troupe | ws | socketio: which dialect to speak
  std::string label;           // name in the output; defaults to kind
  // Tags copied into every point and idle line (bench/run.sh: which round of the servers,
  // and the commit measured), so lines from many runs can be told apart and plotted.
  int round = 0; // 0: not printed
  std::string commit;
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  pid_t server_pid = 0; // 0: no server CPU / memory figures
  // Cluster: several servers (--port P1,P2,P3); connection i goes to ports[i % n]. Their
  // CPU (and Redis's) is summed over every pid of --server-pid P1,P2,…; --pid-names names
  // them in the per-process figures.
  std::vector<std::uint16_t> ports;
  std::vector<pid_t> server_pids;
  std::vector<std::string> pid_names;
  std::uint16_t redis_port = 0; // INFO before and after each window: commands per message

  // Fault round (instead of the other scenarios): one room of fault_subs subscribers spread
  // over the nodes, publishes with idempotency keys at fault_load deliveries/s for
  // fault_seconds; after fault_kill_at seconds the node fault_kill (index into ports and
  // server_pids) is sent SIGKILL; its clients reconnect to the next node, resubscribe with
  // `since` and retry their unacknowledged publishes with the same key.
  bool fault_round = false;
  int fault_subs = 200;
  double fault_load = 5000;
  double fault_seconds = 8;
  double fault_kill_at = 3;
  int fault_kill = -1; // -1: the last node
  double fault_drain_s = 20;
  // "kill": SIGKILL to the node's process. "drop": the node stays up and the generator
  // drops its clients' sockets instead (a self-test of the recovery path that needs no
  // cluster: --port P,P against one engine, the same node twice).
  std::string fault_mode = "kill";

  std::vector<Shape> shapes; // default 1x200, 10x20, 1x1000
  std::vector<double> loads; // offered deliveries/s; default 20k, 50k, 100k
  bool closed_loop = true;   // plus the closed-loop maximum ("max")
  int idle = 10000;          // idle connections (0: skip)
  int idle_base = 100;       // opened before the "before" RSS sample
  int idle_rooms = 100;      // idle connections subscribe to one of this many rooms; 0: none

  double warmup_s = 2;
  double window_s = 3;
  int windows = 3;       // consecutive windows per load; medians are reported
  double noise_pct = 10; // a window in which other processes used more CPU is redone…
  int retries = 3;       // …at most this many times per load
  std::size_t payload = 100;
  int inflight = 4000; // closed loop: deliveries in flight across all rooms
  int connect_concurrency = 200;
  double settle_s = 3; // idle: wait before the "after" RSS sample
  double setup_timeout_s = 60;
  double drain_timeout_s = 5;

  // Presence join (instead of the idle and fan-out scenarios when presence_join > 0):
  // that many connections subscribe to one fresh room, spread evenly over join_spread_ms
  // (0: all at once), and every member's presence view is checked.
  int presence_join = 0;
  double join_spread_ms = 2000;
  double presence_timeout_s = 30; // bound on completion after the last sub
  double presence_quiet_s = 1;    // after completion: nothing more may change

  // Parses argv; on --help or an error prints to stderr and returns nullopt.
  static std::optional<Options> parse(int argc, char** argv);
};

} // namespace bench
