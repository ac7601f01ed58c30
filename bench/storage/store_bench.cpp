// troupe_store_bench: publish throughput and ack latency of running Troupe engines, side by
// side. bench/storage/run.sh starts the same engine three times (--store memory, --store
// sqlite --sync normal, --store sqlite --sync full) and hands them all to one run of this
// driver, which measures every point against each engine in turn, so that the three see
// the same machine at nearly the same moment. See bench/README.md ("Storage").
//
// A point: P publishers spread over R rooms, each room with S more connections that only
// subscribe; every publisher is subscribed to its own room too (as in a chat room), so a
// message goes to P/R + S connections. Closed loop: each publisher keeps W pubs in flight
// and sends the next when one is acknowledged. Open loop: pubs paced at a fixed rate over
// the publishers, each timed from the moment it was due (so a stall that delays sending
// counts). Warm-up, one measured window, then publishing stops and the driver waits until
// every pub is answered and every member has received every acknowledged message.
//
// Output: one JSON line per point (`"type":"store_point"`), then a summary line and a table
// on stderr.

#include "asio.hpp"
#include "json.hpp"
#include "latency.hpp"
#include "proc_stats.hpp"
#include "troupe_dialect.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace bench {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using namespace std::chrono_literals;

// ---- options --------------------------------------------------------------------------------

struct Target {
  std::string label; // "memory", "sqlite-normal", "sqlite-full"
  std::uint16_t port = 0;
  pid_t pid = 0; // 0: no CPU or disk figures
};

struct Options {
  std::string host = "127.0.0.1";
  std::vector<Target> targets;
  std::string disk; // block device of the data directories (/proc/diskstats name), or none
  std::vector<int> publishers{1, 16, 64};
  std::vector<int> windows{1, 32};
  std::vector<double> rates{5000, 20000};
  int rate_publishers = 16;
  int rooms = 4;
  int subscribers = 2;
  std::size_t size = 100;
  double warmup_s = 1, duration_s = 5, drain_s = 15, setup_s = 10;
  std::size_t max_inflight = 20000; // open loop: beyond this the point is saturated
  double noise_pct = 10;
  int retries = 1;
};

const char* kUsage =
    "usage: troupe_store_bench --target LABEL=PORT[:PID] [--target ...]\n"
    "  [--publishers 1,16,64] [--windows 1,32] [--rates 5000,20000] [--rate-publishers 16]\n"
    "  [--rooms 4] [--subscribers 2] [--size 100] [--warmup 1] [--duration 5] [--quick]\n"
    "  [--drain 15] [--max-inflight 20000] [--noise-pct 10] [--retries 1] [--host 127.0.0.1]\n"
    "  [--disk DEVICE]   (the data directories' block device, as /proc/diskstats names it)\n"
    "Every point runs against each target in turn. --rates '' skips the open loop.\n";

template <class T>
std::vector<T> parse_list(const std::string& s) {
  std::vector<T> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    out.push_back(static_cast<T>(std::stod(item)));
  }
  return out;
}

std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (flag == "-h" || flag == "--help") {
        std::cout << kUsage;
        std::exit(0);
      }
      if (flag == "--quick") {
        o.warmup_s = 0.5;
        o.duration_s = 2;
        continue;
      }
      if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value");
      const std::string v = argv[++i];
      if (flag == "--target") {
        Target t;
        const auto eq = v.find('=');
        if (eq == std::string::npos) throw std::runtime_error("--target LABEL=PORT[:PID]");
        t.label = v.substr(0, eq);
        const auto rest = v.substr(eq + 1);
        const auto colon = rest.find(':');
        t.port = static_cast<std::uint16_t>(std::stoi(rest.substr(0, colon)));
        if (colon != std::string::npos)
          t.pid = static_cast<pid_t>(std::stol(rest.substr(colon + 1)));
        o.targets.push_back(t);
      } else if (flag == "--host")
        o.host = v;
      else if (flag == "--disk")
        o.disk = v;
      else if (flag == "--publishers")
        o.publishers = parse_list<int>(v);
      else if (flag == "--windows")
        o.windows = parse_list<int>(v);
      else if (flag == "--rates")
        o.rates = parse_list<double>(v);
      else if (flag == "--rate-publishers")
        o.rate_publishers = std::max(1, std::stoi(v));
      else if (flag == "--rooms")
        o.rooms = std::max(1, std::stoi(v));
      else if (flag == "--subscribers")
        o.subscribers = std::max(0, std::stoi(v));
      else if (flag == "--size")
        o.size = std::max<std::size_t>(16, std::stoul(v));
      else if (flag == "--warmup")
        o.warmup_s = std::stod(v);
      else if (flag == "--duration")
        o.duration_s = std::stod(v);
      else if (flag == "--drain")
        o.drain_s = std::stod(v);
      else if (flag == "--max-inflight")
        o.max_inflight = std::stoul(v);
      else if (flag == "--noise-pct")
        o.noise_pct = std::stod(v);
      else if (flag == "--retries")
        o.retries = std::max(0, std::stoi(v));
      else
        throw std::runtime_error("unknown option " + flag);
    }
  } catch (const std::exception& e) {
    std::cerr << "troupe_store_bench: " << e.what() << "\n" << kUsage;
    return std::nullopt;
  }
  if (o.targets.empty()) {
    std::cerr << kUsage;
    return std::nullopt;
  }
  return o;
}

