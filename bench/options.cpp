#include "options.hpp"

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace bench {
namespace {

const char* kUsage = R"(troupe_loadgen: fan-out load generator for Troupe, node ws and Socket.IO.

  --kind K              troupe | ws | socketio (the wire dialect)          [troupe]
  --label NAME          server name in the output                          [kind]
  --host H --port P     server address (loopback only)                     [127.0.0.1 8080]
  --round N --commit C  tags for every point and idle line (bench/run.sh's rounds)
  --server-pid PID      server process, for CPU (/proc/PID/stat) and RSS
  Cluster (bench/cluster/run.sh):
  --port P1,P2,…        several servers; connection i goes to the (i mod n)-th
  --server-pid P1,P2,…  CPU summed over every process (engines and Redis); RSS of the first
  --pid-names A,B,…     names of those processes in the per-process CPU figures
  --redis-port P        Redis's port: INFO stats/commandstats around each window
  --fault-round 1       only the fault round (troupe): a node is killed with SIGKILL
  --fault-subs N --fault-load DPS --fault-seconds S --fault-kill-at S --fault-kill I
                        subscribers, deliveries/s, publishing time, when, which node
                        (index into --port/--server-pid, default the last)  [200 5000 8 3 -1]
  --fault-mode kill|drop  kill: SIGKILL to the node; drop: the generator drops the
                        sockets of that node's clients instead (node stays up)   [kill]
  --fault-drain S       bound on the recovery and delivery after publishing stops [20]
  --drain-timeout S     bound on delivery after each load point                  [5]
  --scenarios LIST      shapes ROOMSxSUBS, comma separated                  [1x200,10x20,1x1000]
  --loads LIST          offered deliveries/s, plus "max" for the closed loop [20000,50000,100000,max]
  --idle N              idle connections for the memory figure, 0 = skip   [10000]
  --idle-base N         connections open before the "before" RSS sample    [100]
  --idle-rooms N        each idle connection subscribes to one of N rooms (the base
                        connections make the rooms); 0: connect only         [100]
  --warmup S --window S --windows N    per load: warm-up, then N windows   [2 3 3]
  --noise-pct P --retries N  redo a window in which the rest of the machine used
                        over P % of a core, at most N times per load        [10 3]
  --payload BYTES       bytes of data per message (>= 16)                   [100]
  --inflight N          closed loop: deliveries in flight                   [4000]
  --connect-concurrency N  handshakes in flight while connecting           [200]
  --settle S            idle: seconds before the "after" RSS sample         [3]
  --setup-timeout S     bound on connecting / subscribing                   [60]
  --presence-join N     presence join instead of the scenarios above (troupe only): N
                        connections subscribe to one fresh room; prints type presence
  --join-spread-ms MS   subs spread evenly over MS, 0 = all at once          [2000]
  --presence-timeout S  bound on every view being complete after the last sub [30]
  --presence-quiet S    after completion, watch this long for further changes [1]
Prints one JSON object per line on stdout (type point, idle, summary, presence); progress
on stderr.
)";

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool parse_shape(const std::string& s, Shape& shape) {
  auto x = s.find('x');
  if (x == std::string::npos) return false;
  shape.rooms = std::atoi(s.substr(0, x).c_str());
  shape.subs = std::atoi(s.substr(x + 1).c_str());
  shape.name = std::to_string(shape.rooms) + "x" + std::to_string(shape.subs);
  return shape.rooms > 0 && shape.subs > 0;
}

bool loopback(const std::string& host) { return host.rfind("127.", 0) == 0 || host == "::1"; }

} // namespace

std::optional<Options> Options::parse(int argc, char** argv) {
  Options o;
  bool loads_given = false, shapes_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cerr << kUsage;
      return std::nullopt;
    }
    if (i + 1 >= argc) {
      std::cerr << "missing value for " << a << "\n" << kUsage;
      return std::nullopt;
    }
    std::string v = argv[++i];
    if (a == "--kind")
      o.kind = v;
    else if (a == "--label")
      o.label = v;
    else if (a == "--round")
      o.round = std::max(0, std::atoi(v.c_str()));
    else if (a == "--commit")
      o.commit = v;
    else if (a == "--host")
      o.host = v;
    else if (a == "--port") {
      o.ports.clear();
      for (auto& p : split(v))
        o.ports.push_back(static_cast<std::uint16_t>(std::atoi(p.c_str())));
      if (o.ports.empty()) {
        std::cerr << "bad --port " << v << "\n";
        return std::nullopt;
      }
      o.port = o.ports.front();
    } else if (a == "--server-pid") {
      o.server_pids.clear();
      for (auto& p : split(v)) {
        if (std::atoi(p.c_str()) > 0)
          o.server_pids.push_back(static_cast<pid_t>(std::atoi(p.c_str())));
      }
      o.server_pid = o.server_pids.empty() ? 0 : o.server_pids.front();
    } else if (a == "--pid-names")
      o.pid_names = split(v);
    else if (a == "--redis-port")
      o.redis_port = static_cast<std::uint16_t>(std::atoi(v.c_str()));
    else if (a == "--fault-round")
      o.fault_round = v != "0";
    else if (a == "--fault-subs")
      o.fault_subs = std::max(1, std::atoi(v.c_str()));
    else if (a == "--fault-load")
      o.fault_load = std::max(1.0, std::atof(v.c_str()));
    else if (a == "--fault-seconds")
      o.fault_seconds = std::max(1.0, std::atof(v.c_str()));
    else if (a == "--fault-kill-at")
      o.fault_kill_at = std::max(0.0, std::atof(v.c_str()));
    else if (a == "--fault-kill")
      o.fault_kill = std::atoi(v.c_str());
    else if (a == "--fault-mode")
      o.fault_mode = v;
    else if (a == "--fault-drain")
      o.fault_drain_s = std::max(1.0, std::atof(v.c_str()));
    else if (a == "--drain-timeout")
      o.drain_timeout_s = std::max(0.5, std::atof(v.c_str()));
    else if (a == "--scenarios") {
      shapes_given = true;
      for (auto& s : split(v)) {
        Shape shape;
        if (!parse_shape(s, shape)) {
          std::cerr << "bad scenario " << s << " (want ROOMSxSUBS)\n";
          return std::nullopt;
        }
        o.shapes.push_back(shape);
      }
    } else if (a == "--loads") {
      loads_given = true;
      o.closed_loop = false;
      for (auto& s : split(v)) {
        if (s == "max")
          o.closed_loop = true;
        else if (std::atof(s.c_str()) > 0)
          o.loads.push_back(std::atof(s.c_str()));
      }
    } else if (a == "--idle")
      o.idle = std::atoi(v.c_str());
    else if (a == "--idle-base")
      o.idle_base = std::atoi(v.c_str());
    else if (a == "--idle-rooms")
      o.idle_rooms = std::atoi(v.c_str());
    else if (a == "--warmup")
      o.warmup_s = std::atof(v.c_str());
    else if (a == "--window")
      o.window_s = std::atof(v.c_str());
    else if (a == "--windows")
      o.windows = std::max(1, std::atoi(v.c_str()));
    else if (a == "--noise-pct")
      o.noise_pct = std::atof(v.c_str());
    else if (a == "--retries")
      o.retries = std::max(0, std::atoi(v.c_str()));
    else if (a == "--payload")
      o.payload = static_cast<std::size_t>(std::atoi(v.c_str()));
    else if (a == "--inflight")
      o.inflight = std::max(1, std::atoi(v.c_str()));
    else if (a == "--connect-concurrency")
      o.connect_concurrency = std::max(1, std::atoi(v.c_str()));
    else if (a == "--settle")
      o.settle_s = std::atof(v.c_str());
    else if (a == "--setup-timeout")
      o.setup_timeout_s = std::atof(v.c_str());
    else if (a == "--presence-join")
      o.presence_join = std::max(0, std::atoi(v.c_str()));
    else if (a == "--join-spread-ms")
      o.join_spread_ms = std::max(0.0, std::atof(v.c_str()));
    else if (a == "--presence-timeout")
      o.presence_timeout_s = std::atof(v.c_str());
    else if (a == "--presence-quiet")
      o.presence_quiet_s = std::max(0.0, std::atof(v.c_str()));
    else {
      std::cerr << "unknown option " << a << "\n" << kUsage;
      return std::nullopt;
    }
  }
  if (!shapes_given) o.shapes = {{"1x200", 1, 200}, {"10x20", 10, 20}, {"1x1000", 1, 1000}};
  if (!loads_given) o.loads = {20000, 50000, 100000};
  if (o.label.empty()) o.label = o.kind;
  if (o.ports.empty()) o.ports.push_back(o.port);
  if (o.fault_round && o.kind != "troupe") {
    std::cerr << "--fault-round needs --kind troupe (recovery with since is Troupe's)\n";
    return std::nullopt;
  }
  if (o.fault_mode != "kill" && o.fault_mode != "drop") {
    std::cerr << "--fault-mode must be kill or drop\n";
    return std::nullopt;
  }
  if (o.fault_round && o.ports.size() < 2) {
    std::cerr << "--fault-round needs at least two servers in --port\n";
    return std::nullopt;
  }
  if (o.kind != "troupe" && o.kind != "ws" && o.kind != "socketio") {
    std::cerr << "unknown --kind " << o.kind << "\n";
    return std::nullopt;
  }
  if (!loopback(o.host)) {
    std::cerr << "--host must be a loopback address\n";
    return std::nullopt;
  }
  if (o.presence_join > 0 && o.kind != "troupe") {
    std::cerr << "--presence-join needs --kind troupe (the peers have no presence)\n";
    return std::nullopt;
  }
  if (o.payload < 16) {
    std::cerr << "--payload must be at least 16 bytes (timestamp and sender)\n";
    return std::nullopt;
  }
  return o;
}

} // namespace bench
