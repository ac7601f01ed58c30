#include "runner.hpp"

#include "proc_stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <unistd.h>

namespace bench {
namespace {

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::optional<double> as_double(const std::optional<long>& v) {
  return v ? std::optional<double>(static_cast<double>(*v)) : std::nullopt;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

template <class T>
T median(std::vector<T> v) {
  if (v.empty()) return T{};
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

const char* state_name(Connection::State s) {
  switch (s) {
  case Connection::State::Idle:
    return "idle";
  case Connection::State::Connecting:
    return "connecting";
  case Connection::State::Joining:
    return "joining";
  case Connection::State::Ready:
    return "ready";
  case Connection::State::Subscribing:
    return "subscribing";
  case Connection::State::Subscribed:
    return "subscribed";
  case Connection::State::Closing:
    return "closing";
  case Connection::State::Closed:
    return "closed";
  }
  return "?";
}

} // namespace

Runner::Runner(net::io_context& ioc, const Options& options, Dialect& dialect,
               std::vector<tcp::endpoint> servers)
    : ioc_(ioc), opt_(options), dialect_(dialect), server_(servers.front()),
      servers_(std::move(servers)) {
  if (opt_.redis_port) redis_ = std::make_unique<RedisInfo>(opt_.redis_port);
  run_tag_ = std::to_string(getpid());
  payload_.assign(opt_.payload, 0x5a);
}

void Runner::print(const Json& j) { std::cout << j.str() << std::endl; }

void Runner::add_tags(Json& j) const {
  if (opt_.round > 0) j.add("round", opt_.round);
  if (!opt_.commit.empty()) j.add("commit", opt_.commit);
}

std::optional<double> Runner::servers_cpu(std::vector<double>* each) const {
  if (opt_.server_pids.size() > 1) return processes_cpu_seconds(opt_.server_pids, each);
  if (each) each->clear();
  auto s = process_cpu_seconds(opt_.server_pid);
  if (s && each) each->push_back(*s);
  return opt_.server_pid ? s : std::nullopt;
}

net::awaitable<void> Runner::sleep(double s) {
  net::steady_timer t(ioc_, seconds(s));
  co_await t.async_wait(net::use_awaitable);
}

net::awaitable<bool> Runner::wait_until(std::function<bool()> done, double timeout_s) {
  const auto deadline = Clock::now() + seconds(timeout_s);
  net::steady_timer t(ioc_);
  while (!done()) {
    if (Clock::now() >= deadline) co_return false;
    t.expires_after(std::chrono::milliseconds(5));
    co_await t.async_wait(net::use_awaitable);
  }
  co_return true;
}

net::awaitable<void> Runner::run() {
  Json meta;
  meta.add("type", "meta")
      .add("server", opt_.label)
      .add("kind", opt_.kind)
      .add("address", server_.address().to_string() + ":" + std::to_string(server_.port()))
      .add("server_pid", static_cast<std::int64_t>(opt_.server_pid))
      .add("servers", static_cast<std::uint64_t>(servers_.size()))
      .add("processes",
           static_cast<std::uint64_t>(std::max<std::size_t>(1, opt_.server_pids.size())));
  if (opt_.presence_join > 0) {
    meta.add("mode", "presence")
        .add("members", opt_.presence_join)
        .add("spread_ms", opt_.join_spread_ms, 0);
  } else if (opt_.fault_round) {
    meta.add("mode", "fault")
        .add("subscribers", opt_.fault_subs)
        .add("offered_dps", opt_.fault_load, 0)
        .add("publish_s", opt_.fault_seconds, 1)
        .add("kill_at_s", opt_.fault_kill_at, 1);
  } else {
    meta.add("mode", "fanout")
        .add("payload_bytes", static_cast<std::uint64_t>(opt_.payload))
        .add("warmup_s", opt_.warmup_s, 1)
        .add("window_s", opt_.window_s, 1)
        .add("windows", opt_.windows);
  }
  print(meta);
  if (opt_.server_pid && !servers_cpu()) {
    std::cerr << "cannot read /proc/PID/stat of every --server-pid\n";
    exit_code_ = 1;
    co_return;
  }
  if (opt_.fault_round) {
    co_await fault_scenario();
    co_return;
  }
  if (opt_.presence_join > 0) {
    co_await presence_scenario();
    co_return;
  }
  if (opt_.idle > 0) co_await idle_scenario();
  for (const Shape& shape : opt_.shapes)
    co_await fanout_scenario(shape);
  print_summary();
}

// ---- connecting ----------------------------------------------------------------------

void Runner::start_more() {
  while (to_open_ > 0 && opening_ < static_cast<std::size_t>(opt_.connect_concurrency)) {
    auto c = std::make_shared<Connection>(ioc_, dialect_, *this, next_index_++);
    // Spread evenly over the servers, by slot: subscribers of a room and its publishers
    // are on every node.
    c->node = static_cast<std::uint32_t>((c->index() - base_) % servers_.size());
    conns_.push_back(c);
    --to_open_;
    ++opening_;
    c->start(servers_[c->node]);
  }
}

net::awaitable<std::size_t> Runner::open(std::size_t count) {
  const std::size_t ready_before = ready_;
  const std::size_t failed_before = setup_failed_;
  to_open_ = count;
  start_more();
  bool all = co_await wait_until(
      [&] { return ready_ - ready_before + setup_failed_ - failed_before >= count; },
      opt_.setup_timeout_s);
  if (!all) {
    to_open_ = 0;
    for (auto& c : conns_) {
      if (c->state() == Connection::State::Connecting || c->state() == Connection::State::Joining) {
        c->abort();
      }
    }
  }
  if (setup_failed_ > failed_before) {
    std::cerr << "  " << (setup_failed_ - failed_before)
              << " connections failed: " << last_setup_error_ << "\n";
  }
  co_return ready_ - ready_before;
}

net::awaitable<void> Runner::close_all() {
  for (auto& c : conns_)
    c->close();
  co_await wait_until(
      [&] {
        return std::all_of(conns_.begin(), conns_.end(),
                           [](auto& c) { return c->state() == Connection::State::Closed; });
      },
      5.0);
  for (auto& c : conns_)
    c->abort();
  conns_.clear();
  rooms_.clear();
  slots_.clear();
  co_await sleep(1.0); // let the server finish tearing down before the next measurement
}

// ---- idle memory -----------------------------------------------------------------------

// Subscribes the ready connections from `from` on, each to one of --idle-rooms rooms (an
// idle member of a chat room is what a server holds most of); returns how many got it.
net::awaitable<std::size_t> Runner::subscribe_idle(std::size_t from) {
  if (opt_.idle_rooms <= 0) co_return 0;
  subscribed_ = sub_failed_ = 0;
  std::size_t asked = 0;
  for (std::size_t i = from; i < conns_.size(); ++i) {
    if (conns_[i]->state() != Connection::State::Ready) continue;
    conns_[i]->subscribe("idle-" + run_tag_ + "-" + std::to_string(i % opt_.idle_rooms));
    ++asked;
  }
  co_await wait_until([&] { return subscribed_ + sub_failed_ >= asked; }, opt_.setup_timeout_s);
  if (subscribed_ < asked)
    std::cerr << "  idle: subscribed " << subscribed_ << " of " << asked << "\n";
  co_return subscribed_;
}

net::awaitable<void> Runner::idle_scenario() {
  std::cerr << "[" << opt_.label << "] idle: " << opt_.idle << " connections\n";
  base_ = next_index_;
  ready_ = setup_failed_ = 0;
  // A few connections first, so one-time costs (code paths warming up, first buffers,
  // thread stacks) land in the "before" sample and not in the per-connection figure.
  std::size_t base = co_await open(static_cast<std::size_t>(opt_.idle_base));
  co_await subscribe_idle(0); // the rooms exist before the "before" sample
  co_await sleep(1.0);
  auto rss_before = process_rss_kb(opt_.server_pid);
  auto gen_rss_before = process_rss_kb(0);

  const auto t0 = Clock::now();
  const std::size_t from = conns_.size();
  std::size_t opened = co_await open(static_cast<std::size_t>(opt_.idle));
  const std::size_t idle_subscribed = co_await subscribe_idle(from);
  const double setup_s = since(t0);

  auto cpu0 = process_cpu_seconds(opt_.server_pid);
  const auto t1 = Clock::now();
  co_await sleep(opt_.settle_s);
  auto cpu1 = process_cpu_seconds(opt_.server_pid);
  const double settle_s = since(t1);
  auto rss_after = process_rss_kb(opt_.server_pid);
  auto gen_rss_after = process_rss_kb(0);

  std::size_t still_open =
      static_cast<std::size_t>(std::count_if(conns_.begin(), conns_.end(), [](auto& c) {
        return c->state() == Connection::State::Ready ||
               c->state() == Connection::State::Subscribed;
      }));

  Json j;
  j.add("type", "idle")
      .add("server", opt_.label)
      .add("connections", opt_.idle)
      .add("rooms", opt_.idle_rooms)
      .add("subscribed", idle_subscribed)
      .add("connected", static_cast<std::uint64_t>(opened))
      .add("open_after_settle", static_cast<std::uint64_t>(still_open - std::min(still_open, base)))
      .add("base_connections", static_cast<std::uint64_t>(base))
      .add("connect_s", setup_s, 2)
      .add("connects_per_s", setup_s > 0 ? opened / setup_s : 0.0, 0);
  add_tags(j);
  if (opt_.server_pid && rss_before && rss_after && opened > 0) {
    double bytes = (static_cast<double>(*rss_after - *rss_before) * 1024.0) / opened;
    idle_bytes_per_conn_ = bytes;
    j.add("server_rss_before_kb", static_cast<std::int64_t>(*rss_before))
        .add("server_rss_after_kb", static_cast<std::int64_t>(*rss_after))
        .add("bytes_per_connection", bytes, 0)
        .add("kb_per_connection", bytes / 1000.0, 2);
  } else {
    j.add_null("bytes_per_connection");
  }
  if (cpu0 && cpu1 && opt_.server_pid) {
    j.add("server_idle_cpu_pct", (*cpu1 - *cpu0) / settle_s * 100.0, 2);
  }
  std::cerr << "[" << opt_.label << "] idle"
            << (opt_.round > 0 ? " round " + std::to_string(opt_.round) : "") << ": " << opened
            << " connections, server RSS before/after "
            << (rss_before ? fixed(*rss_before / 1024.0, 1) : "-") << "/"
            << (rss_after ? fixed(*rss_after / 1024.0, 1) : "-") << " MB, "
            << (idle_bytes_per_conn_ ? fixed(*idle_bytes_per_conn_, 0) : std::string("-"))
            << " bytes/connection\n";
  if (gen_rss_before && gen_rss_after && opened > 0) {
    j.add("generator_bytes_per_connection",
          static_cast<double>(*gen_rss_after - *gen_rss_before) * 1024.0 / opened, 0);
  }
  print(j);
  co_await close_all();
}

// ---- fan-out ---------------------------------------------------------------------------

net::awaitable<void> Runner::fanout_scenario(const Shape& shape) {
  const std::size_t n = static_cast<std::size_t>(shape.rooms) * shape.subs;
  std::cerr << "[" << opt_.label << "] " << shape.name << ": connecting " << n << "\n";
  base_ = next_index_;
  ready_ = setup_failed_ = subscribed_ = sub_failed_ = 0;
  unexpected_closes_ = 0;
  std::size_t opened = co_await open(n);
  if (opened < n) {
    Json j;
    j.add("type", "error")
        .add("server", opt_.label)
        .add("scenario", shape.name)
        .add("error", "connected " + std::to_string(opened) + " of " + std::to_string(n) + ": " +
                          last_setup_error_);
    print(j);
    exit_code_ = 1;
    co_await close_all();
    co_return;
  }
  rooms_.assign(static_cast<std::size_t>(shape.rooms), Room{});
  for (int r = 0; r < shape.rooms; ++r) {
    rooms_[r].name = "bench-" + run_tag_ + "-" + shape.name + "-r" + std::to_string(r);
  }
  slots_.assign(conns_.size(), Slot{});
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    auto r = static_cast<std::uint32_t>(i / static_cast<std::size_t>(shape.subs));
    conns_[i]->room_index = r;
    rooms_[r].members.push_back(conns_[i].get());
    conns_[i]->subscribe(rooms_[r].name);
  }
  co_await wait_until([&] { return subscribed_ + sub_failed_ >= n; }, opt_.setup_timeout_s);
  if (subscribed_ < n) {
    Json j;
    j.add("type", "error")
        .add("server", opt_.label)
        .add("scenario", shape.name)
        .add("error", "subscribed " + std::to_string(subscribed_) + " of " + std::to_string(n) +
                          (sub_failed_ ? ": " + last_setup_error_ : std::string()));
    print(j);
    exit_code_ = 1;
    co_await close_all();
    co_return;
  }
  if (redis_) {
    // What Redis does with no message published (heartbeats, periodic checks): the part of
    // the per-message figure that is not per message.
    auto r0 = redis_->sample();
    const auto t0 = Clock::now();
    co_await sleep(2.0);
    auto r1 = redis_->sample();
    if (r0 && r1) {
      const std::uint64_t info = r1->calls["info"] - r0->calls["info"];
      const std::uint64_t d = r1->total_commands - r0->total_commands;
      redis_background_per_s_ = static_cast<double>(d - std::min(d, info)) / since(t0);
    }
  }
  for (double load : opt_.loads)
    co_await run_load(shape, load);
  if (opt_.closed_loop) co_await run_load(shape, std::nullopt);
  co_await close_all();
}

void Runner::publish_from(Connection& c) {
  if (fault_) return fault_publish(c);
  Slot& s = slots_[c.index() - base_];
  ++s.counter;
  const std::int64_t t = now_ns();
  // Payload head: sender's steady-clock ns, the sender's slot, and its message counter.
  const std::uint32_t slot = c.index() - base_;
  std::memcpy(payload_.data(), &t, 8);
  std::memcpy(payload_.data() + 8, &slot, 4);
  std::memcpy(payload_.data() + 12, &s.counter, 4);
  if (closed_) {
    s.busy = true;
    s.received = 0;
    s.sent_ns = t;
  }
  c.publish(payload_.data(), payload_.size());
  ++pubs_sent_;
}

void Runner::publish_next() {
  // Rooms in turn, and within a room its members in turn: every room gets the same rate
  // and no one connection publishes more than its share.
  for (std::size_t tries = 0; tries < rooms_.size(); ++tries) {
    Room& room = rooms_[next_room_++ % rooms_.size()];
    for (std::size_t k = 0; k < room.members.size(); ++k) {
      Connection* c = room.members[room.next++ % room.members.size()];
      if (c->state() == Connection::State::Subscribed) {
        publish_from(*c);
        return;
      }
    }
  }
}

net::awaitable<void> Runner::pace(double pubs_per_s) {
  pacer_running_ = true;
  net::steady_timer timer(ioc_);
  const auto start = Clock::now();
  const double period_ns = 1e9 / pubs_per_s;
  std::uint64_t sent = 0;
  while (pacing_) {
    // Publish everything due by now, then sleep until the next one is due. Publishes are
    // evenly spaced; if the generator falls behind it catches up instead of skipping.
    const double elapsed = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
    const auto due = static_cast<std::uint64_t>(elapsed / period_ns) + 1;
    while (sent < due && pacing_) {
      publish_next();
      ++sent;
    }
    timer.expires_at(start + std::chrono::nanoseconds(static_cast<std::int64_t>(sent * period_ns)));
    co_await timer.async_wait(net::use_awaitable);
  }
  pacer_running_ = false;
}

net::awaitable<void> Runner::closed_loop_watchdog() {
  // A message that never reaches every member (a dropped subscriber, a lost push) would
  // stall its publisher for good: restart such a publisher after 2 s and count it.
  watchdog_running_ = true;
  while (closed_running_) {
    co_await sleep(0.25);
    const std::int64_t now = now_ns();
    for (std::size_t i = 0; i < slots_.size() && closed_running_; ++i) {
      if (slots_[i].busy && now - slots_[i].sent_ns > 2'000'000'000) {
        ++stalls_;
        slots_[i].busy = false;
        if (conns_[i]->state() == Connection::State::Subscribed) publish_from(*conns_[i]);
      }
    }
  }
  watchdog_running_ = false;
}

net::awaitable<void> Runner::run_load(const Shape& shape, std::optional<double> offered) {
  LoadRun run;
  run.shape = &shape;
  run.offered = offered;
  if (opt_.server_pid) {
    run.rss_before_kb = process_rss_kb(opt_.server_pid);
    reset_peak_rss(opt_.server_pid); // VmHWM back to VmRSS: the peak is this load's
  }
  begin_load(run);
  co_await sleep(opt_.warmup_s);
  co_await measure(run);

  // Stop publishing and let what was published arrive.
  pacing_ = false;
  closed_running_ = false;
  run.drained = co_await wait_until(
      [&] {
        return !pacer_running_ && !watchdog_running_ && acked_ + pub_errors_ >= pubs_sent_ &&
               delivered_ >= expected_;
      },
      opt_.drain_timeout_s);
  closed_ = false;
  if (opt_.server_pid) {
    run.rss_peak_kb = process_peak_rss_kb(opt_.server_pid);
    run.rss_after_kb = process_rss_kb(opt_.server_pid);
  }
  report(run);
  co_await sleep(0.5);
}

void Runner::begin_load(LoadRun& run) {
  const Shape& shape = *run.shape;
  delivered_ = pubs_sent_ = acked_ = expected_ = pub_errors_ = 0;
  stalls_ = short_payloads_ = 0;
  errors_.clear();
  latency_.clear();
  latency_same_.clear();
  latency_cross_.clear();
  run.closes_before = unexpected_closes_;
  for (auto& c : conns_) {
    run.gaps_before += c->gaps();
    run.dups_before += c->dups();
  }
  for (auto& s : slots_)
    s = Slot{};

  closed_ = !run.offered;
  if (run.offered) {
    run.pub_rate = *run.offered / shape.subs;
    std::cerr << "[" << opt_.label << "] " << shape.name << " @ " << *run.offered
              << " deliveries/s (" << run.pub_rate << " pubs/s)\n";
    latency_.reserve(static_cast<std::size_t>(*run.offered * opt_.window_s * opt_.windows * 1.1));
    pacing_ = true;
    net::co_spawn(ioc_, pace(run.pub_rate), net::detached);
    return;
  }
  // Each room keeps `per_room` messages in flight; a publisher sends its next one when
  // every member of its room has its previous one.
  run.per_room = std::clamp(static_cast<int>(std::lround(static_cast<double>(opt_.inflight) /
                                                         (shape.rooms * shape.subs))),
                            1, shape.subs);
  std::cerr << "[" << opt_.label << "] " << shape.name << " closed loop, " << run.per_room
            << " messages in flight per room\n";
  closed_running_ = true;
  for (Room& room : rooms_) {
    for (int k = 0; k < run.per_room && k < static_cast<int>(room.members.size()); ++k) {
      publish_from(*room.members[k]);
    }
  }
  net::co_spawn(ioc_, closed_loop_watchdog(), net::detached);
}

net::awaitable<void> Runner::measure(LoadRun& run) {
  while (static_cast<int>(run.windows.size()) < opt_.windows) {
    Window win;
    const std::size_t samples_before = latency_.count();
    const std::size_t same_before = latency_same_.count(), cross_before = latency_cross_.count();
    const auto t0 = Clock::now();
    const std::uint64_t d0 = delivered_, p0 = pubs_sent_;
    std::vector<double> each0, each1;
    auto r0 = redis_ ? redis_->sample() : std::nullopt;
    auto s0 = servers_cpu(&each0);
    auto g0 = process_cpu_seconds(0);
    auto m0 = machine_idle();
    measuring_ = true;
    co_await sleep(opt_.window_s);
    measuring_ = false;
    auto s1 = servers_cpu(&each1);
    auto g1 = process_cpu_seconds(0);
    auto m1 = machine_idle();
    auto r1 = redis_ ? redis_->sample() : std::nullopt;
    if (r0 && r1) {
      for (auto& [cmd, calls] : r1->calls) {
        auto before = r0->calls.find(cmd);
        std::uint64_t d = calls - (before == r0->calls.end() ? 0 : before->second);
        if (cmd != "info" && d > 0) win.redis_calls[cmd] = d;
      }
      const std::uint64_t info = r1->calls["info"] - r0->calls["info"];
      win.redis_commands = r1->total_commands - r0->total_commands -
                           std::min<std::uint64_t>(info, r1->total_commands - r0->total_commands);
    }
    if (each0.size() == each1.size()) {
      for (std::size_t i = 0; i < each0.size(); ++i)
        win.proc_cpu_s.push_back(each1[i] - each0[i]);
    }
    // Its latency samples: summarized in report(), not here, so that no sort runs
    // between two windows while the load goes on.
    win.samples_from = samples_before;
    win.samples_to = latency_.count();
    win.seconds = since(t0);
    win.deliveries = delivered_ - d0;
    win.pubs = pubs_sent_ - p0;
    if (opt_.server_pid && s0 && s1) win.server_cpu_s = *s1 - *s0;
    if (g0 && g1) win.gen_cpu_s = *g1 - *g0;
    if (m0 && m1 && win.server_cpu_s) {
      const double busy = m1->cores * win.seconds - (m1->idle_s - m0->idle_s);
      win.other_cpu_s = std::max(0.0, busy - *win.server_cpu_s - win.gen_cpu_s);
    }
    // On a shared machine another process (a build) can take a core mid-window: measure
    // that window again, a bounded number of times, rather than report its figures.
    if (win.other_cpu_s && *win.other_cpu_s / win.seconds * 100.0 > opt_.noise_pct &&
        run.discarded < opt_.retries) {
      ++run.discarded;
      latency_.truncate(samples_before);
      latency_same_.truncate(same_before);
      latency_cross_.truncate(cross_before);
      continue;
    }
    run.windows.push_back(win);
  }
  run.server_rss_kb = 0;
  for (pid_t pid :
       opt_.server_pids.empty() ? std::vector<pid_t>{opt_.server_pid} : opt_.server_pids) {
    auto kb = process_rss_kb(pid);
    if (!kb) {
      run.server_rss_kb.reset();
      break;
    }
    *run.server_rss_kb += *kb;
  }
}

void Runner::report(const LoadRun& run) {
  const Shape& shape = *run.shape;
  std::uint64_t gaps = 0, dups = 0;
  for (auto& c : conns_) {
    gaps += c->gaps();
    dups += c->dups();
  }
  std::vector<double> dps, cpu_us, gen_us, server_pct, gen_pct, other_pct, pubs_ps;
  std::uint64_t deliveries = 0;
  for (const Window& w : run.windows) {
    deliveries += w.deliveries;
    dps.push_back(w.deliveries / w.seconds);
    pubs_ps.push_back(w.pubs / w.seconds);
    gen_pct.push_back(w.gen_cpu_s / w.seconds * 100.0);
    if (w.deliveries > 0) gen_us.push_back(w.gen_cpu_s * 1e6 / w.deliveries);
    if (w.other_cpu_s) other_pct.push_back(*w.other_cpu_s / w.seconds * 100.0);
    if (w.server_cpu_s) {
      server_pct.push_back(*w.server_cpu_s / w.seconds * 100.0);
      if (w.deliveries > 0) cpu_us.push_back(*w.server_cpu_s * 1e6 / w.deliveries);
    }
  }
  auto median_of = [](const std::vector<double>& v) {
    return v.empty() ? std::nullopt : std::optional<double>(median(v));
  };
  std::vector<Latency::Summary> window_latency;
  for (const Window& w : run.windows)
    window_latency.push_back(latency_.summarize_range(w.samples_from, w.samples_to));
  Latency::Summary lat = latency_.summarize();
  // Every window as measured, not only the medians.
  std::string windows_json = "[";
  std::vector<double> redis_per_pub;
  std::map<std::string, std::uint64_t> redis_calls;
  std::uint64_t redis_pubs = 0;
  for (std::size_t wi = 0; wi < run.windows.size(); ++wi) {
    const Window& w = run.windows[wi];
    const Latency::Summary& wl = window_latency[wi];
    Json wj;
    wj.add("seconds", w.seconds, 3)
        .add("delivered_dps", w.deliveries / w.seconds, 0)
        .add("pubs_per_s", w.pubs / w.seconds, 1)
        .add("server_cpu_us_per_delivery",
             w.server_cpu_s && w.deliveries
                 ? std::optional<double>(*w.server_cpu_s * 1e6 / w.deliveries)
                 : std::nullopt,
             3)
        .add("server_cpu_pct",
             w.server_cpu_s ? std::optional<double>(*w.server_cpu_s / w.seconds * 100.0)
                            : std::nullopt,
             1)
        .add("generator_cpu_pct", w.gen_cpu_s / w.seconds * 100.0, 1)
        .add("other_cpu_pct",
             w.other_cpu_s ? std::optional<double>(*w.other_cpu_s / w.seconds * 100.0)
                           : std::nullopt,
             1)
        .add("p50_us", wl.p50_us, 1)
        .add("p99_us", wl.p99_us, 1)
        .add("max_us", wl.max_us, 1);
    if (!w.proc_cpu_s.empty()) {
      Json procs;
      for (std::size_t i = 0; i < w.proc_cpu_s.size(); ++i) {
        std::string name =
            i < opt_.pid_names.size() ? opt_.pid_names[i] : "pid" + std::to_string(i);
        procs.add(name, w.proc_cpu_s[i] / w.seconds * 100.0, 1);
      }
      wj.add("cpu_pct_by_process", procs);
    }
    if (w.redis_commands) {
      const double per = w.pubs ? static_cast<double>(*w.redis_commands) / w.pubs : 0.0;
      wj.add("redis_commands", *w.redis_commands).add("redis_commands_per_pub", per, 2);
      redis_per_pub.push_back(per);
      redis_pubs += w.pubs;
      for (auto& [cmd, n] : w.redis_calls)
        redis_calls[cmd] += n;
    }
    if (windows_json.size() > 1) windows_json += ",";
    windows_json += wj.str();
  }
  windows_json += "]";

  Point point;
  point.shape = shape.name;
  point.offered = run.offered.value_or(0);
  point.delivered_dps = median(dps);
  point.cpu_us = median_of(cpu_us);
  point.server_cpu_pct = median_of(server_pct);
  point.gen_cpu_pct = median(gen_pct);
  point.other_cpu_pct = median_of(other_pct);
  point.p50 = lat.p50_us;
  point.p99 = lat.p99_us;
  point.p999 = lat.p999_us;
  points_.push_back(point);

  Json latency;
  latency.add("p50", lat.p50_us, 1)
      .add("p90", lat.p90_us, 1)
      .add("p99", lat.p99_us, 1)
      .add("p999", lat.p999_us, 1)
      .add("max", lat.max_us, 1)
      .add("mean", lat.mean_us, 1)
      .add("samples", static_cast<std::uint64_t>(lat.samples));
  Json errors;
  for (auto& [code, count] : errors_)
    errors.add(code, count);

  Json j;
  j.add("type", "point")
      .add("server", opt_.label)
      .add("scenario", shape.name)
      .add("rooms", shape.rooms)
      .add("subs_per_room", shape.subs)
      .add("mode", run.offered ? "open" : "closed");
  add_tags(j);
  if (run.offered) {
    j.add("offered_dps", *run.offered, 0).add("offered_pubs_per_s", run.pub_rate, 1);
  } else {
    j.add_null("offered_dps").add("inflight_per_room", run.per_room);
  }
  j.add("delivered_dps", point.delivered_dps, 0)
      .add("pubs_per_s", median(pubs_ps), 1)
      .add("deliveries", deliveries)
      .add("latency_us", latency)
      .add("server_cpu_us_per_delivery", point.cpu_us, 3)
      .add("server_cpu_pct", point.server_cpu_pct, 1)
      .add("generator_cpu_pct", point.gen_cpu_pct, 1)
      .add("generator_cpu_us_per_delivery", median_of(gen_us), 3)
      .add("other_cpu_pct", point.other_cpu_pct, 1)
      // The generator used (nearly) all of its core: a closed-loop maximum is then its own.
      .add("generator_bound", point.gen_cpu_pct > 90.0)
      .add("server_rss_kb",
           run.server_rss_kb ? std::optional<double>(*run.server_rss_kb) : std::nullopt, 0)
      .add("server_rss_before_kb", as_double(run.rss_before_kb), 0)
      .add("server_rss_peak_kb", as_double(run.rss_peak_kb), 0)
      .add("server_rss_after_kb", as_double(run.rss_after_kb), 0)
      .add("discarded_windows", run.discarded)
      .add("drained", run.drained)
      .add("undelivered", expected_ > delivered_ ? expected_ - delivered_ : std::uint64_t{0})
      .add("unacked",
           pubs_sent_ > acked_ + pub_errors_ ? pubs_sent_ - acked_ - pub_errors_ : std::uint64_t{0})
      .add("gaps", gaps - run.gaps_before)
      .add("dups", dups - run.dups_before)
      .add("disconnects", unexpected_closes_ - run.closes_before)
      .add("errors", errors);
  if (!redis_per_pub.empty()) {
    Json per_cmd;
    for (auto& [cmd, n] : redis_calls)
      per_cmd.add(cmd, redis_pubs ? static_cast<double>(n) / redis_pubs : 0.0, 3);
    j.add("redis_commands_per_pub", median(redis_per_pub), 2).add("redis_calls_per_pub", per_cmd);
    if (redis_background_per_s_) {
      // Net of the background rate measured before the loads, spread over the windows.
      std::vector<double> net;
      for (const Window& w : run.windows) {
        if (w.redis_commands && w.pubs) {
          net.push_back(std::max(0.0, *w.redis_commands - *redis_background_per_s_ * w.seconds) /
                        static_cast<double>(w.pubs));
        }
      }
      j.add("redis_background_commands_per_s", *redis_background_per_s_, 1)
          .add("redis_commands_per_pub_net", median(net), 2);
    }
  }
  if (servers_.size() > 1) {
    auto part = [](Latency& l) {
      Latency::Summary x = l.summarize();
      Json o;
      o.add("p50", x.p50_us, 1)
          .add("p99", x.p99_us, 1)
          .add("samples", static_cast<std::uint64_t>(x.samples));
      return o;
    };
    j.add("latency_same_node_us", part(latency_same_))
        .add("latency_cross_node_us", part(latency_cross_));
  }
  if (!run.offered) j.add("stalls", stalls_);
  if (short_payloads_) j.add("short_payloads", short_payloads_);
  std::string line = j.str();
  line.pop_back();
  std::cout << line << ",\"windows\":" << windows_json << "}" << std::endl;
  // The run in one line for people: latency, CPU and memory.
  auto mb = [](const std::optional<long>& kb) {
    return kb ? fixed(static_cast<double>(*kb) / 1024.0, 1) : std::string("-");
  };
  std::cerr << "[" << opt_.label << "] " << shape.name << "@"
            << (run.offered ? std::to_string(static_cast<long>(*run.offered)) : "max")
            << (opt_.round > 0 ? " round " + std::to_string(opt_.round) : "") << ": "
            << fixed(point.delivered_dps, 0) << " deliveries/s, p50/p99/p99.9 "
            << fixed(lat.p50_us / 1000, 2) << "/" << fixed(lat.p99_us / 1000, 2) << "/"
            << fixed(lat.p999_us / 1000, 2) << " ms, "
            << (point.cpu_us ? fixed(*point.cpu_us, 2) : std::string("-"))
            << " us CPU/delivery, RSS before/peak/after " << mb(run.rss_before_kb) << "/"
            << mb(run.rss_peak_kb) << "/" << mb(run.rss_after_kb) << " MB\n";
}

// ---- summary ---------------------------------------------------------------------------

void Runner::print_summary() {
  Json headline;
  Json points;
  Json max;
  for (const Point& p : points_) {
    std::string key =
        p.shape + "@" + (p.offered > 0 ? std::to_string(static_cast<long>(p.offered)) : "max");
    Json v;
    v.add("delivered_dps", p.delivered_dps, 0)
        .add("cpu_us_per_delivery", p.cpu_us, 3)

        .add("p50_us", p.p50, 1)
        .add("p99_us", p.p99, 1)
        .add("p999_us", p.p999, 1)
        .add("server_cpu_pct", p.server_cpu_pct, 1)
        .add("generator_cpu_pct", p.gen_cpu_pct, 1)
        .add("other_cpu_pct", p.other_cpu_pct, 1);
    points.add(key, v);
    if (p.offered == 0) max.add(p.shape, p.delivered_dps, 0);
    if (p.shape == "1x200" && p.offered == 50000) headline = v;
  }
  Json j;
  j.add("type", "summary")
      .add("server", opt_.label)
      .add("headline_1x200_at_50k", headline)
      .add("idle_bytes_per_connection", idle_bytes_per_conn_, 0)
      .add("max_dps", max)
      .add("points", points);
  print(j);
}

// ---- connection events -----------------------------------------------------------------

void Runner::on_ready(Connection& c) {
  if (fault_ && c.index() >= base_ && c.index() - base_ < fault_slots_.size() &&
      fault_slots_[c.index() - base_].reconnecting) {
    FaultSlot& f = fault_slots_[c.index() - base_];
    c.resubscribe(rooms_[c.room_index].name, f.since_seq, f.epoch);
    return;
  }
  --opening_;
  ++ready_;
  start_more();
}

void Runner::on_subscribed(Connection& c) {
  if (fault_ && fault_slots_[c.index() - base_].reconnecting) {
    // Recovered (its reply's msgs follow as pushes): retry what its old connection had
    // published without an ack, with the same keys.
    FaultSlot& f = fault_slots_[c.index() - base_];
    f.reconnecting = false;
    f.attempts = 0;
    ++(c.recovered() ? f.recovered : f.not_recovered);
    last_resub_ns_ = now_ns();
    auto pending = std::move(f.pending);
    f.pending.clear();
    for (auto& [id, p] : pending) {
      f.pending[c.publish(p.payload.data(), p.payload.size(), p.key)] = std::move(p);
      ++retried_;
    }
    return;
  }
  ++subscribed_;
}

void Runner::on_ack(Connection& c, std::uint64_t id, std::uint64_t seq) {
  if (fault_) {
    FaultSlot& f = fault_slots_[c.index() - base_];
    if (f.pending.erase(id) == 0) return; // an ack of a request of an earlier connection
    if (seq >= acked_seqs_.size()) acked_seqs_.resize(seq + 1024, 0);
    acked_seqs_[seq] = 1;
    top_seq_ = std::max(top_seq_, seq);
  }
  ++acked_;
  expected_ += rooms_.empty() ? 0 : rooms_[c.room_index].members.size();
}

void Runner::on_msg(Connection& c, std::uint64_t seq, const std::uint8_t* data, std::size_t n) {
  ++delivered_;
  if (fault_ && seq > 0) {
    FaultSlot& f = fault_slots_[c.index() - base_];
    if (seq >= f.seen.size()) f.seen.resize(seq + 1024, 0);
    if (f.seen[seq] < 255) ++f.seen[seq];
    if (f.seen[seq] == 1 && seq > f.first_seq) ++f.distinct;
    top_seq_ = std::max(top_seq_, seq);
    if (seq >= seq_seen_any_.size()) seq_seen_any_.resize(seq + 1024, 0);
    if (!seq_seen_any_[seq] && n >= 16) {
      // A seq's first receipt by anyone: one publish (sender slot, counter) must have one
      // seq, however often it was retried.
      seq_seen_any_[seq] = 1;
      std::uint32_t slot, counter;
      std::memcpy(&slot, data + 8, 4);
      std::memcpy(&counter, data + 12, 4);
      auto [it, fresh] =
          payload_seq_.try_emplace((static_cast<std::uint64_t>(slot) << 32) | counter, seq);
      if (!fresh && it->second != seq) ++double_published_;
    }
  }
  if (n < 16) {
    ++short_payloads_;
    return;
  }
  std::int64_t sent;
  std::memcpy(&sent, data, 8);
  if (measuring_) {
    const std::int64_t ns = now_ns() - sent;
    latency_.record(ns);
    if (servers_.size() > 1) {
      // Several nodes: also apart, by whether the publisher (its slot, in the payload) is
      // on this subscriber's node.
      std::uint32_t slot;
      std::memcpy(&slot, data + 8, 4);
      if (slot < conns_.size())
        (conns_[slot]->node == c.node ? latency_same_ : latency_cross_).record(ns);
    }
  }
  if (closed_) {
    std::uint32_t slot, counter;
    std::memcpy(&slot, data + 8, 4);
    std::memcpy(&counter, data + 12, 4);
    if (slot >= slots_.size()) return;
    Slot& s = slots_[slot];
    Connection& publisher = *conns_[slot];
    if (s.busy && s.counter == counter &&
        ++s.received >= rooms_[publisher.room_index].members.size()) {
      s.busy = false;
      if (closed_running_ && publisher.state() == Connection::State::Subscribed) {
        publish_from(publisher);
      }
    }
  }
}

void Runner::on_error(Connection& c, std::string_view code) {
  ++errors_[std::string(code)];
  // A failed request of a subscribed connection is a failed publish: it gets no ack.
  if (c.state() == Connection::State::Subscribed && code != "unparsable" && code != "disconnect") {
    ++pub_errors_;
  }
}

void Runner::on_closed(Connection& c, Connection::State was, std::string_view why) {
  if (fault_ && c.index() >= base_ && c.index() - base_ < fault_slots_.size() &&
      conns_[c.index() - base_].get() == &c && was != Connection::State::Closing) {
    // The fault round: any connection that dies (its node was killed) reconnects to
    // another node and recovers.
    const std::uint32_t slot = c.index() - base_;
    if (!fault_slots_[slot].reconnecting) {
      ++unexpected_closes_;
      ++errors_["closed while " + std::string(state_name(was)) + ": " + std::string(why)];
    }
    fault_slots_[slot].reconnecting = false; // a failed attempt: try the next node
    fault_reconnect(slot);
    return;
  }
  switch (was) {
  case Connection::State::Connecting:
  case Connection::State::Joining:
    --opening_;
    ++setup_failed_;
    last_setup_error_ = std::string(state_name(was)) + ": " + std::string(why);
    start_more();
    break;
  case Connection::State::Subscribing:
    ++sub_failed_;
    last_setup_error_ = std::string(state_name(was)) + ": " + std::string(why);
    break;
  case Connection::State::Closing:
  case Connection::State::Closed:
    break;
  default:
    ++unexpected_closes_;
    ++errors_["closed while " + std::string(state_name(was)) + ": " + std::string(why)];
  }
}

} // namespace bench