// ---- /proc and /metrics -------------------------------------------------------------------

// Bytes the process caused to be written to storage (/proc/PID/io write_bytes).
std::optional<double> process_write_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("write_bytes:", 0) == 0) return std::stod(line.substr(12));
  }
  return std::nullopt;
}

// CPU seconds of the kernel's own threads (children of kthreadd, pid 2): jbd2 committing
// the filesystem's journal and kworkers writing back pages do the disk work of a durable
// store there, outside the engine's own CPU time. Threads that come and go between two
// samples (short-lived kworkers) are missed; that error is small.
double kernel_threads_cpu_seconds() {
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  unsigned long long total = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(line.substr(close + 2));
    std::string state;
    long ppid = 0;
    fields >> state >> ppid;
    if (ppid != 2) continue;
    std::string skip;
    for (int i = 5; i <= 13; ++i)
      fields >> skip;
    unsigned long long utime = 0, stime = 0;
    if (fields >> utime >> stime) total += utime + stime;
  }
  return static_cast<double>(total) / ticks;
}

// A block device's counters from /proc/diskstats: sectors (512 bytes) written and the
// milliseconds it had I/O in flight. Every process's I/O, not only the engine's: a disk busy
// while the engine is idle is another process's doing (or the host's).
struct DiskCounters {
  double read_bytes = 0, written_bytes = 0, busy_ms = 0;
};
std::optional<DiskCounters> disk_counters(const std::string& device) {
  if (device.empty()) return std::nullopt;
  std::ifstream in("/proc/diskstats");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string major, minor, name;
    f >> major >> minor >> name;
    if (name != device) continue;
    double v[10] = {};
    for (double& x : v)
      f >> x; // reads: 4, writes: 4 (sectors written 3rd), in flight, busy
    if (!f) return std::nullopt;
    return DiskCounters{v[2] * 512, v[6] * 512, v[9]};
  }
  return std::nullopt;
}

using Metrics = std::map<std::string, double>;

// GET /metrics; empty when it could not be read.
net::awaitable<Metrics> fetch_metrics(tcp::endpoint server) {
  Metrics out;
  try {
    beast::tcp_stream stream(co_await net::this_coro::executor);
    stream.expires_after(5s);
    co_await stream.async_connect(server, net::use_awaitable);
    http::request<http::empty_body> request{http::verb::get, "/metrics", 11};
    request.set(http::field::host, server.address().to_string());
    co_await http::async_write(stream, request, net::use_awaitable);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    co_await http::async_read(stream, buffer, response, net::use_awaitable);
    std::istringstream body(response.body());
    std::string line;
    while (std::getline(body, line)) {
      if (line.empty() || line[0] == '#') continue;
      const auto space = line.find(' ');
      if (space == std::string::npos) continue;
      out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  } catch (const std::exception&) {
    out.clear();
  }
  co_return out;
}

double metric(const Metrics& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

// ---- one point in progress --------------------------------------------------------------------

class Client;

struct Room {
  std::string name;
  std::uint64_t acked = 0; // pubs acknowledged: what every member must receive
  std::vector<Client*> members;
};

// What the clients report into while a point runs.
struct PointState {
  bool measuring = false;
  bool closed_loop_publishing = false;
  std::size_t window = 1; // closed loop: pubs in flight per publisher
  std::size_t size = 100;
  Latency ack, deliver;
  std::uint64_t acks_in_window = 0, deliveries_in_window = 0;
  std::uint64_t inflight = 0; // pubs sent and not yet answered, every publisher
  std::uint64_t pub_errors = 0, unknown_replies = 0, disconnects = 0, refused = 0;
  std::map<std::string, std::uint64_t> errors; // by code
  std::size_t subscribed = 0, closed = 0;
};

// One WebSocket connection: connect, subscribe to its room, then (a publisher) publish and
// time each pub to its ack, or (a subscriber) time each message from its publisher's stamp.
class Client : public std::enable_shared_from_this<Client>, private DialectSink {
public:
  Client(net::io_context& ioc, Dialect& dialect, PointState& point, Room& room, bool publisher,
         std::uint32_t index)
      : ws_(ioc.get_executor()), dialect_(dialect), point_(point), room_(room),
        publisher_(publisher), index_(index) {
    payload_.resize(point.size);
    std::memcpy(payload_.data() + 8, &index_, 4);
  }

  void start(const tcp::endpoint& server) {
    ws_.next_layer().async_connect(server, [self = shared_from_this(),
                                            server](beast::error_code ec) {
      if (ec || self->closed_) return self->fail(true);
      self->ws_.next_layer().set_option(tcp::no_delay(true), ec);
      self->ws_.auto_fragment(false);
      self->ws_.read_message_max(16u << 20);
      self->ws_.secure_prng(false);
      self->ws_.binary(true);
      self->ws_.async_handshake(server.address().to_string() + ":" + std::to_string(server.port()),
                                "/ws", [self](beast::error_code ec) {
                                  if (ec || self->closed_) return self->fail(true);
                                  self->read_next();
                                  self->send(self->dialect_.connect(
                                      self->next_id_++, "s" + std::to_string(self->index_)));
                                });
    });
  }

  // Queues one pub, timed from `due_ns` (its payload carries the same stamp).
  void publish(std::int64_t due_ns) {
    if (closed_ || closing_) return;
    const std::uint64_t id = next_id_++;
    if (sent_.empty()) base_id_ = id;
    sent_.push_back(due_ns);
    ++inflight_;
    ++point_.inflight;
    std::memcpy(payload_.data(), &due_ns, 8);
    ++counter_;
    std::memcpy(payload_.data() + 12, &counter_, 4);
    send(dialect_.publish(id, room_.name, payload_.data(), payload_.size()));
  }

  void close() {
    if (closed_ || closing_) return;
    closing_ = true;
    ws_.async_close(websocket::close_code::normal,
                    [self = shared_from_this()](beast::error_code) {});
  }

  void abort() {
    closing_ = true;
    fail(false);
  }

  bool publisher() const { return publisher_; }
  bool subscribed() const { return subscribed_; }
  bool closed() const { return closed_; }
  std::uint64_t inflight() const { return inflight_; }
  std::uint64_t received() const { return received_; }
  std::uint64_t gaps() const { return gaps_; }
  std::uint64_t dups() const { return dups_; }

private:
  void send(Outgoing out) {
    if (closed_) return;
    queue_.push_back(std::move(out.bytes));
    if (!writing_) write_next();
  }

  void write_next() {
    writing_ = true;
    ws_.async_write(net::buffer(queue_.front()),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (ec || self->closed_) return self->fail(false);
                      self->queue_.pop_front();
                      if (!self->queue_.empty() && !self->closed_) self->write_next();
                    });
  }

  void read_next() {
    // After fail() nothing may touch the point: it may be over (a completed read can still
    // be queued when the socket is closed).
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec || self->closed_) return self->fail(false);
      auto bytes = self->in_.cdata();
      if (!self->dialect_.parse(static_cast<const char*>(bytes.data()), bytes.size(),
                                self->ws_.got_text(), *self)) {
        ++self->point_.errors["unparsable"];
      }
      self->in_.consume(self->in_.size());
      if (!self->closed_) self->read_next();
    });
  }

  void fail(bool refused) {
    if (closed_) return;
    closed_ = true;
    beast::error_code ec;
    ws_.next_layer().close(ec);
    ++point_.closed;
    if (refused)
      ++point_.refused;
    else if (!closing_)
      ++point_.disconnects;
    point_.inflight -= inflight_;
    inflight_ = 0;
  }

  // DialectSink
  void on_connected(std::string_view) override {
    sub_id_ = next_id_++;
    send(dialect_.subscribe(sub_id_, room_.name));
  }

  void on_reply(std::uint64_t id, std::uint64_t seq) override {
    if (id == sub_id_ && !subscribed_) {
      subscribed_ = true;
      last_seq_ = seq;
      ++point_.subscribed;
      return;
    }
    const std::int64_t now = now_ns();
    std::int64_t due;
    if (!settle(id, due)) {
      ++point_.unknown_replies;
      return;
    }
    ++room_.acked;
    if (point_.measuring) {
      point_.ack.record(now - due);
      ++point_.acks_in_window;
    }
    if (point_.closed_loop_publishing) publish(now);
  }

  void on_msg(std::uint64_t seq, const std::uint8_t* data, std::size_t n) override {
    if (seq > last_seq_ + 1)
      gaps_ += seq - last_seq_ - 1;
    else if (seq <= last_seq_)
      ++dups_;
    if (seq > last_seq_) last_seq_ = seq;
    ++received_;
    if (point_.measuring) {
      ++point_.deliveries_in_window;
      if (!publisher_ && n >= 8) {
        std::int64_t stamp;
        std::memcpy(&stamp, data, 8);
        point_.deliver.record(now_ns() - stamp);
      }
    }
  }

  void on_error(std::uint64_t id, std::string_view code) override {
    ++point_.errors[std::string(code)];
    if (!subscribed_) return fail(true);
    std::int64_t due;
    if (settle(id, due)) {
      ++point_.pub_errors;
      if (point_.closed_loop_publishing) publish(now_ns());
    }
  }

  void on_server_disconnect(std::string_view) override { ++point_.errors["disconnect"]; }

  // Marks pub `id` answered; false when it is not one in flight.
  bool settle(std::uint64_t id, std::int64_t& due) {
    if (id < base_id_ || id - base_id_ >= sent_.size()) return false;
    auto& slot = sent_[id - base_id_];
    if (slot < 0) return false;
    due = slot;
    slot = -1;
    while (!sent_.empty() && sent_.front() < 0) {
      sent_.pop_front();
      ++base_id_;
    }
    --inflight_;
    --point_.inflight;
    return true;
  }

  using Socket = net::basic_stream_socket<tcp, net::io_context::executor_type>;
  websocket::stream<Socket> ws_;
  beast::flat_buffer in_;
  std::deque<std::string> queue_;
  bool writing_ = false;
  Dialect& dialect_;
  PointState& point_;
  Room& room_;
  bool publisher_;
  std::uint32_t index_;
  std::uint32_t counter_ = 0;
  std::vector<std::uint8_t> payload_;
  bool subscribed_ = false, closing_ = false, closed_ = false;
  std::uint64_t next_id_ = 1, sub_id_ = 0;
  std::deque<std::int64_t> sent_; // due time of pubs base_id_, base_id_ + 1, ...; -1: answered
  std::uint64_t base_id_ = 0;
  std::uint64_t inflight_ = 0;
  std::uint64_t last_seq_ = 0, gaps_ = 0, dups_ = 0, received_ = 0;
};

// ---- points ----------------------------------------------------------------------------------

struct Spec {
  bool open = false;
  int publishers = 1;
  int window = 1;  // closed loop
  double rate = 0; // open loop: pubs per second
  std::string name() const {
    char buf[64];
    if (open)
      std::snprintf(buf, sizeof buf, "open %.0f/s", rate);
    else
      std::snprintf(buf, sizeof buf, "closed %dx%d", publishers, window);
    return buf;
  }
};

struct Result {
  std::string target, point;
  Spec spec;
  int rooms = 0, fanout = 0;
  double seconds = 0;
  double msgs_per_s = 0, deliveries_per_s = 0;
  Latency::Summary ack, deliver;
  double commits = 0, writes = 0;
  std::optional<double> server_cpu_pct, disk_bytes, device_write_bytes, device_read_bytes,
      device_busy_pct;
  double driver_cpu_pct = 0, kernel_threads_cpu_pct = 0;
  std::optional<double> other_cpu_pct;
  bool noisy = false, saturated = false, drained = false, ok = false;
  std::uint64_t skipped = 0, undelivered = 0, excess = 0, gaps = 0, dups = 0, unacked = 0;
  std::uint64_t pub_errors = 0, disconnects = 0, refused = 0, unknown_replies = 0;
  std::map<std::string, std::uint64_t> errors;
  int attempts = 1;
  std::string failure;
};

class Bench {
public:
  Bench(net::io_context& ioc, const Options& o) : ioc_(ioc), o_(o) {
    std::random_device rd;
    run_id_ = std::to_string(rd() % 1000000);
  }

  net::awaitable<void> run() {
    std::vector<Spec> specs;
    for (int p : o_.publishers)
      for (int w : o_.windows)
        specs.push_back({false, std::max(1, p), std::max(1, w), 0});
    for (double r : o_.rates)
      specs.push_back({true, o_.rate_publishers, 1, r});
    for (std::size_t s = 0; s < specs.size(); ++s) {
      for (const auto& target : o_.targets) {
        Result r;
        for (int attempt = 0; attempt <= o_.retries; ++attempt) {
          r = co_await point(target, specs[s], s, attempt);
          r.attempts = attempt + 1;
          if (!r.noisy || !r.failure.empty()) break;
          std::cerr << "[store_bench] " << target.label << " " << r.point
                    << ": the machine was busy (other " << r.other_cpu_pct.value_or(0)
                    << "% of a core), measuring again\n";
        }
        print(r);
        results_.push_back(r);
      }
    }
    summary();
  }

  int exit_code() const { return failed_ ? 1 : 0; }

private:
  net::awaitable<void> sleep(double seconds) {
    net::steady_timer t(
        ioc_, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
    co_await t.async_wait(net::use_awaitable);
  }

  // Polls `done` every 5 ms for at most `seconds`; returns whether it became true.
  template <class Done>
  net::awaitable<bool> wait_for(Done done, double seconds) {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(seconds));
    while (!done()) {
      if (Clock::now() >= deadline) co_return false;
      co_await sleep(0.005);
    }
    co_return true;
  }

  // Open loop: pub k is due at start + k / rate, publishers in turn.
  net::awaitable<void> pace(std::vector<std::shared_ptr<Client>>& pubs, double rate,
                            const bool& publishing, bool& pacing, std::uint64_t& skipped,
                            bool& saturated, PointState& state) {
    net::steady_timer timer(ioc_);
    const std::int64_t start = now_ns();
    const double interval_ns = 1e9 / rate;
    std::uint64_t k = 0;
    while (publishing) {
      const std::int64_t now = now_ns();
      while (start + static_cast<std::int64_t>(k * interval_ns) <= now) {
        const std::int64_t due = start + static_cast<std::int64_t>(k * interval_ns);
        if (state.inflight >= o_.max_inflight) {
          saturated = true;
          ++skipped;
        } else {
          pubs[k % pubs.size()]->publish(due);
        }
        ++k;
      }
      timer.expires_at(Clock::time_point(
          std::chrono::nanoseconds(start + static_cast<std::int64_t>(k * interval_ns))));
      co_await timer.async_wait(net::use_awaitable);
    }
    pacing = false;
  }

  struct Sample {
    std::int64_t t_ns = 0;
    std::optional<double> server_cpu, disk, idle;
    double driver_cpu = 0, kernel_threads_cpu = 0;
    int cores = 0;
    std::optional<DiskCounters> device;
    Metrics metrics;
  };

  net::awaitable<Sample> sample(const Target& target, const tcp::endpoint& server) {
    Sample s;
    s.metrics = co_await fetch_metrics(server);
    s.t_ns = now_ns();
    if (target.pid > 0) {
      s.server_cpu = process_cpu_seconds(target.pid);
      s.disk = process_write_bytes(target.pid);
    }
    s.driver_cpu = process_cpu_seconds(0).value_or(0);
    s.kernel_threads_cpu = kernel_threads_cpu_seconds();
    s.device = disk_counters(o_.disk);
    if (auto idle = machine_idle()) {
      s.idle = idle->idle_s;
      s.cores = idle->cores;
    }
    co_return s;
  }

  net::awaitable<Result> point(const Target& target, const Spec& spec, std::size_t index,
                               int attempt) {
    Result r;
    r.target = target.label;
    r.point = spec.name();
    r.spec = spec;
    const tcp::endpoint server(net::ip::make_address(o_.host), target.port);
    PointState state;
    state.size = o_.size;
    state.window = static_cast<std::size_t>(spec.window);
    const int room_count = std::min(o_.rooms, spec.publishers);
    r.rooms = room_count;
    r.fanout = (spec.publishers + room_count - 1) / room_count + o_.subscribers;
    std::vector<std::unique_ptr<Room>> rooms;
    for (int i = 0; i < room_count; ++i) {
      rooms.push_back(std::make_unique<Room>());
      rooms.back()->name = "store-bench-" + run_id_ + "-" + target.label + "-" +
                           std::to_string(index) + "." + std::to_string(attempt) + "-" +
                           std::to_string(i);
    }
    std::vector<std::shared_ptr<Client>> clients, pubs;
    std::uint32_t next_index = 0;
    for (int i = 0; i < spec.publishers; ++i) {
      Room& room = *rooms[static_cast<std::size_t>(i % room_count)];
      auto c = std::make_shared<Client>(ioc_, dialect_, state, room, true, next_index++);
      room.members.push_back(c.get());
      clients.push_back(c);
      pubs.push_back(c);
    }
    for (auto& room : rooms) {
      for (int i = 0; i < o_.subscribers; ++i) {
        auto c = std::make_shared<Client>(ioc_, dialect_, state, *room, false, next_index++);
        room->members.push_back(c.get());
        clients.push_back(c);
      }
    }
    for (auto& c : clients)
      c->start(server);
    const bool ready = co_await wait_for(
        [&] { return state.subscribed == clients.size() || state.refused > 0; }, o_.setup_s);
    if (!ready || state.refused > 0) {
      r.failure =
          state.refused > 0 ? "a connection was refused" : "connections did not subscribe in time";
      for (auto& c : clients)
        c->abort();
      failed_ = true;
      co_return r;
    }

    // Warm-up, then the measured window.
    bool publishing = true;
    bool pacing = spec.open; // the pacer refers to these locals until it has seen the end
    bool saturated = false;
    std::uint64_t skipped = 0;
    if (spec.open) {
      net::co_spawn(ioc_, pace(pubs, spec.rate, publishing, pacing, skipped, saturated, state),
                    net::detached);
    } else {
      state.closed_loop_publishing = true;
      const std::int64_t now = now_ns();
      for (auto& p : pubs)
        for (int i = 0; i < spec.window; ++i)
          p->publish(now);
    }
    co_await sleep(o_.warmup_s);
    const Sample before = co_await sample(target, server);
    state.ack.reserve(static_cast<std::size_t>(o_.duration_s * 200000));
    state.measuring = true;
    const std::uint64_t skipped_before = skipped;
    const bool saturated_before = saturated;
    co_await sleep(o_.duration_s);
    const Sample after = co_await sample(target, server);
    state.measuring = false;
    r.skipped = skipped - skipped_before;
    r.saturated = saturated && (saturated_before || r.skipped > 0);
    publishing = false;
    state.closed_loop_publishing = false;
    co_await wait_for([&] { return !pacing; }, 5);

    // Drain: every pub answered, every member holding every acknowledged message.
    r.drained = co_await wait_for(
        [&] {
          if (state.inflight > 0) return false;
          for (auto& room : rooms)
            for (auto* m : room->members)
              if (!m->closed() && m->received() < room->acked) return false;
          return true;
        },
        o_.drain_s);
    co_await sleep(0.05); // a late duplicate would show here
    for (auto& room : rooms) {
      for (auto* m : room->members) {
        if (m->received() < room->acked)
          r.undelivered += room->acked - m->received();
        else
          r.excess += m->received() - room->acked;
        r.gaps += m->gaps();
        r.dups += m->dups();
      }
    }
    r.unacked = state.inflight;
    for (auto& c : clients)
      c->close();
    if (!co_await wait_for([&] { return state.closed == clients.size(); }, 3))
      for (auto& c : clients)
        c->abort();

    // Figures.
    const double seconds = static_cast<double>(after.t_ns - before.t_ns) / 1e9;
    r.seconds = seconds;
    r.msgs_per_s = static_cast<double>(state.acks_in_window) / seconds;
    r.deliveries_per_s = static_cast<double>(state.deliveries_in_window) / seconds;
    r.ack = state.ack.summarize();
    r.deliver = state.deliver.summarize();
    if (!before.metrics.empty() && !after.metrics.empty()) {
      r.commits = metric(after.metrics, "troupe_store_commits_total") -
                  metric(before.metrics, "troupe_store_commits_total");
      r.writes = metric(after.metrics, "troupe_store_writes_total") -
                 metric(before.metrics, "troupe_store_writes_total");
    }
    double server_cpu_s = 0;
    if (before.server_cpu && after.server_cpu) {
      server_cpu_s = *after.server_cpu - *before.server_cpu;
      r.server_cpu_pct = 100 * server_cpu_s / seconds;
    }
    if (before.disk && after.disk) r.disk_bytes = *after.disk - *before.disk;
    if (before.device && after.device) {
      r.device_write_bytes = after.device->written_bytes - before.device->written_bytes;
      r.device_read_bytes = after.device->read_bytes - before.device->read_bytes;
      r.device_busy_pct = (after.device->busy_ms - before.device->busy_ms) / 10 / seconds;
    }
    const double driver_cpu_s = after.driver_cpu - before.driver_cpu;
    r.driver_cpu_pct = 100 * driver_cpu_s / seconds;
    const double kernel_s = std::max(0.0, after.kernel_threads_cpu - before.kernel_threads_cpu);
    r.kernel_threads_cpu_pct = 100 * kernel_s / seconds;
    if (before.idle && after.idle && after.cores > 0) {
      // Other processes: what is busy beyond the server, the driver and the kernel's threads
      // (whose disk work the durable stores cause: not noise).
      const double busy = after.cores * seconds - (*after.idle - *before.idle);
      r.other_cpu_pct =
          100 * std::max(0.0, busy - server_cpu_s - driver_cpu_s - kernel_s) / seconds;
      r.noisy = *r.other_cpu_pct > o_.noise_pct;
    }
    r.pub_errors = state.pub_errors;
    r.disconnects = state.disconnects;
    r.refused = state.refused;
    r.unknown_replies = state.unknown_replies;
    r.errors = state.errors;
    r.ok = r.drained && r.undelivered == 0 && r.excess == 0 && r.gaps == 0 && r.dups == 0 &&
           r.unacked == 0 && r.pub_errors == 0 && r.disconnects == 0 && r.unknown_replies == 0 &&
           r.errors.empty();
    if (!r.ok) failed_ = true;
    co_return r;
  }

  static Json latency_json(const Latency::Summary& s) {
    Json j;
    j.add("p50", s.p50_us, 1)
        .add("p90", s.p90_us, 1)
        .add("p99", s.p99_us, 1)
        .add("p999", s.p999_us, 1)
        .add("max", s.max_us, 1)
        .add("mean", s.mean_us, 1)
        .add("samples", static_cast<std::uint64_t>(s.samples));
    return j;
  }

  void print(const Result& r) {
    Json j;
    j.add("type", "store_point")
        .add("store", r.target)
        .add("point", r.point)
        .add("mode", r.spec.open ? "open" : "closed")
        .add("publishers", r.spec.publishers);
    if (r.spec.open)
      j.add("offered_per_s", r.spec.rate, 0);
    else
      j.add("window", r.spec.window);
    j.add("rooms", r.rooms)
        .add("subscribers_per_room", o_.subscribers)
        .add("fanout", r.fanout)
        .add("payload_bytes", static_cast<std::uint64_t>(o_.size));
    if (!r.failure.empty()) {
      j.add("ok", false).add("failure", r.failure);
      std::cout << j.str() << std::endl;
      return;
    }
    j.add("seconds", r.seconds, 2)
        .add("msgs_per_s", r.msgs_per_s, 0)
        .add("ack_p50_us", r.ack.p50_us, 1)
        .add("ack_p99_us", r.ack.p99_us, 1)
        .add("ack_max_us", r.ack.max_us, 1)
        .add("ack_us", latency_json(r.ack))
        .add("deliver_us", latency_json(r.deliver))
        .add("deliveries_per_s", r.deliveries_per_s, 0)
        .add("commits", static_cast<std::uint64_t>(r.commits))
        .add("writes", static_cast<std::uint64_t>(r.writes));
    if (r.commits > 0) {
      j.add("msgs_per_commit", r.writes / r.commits, 1)
          .add("commits_per_s", r.commits / r.seconds, 0);
    } else {
      j.add_null("msgs_per_commit").add("commits_per_s", 0.0, 0);
    }
    j.add("server_cpu_pct", r.server_cpu_pct, 1);
    if (r.server_cpu_pct && r.msgs_per_s > 0)
      j.add("server_cpu_us_per_msg", *r.server_cpu_pct / 100 * 1e6 / r.msgs_per_s, 2);
    else
      j.add_null("server_cpu_us_per_msg");
    if (r.disk_bytes && r.msgs_per_s > 0)
      j.add("disk_bytes_per_msg", *r.disk_bytes / (r.msgs_per_s * r.seconds), 0)
          .add("disk_mb_per_s", *r.disk_bytes / r.seconds / 1e6, 2);
    if (r.device_write_bytes) {
      j.add("device", o_.disk)
          .add("device_write_mb_per_s", *r.device_write_bytes / r.seconds / 1e6, 2)
          .add("device_read_mb_per_s", *r.device_read_bytes / r.seconds / 1e6, 2)
          .add("device_busy_pct", r.device_busy_pct, 1);
    }
    j.add("driver_cpu_pct", r.driver_cpu_pct, 1)
        .add("driver_bound", r.driver_cpu_pct > 90)
        .add("kernel_threads_cpu_pct", r.kernel_threads_cpu_pct, 1)
        .add("other_cpu_pct", r.other_cpu_pct, 1)
        .add("noisy", r.noisy)
        .add("attempts", r.attempts);
    if (r.spec.open) j.add("saturated", r.saturated).add("skipped", r.skipped);
    Json errors;
    for (auto& [code, n] : r.errors)
      errors.add(code, n);
    j.add("drained", r.drained)
        .add("unacked", r.unacked)
        .add("undelivered", r.undelivered)
        .add("excess", r.excess)
        .add("gaps", r.gaps)
        .add("dups", r.dups)
        .add("pub_errors", r.pub_errors)
        .add("disconnects", r.disconnects)
        .add("errors", errors)
        .add("ok", r.ok);
    std::cout << j.str() << std::endl;
  }

  // The side-by-side table (stderr) and a summary line: each point's figures per store and
  // each durable store's throughput as a share of the memory store's.
  void summary() {
    std::vector<std::string> points;
    for (auto& r : results_)
      if (std::find(points.begin(), points.end(), r.point) == points.end())
        points.push_back(r.point);
    auto find = [&](const std::string& point, const std::string& store) -> const Result* {
      for (auto& r : results_)
        if (r.point == point && r.target == store) return &r;
      return nullptr;
    };
    const std::string base = o_.targets.front().label;
    std::fprintf(stderr, "\n%-16s %-14s %9s %7s %9s %9s %9s %9s %8s %8s %7s %7s %5s\n", "point",
                 "store", "msgs/s", "vs", "ack p50", "ack p99", "ack max", "dlv p99", "msg/cmt",
                 "cmt/s", "srv cpu", "disk", "dev");
    std::fprintf(stderr, "%-16s %-14s %9s %7s %9s %9s %9s %9s %8s %8s %7s %7s %5s\n", "", "", "",
                 base.substr(0, 7).c_str(), "ms", "ms", "ms", "ms", "", "", "%", "KB/msg", "busy%");
    Json by_point;
    for (auto& point : points) {
      const Result* b = find(point, base);
      Json row;
      for (auto& t : o_.targets) {
        const Result* r = find(point, t.label);
        if (!r) continue;
        if (!r->failure.empty()) {
          std::fprintf(stderr, "%-16s %-14s failed: %s\n", point.c_str(), t.label.c_str(),
                       r->failure.c_str());
          continue;
        }
        const double ratio = b && b->msgs_per_s > 0 ? r->msgs_per_s / b->msgs_per_s : NAN;
        char mpc[16] = "-", cps[16] = "-";
        if (r->commits > 0) {
          std::snprintf(mpc, sizeof mpc, "%.1f", r->writes / r->commits);
          std::snprintf(cps, sizeof cps, "%.0f", r->commits / r->seconds);
        }
        std::string flags;
        if (!r->ok) flags += "!";
        if (r->noisy) flags += "~";
        if (r->driver_cpu_pct > 90) flags += "*";
        if (r->saturated) flags += "S";
        const double kb_per_msg = r->disk_bytes && r->msgs_per_s > 0
                                      ? *r->disk_bytes / (r->msgs_per_s * r->seconds) / 1024
                                      : NAN;
        std::fprintf(
            stderr,
            "%-16s %-14s %9.0f %6.2fx %9.2f %9.2f %9.2f %9.2f %8s %8s %7.0f %7.1f %5.0f %s\n",
            point.c_str(), t.label.c_str(), r->msgs_per_s, ratio, r->ack.p50_us / 1e3,
            r->ack.p99_us / 1e3, r->ack.max_us / 1e3, r->deliver.p99_us / 1e3, mpc, cps,
            r->server_cpu_pct.value_or(NAN), kb_per_msg, r->device_busy_pct.value_or(NAN),
            flags.c_str());
        Json cell;
        cell.add("msgs_per_s", r->msgs_per_s, 0)
            .add("vs_" + base, ratio, 3)
            .add("ack_p50_us", r->ack.p50_us, 1)
            .add("ack_p99_us", r->ack.p99_us, 1)
            .add("ack_max_us", r->ack.max_us, 1)
            .add("deliver_p99_us", r->deliver.p99_us, 1);
        if (r->commits > 0) cell.add("msgs_per_commit", r->writes / r->commits, 1);
        cell.add("ok", r->ok).add("noisy", r->noisy);
        row.add(t.label, cell);
      }
      by_point.add(point, row);
    }
    std::fprintf(
        stderr, "flags: ! a check failed (see its JSON line), ~ the machine was busy, * the driver "
                "used >90%% of its core, S open loop saturated (pubs skipped)\n");
    Json s;
    s.add("type", "store_summary")
        .add("baseline", base)
        .add("points", by_point)
        .add("ok", !failed_);
    std::cout << s.str() << std::endl;
  }

  net::io_context& ioc_;
  const Options& o_;
  TroupeDialect dialect_{"troupe"};
  std::string run_id_;
  std::vector<Result> results_;
  bool failed_ = false;
};

} // namespace
} // namespace bench

int main(int argc, char** argv) {
  using namespace bench;
  auto options = parse_options(argc, argv);
  if (!options) return 2;
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  const Options& o = *options;
  const double per_point = o.setup_s + o.warmup_s + o.duration_s + o.drain_s + 15;
  const std::size_t points = o.publishers.size() * o.windows.size() + o.rates.size();
  alarm(static_cast<unsigned>(60 + per_point * points * o.targets.size() * (1 + o.retries)));

  net::io_context ioc(1);
  Bench bench(ioc, o);
  bool failed = false;
  net::co_spawn(ioc, bench.run(), [&](std::exception_ptr e) {
    if (e) {
      failed = true;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::cerr << "troupe_store_bench: " << ex.what() << "\n";
      }
    }
    ioc.stop();
  });
  ioc.run();
  return failed ? 1 : bench.exit_code();
}
