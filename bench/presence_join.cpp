// Presence join: N connections subscribe to one fresh room, spread evenly over a time or
// all at once, and each member rebuilds the room's presence from its `subscribed` members
// and the pdiffs it receives, as a client does. Measured: the time until every view holds
// exactly the N members, what each member received meanwhile, and the engine's CPU and
// peak RSS. See bench/README.md.
//
// While the join runs, the generator only records each frame with its arrival time and
// counts entries (enough to know when it is over): rebuilding 2,000 views entry by entry
// as frames arrive took most of its core and stretched a burst join by about a third. The
// views are rebuilt and checked from the recording afterwards, with the arrival times.
#include "proc_stats.hpp"
#include "runner.hpp"
#include "troupe_dialect.hpp"

#include <algorithm>
#include <cstring>
#include <iostream>

namespace bench {
namespace {

/// After the join, and again after the members leave, how long the engine gets before its
/// RSS is read again.
constexpr double leave_settle_s = 5.0;

template <class T>
T rank(std::vector<T>& sorted, double p) { // nearest rank
  if (sorted.empty()) return T{};
  auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size()) + 0.999999);
  return sorted[std::clamp<std::size_t>(i, 1, sorted.size()) - 1];
}

Json spread(std::vector<std::uint64_t> v) {
  std::sort(v.begin(), v.end());
  std::uint64_t total = 0;
  for (auto x : v)
    total += x;
  Json j;
  j.add("min", v.empty() ? 0 : v.front())
      .add("median", rank(v, 0.5))
      .add("max", v.empty() ? 0 : v.back())
      .add("total", total);
  return j;
}

template <class T>
Json millis(std::vector<T> v, double per_ms) {
  std::sort(v.begin(), v.end());
  Json j;
  j.add("p50", rank(v, 0.5) / per_ms, 2)
      .add("p99", rank(v, 0.99) / per_ms, 2)
      .add("max", (v.empty() ? 0.0 : static_cast<double>(v.back())) / per_ms, 2)
      .add("samples", static_cast<std::uint64_t>(v.size()));
  return j;
}

} // namespace

void Runner::ClientIndex::reset(std::size_t n) {
  std::size_t size = 16;
  while (size < 2 * n)
    size *= 2;
  cells_.assign(size, Cell{});
  clients_.assign(n, {});
}

std::uint64_t Runner::ClientIndex::hash(std::string_view s) {
  // Ids are short ("node-1234"): mix them 8 bytes at a time, not byte by byte.
  std::uint64_t h = s.size() * 0x9e3779b97f4a7c15;
  for (std::size_t i = 0; i < s.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, std::min<std::size_t>(8, s.size() - i));
    h = (h ^ w) * 0xff51afd7ed558ccd;
    h ^= h >> 32;
  }
  return h;
}

bool Runner::ClientIndex::add(std::string_view client, std::uint32_t slot) {
  if (find(client)) return false;
  const std::uint64_t h = hash(client);
  const std::size_t mask = cells_.size() - 1;
  std::size_t i = h & mask;
  while (cells_[i].slot != kEmpty)
    i = (i + 1) & mask;
  cells_[i] = {h, slot};
  clients_[slot] = client;
  return true;
}

std::optional<std::uint32_t> Runner::ClientIndex::find(std::string_view client) const {
  const std::uint64_t h = hash(client);
  const std::size_t mask = cells_.size() - 1;
  for (std::size_t i = h & mask; cells_[i].slot != kEmpty; i = (i + 1) & mask) {
    if (cells_[i].hash == h && clients_[cells_[i].slot] == client) return cells_[i].slot;
  }
  return std::nullopt;
}

net::awaitable<void> Runner::sample_rss(const bool& running, long& peak_kb) {
  // VmHWM covers what 10 ms samples miss, when the kernel lets us reset it; both are kept.
  net::steady_timer t(ioc_);
  while (running) {
    if (auto kb = process_rss_kb(opt_.server_pid)) peak_kb = std::max(peak_kb, *kb);
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(net::use_awaitable);
  }
}

struct Runner::Replay final : DialectSink {
  Runner& runner;
  Viewer& viewer;
  std::int64_t now = 0;
  Replay(Runner& r, Viewer& v) : runner(r), viewer(v) {}
  void on_connected(std::string_view) override {}
  void on_reply(std::uint64_t, std::uint64_t) override {}
  void on_msg(std::uint64_t, const std::uint8_t*, std::size_t) override {}
  void on_error(std::uint64_t, std::string_view) override {}
  void on_server_disconnect(std::string_view) override {}
  void on_presence(std::uint64_t id, std::uint64_t pseq, const std::vector<PresenceEntry>& joins,
                   const std::vector<PresenceEntry>& leaves) override {
    runner.check_view(viewer, id, pseq, joins, leaves, now);
  }
};

net::awaitable<void> Runner::presence_scenario() {
  const auto n = static_cast<std::size_t>(opt_.presence_join);
  const std::string room = "presence-" + run_tag_ + "-" + std::to_string(n);
  auto give_up = [&](const std::string& why) {
    Json j;
    j.add("type", "error")
        .add("server", opt_.label)
        .add("scenario", "presence_join")
        .add("error", why);
    print(j);
    exit_code_ = 1;
  };

  // The engine's RSS before any of this run's connections: where it must come back to.
  const auto rss_idle_before = process_rss_kb(opt_.server_pid);
  std::cerr << "[" << opt_.label << "] presence join: connecting " << n << "\n";
  base_ = next_index_;
  ready_ = setup_failed_ = subscribed_ = sub_failed_ = 0;
  unexpected_closes_ = 0;
  const auto t_connect = Clock::now();
  const std::size_t opened = co_await open(n);
  const double connect_s = std::chrono::duration<double>(Clock::now() - t_connect).count();
  if (opened < n) {
    give_up("connected " + std::to_string(opened) + " of " + std::to_string(n) + ": " +
            last_setup_error_);
    co_await close_all();
    co_return;
  }
  client_slot_.reset(n);
  slot_user_.assign(n, {});
  for (std::uint32_t slot = 0; slot < n; ++slot) {
    const Connection& c = *conns_[slot];
    slot_user_[slot] = "u" + std::to_string(c.index()); // the user its connect named
    if (c.client().empty() || !client_slot_.add(c.client(), slot)) {
      give_up("connected replies without a unique client id");
      co_await close_all();
      co_return;
    }
  }
  viewers_.assign(n, Viewer{});
  for (std::uint32_t slot = 0; slot < n; ++slot) {
    viewers_[slot].log.reserve(64);
    conns_[slot]->record = &viewers_[slot].log; // viewers_ is not resized until the end
  }
  online_complete_ = 0;
  phase_over_ = false;
  errors_.clear();
  co_await sleep(1.0); // the connects' work is done before the CPU sample

  const pid_t pid = opt_.server_pid;
  const bool hwm_reset = pid && reset_peak_rss(pid);
  const auto rss_before = process_rss_kb(pid);
  bool sampling = pid != 0;
  long sampled_peak_kb = rss_before.value_or(0);
  if (sampling) net::co_spawn(ioc_, sample_rss(sampling, sampled_peak_kb), net::detached);
  const auto s0 = process_cpu_seconds(pid);
  const auto g0 = process_cpu_seconds(0);
  const auto m0 = machine_idle();
  const auto t0 = Clock::now();
  const std::int64_t start_ns = now_ns();

  std::cerr << "[" << opt_.label << "] presence join: " << n << " subs over " << opt_.join_spread_ms
            << " ms\n";
  net::steady_timer timer(ioc_);
  const double step_ns = opt_.join_spread_ms * 1e6 / static_cast<double>(n); // 0: burst
  for (std::size_t i = 0; i < n; ++i) {
    if (step_ns > 0) {
      const auto due = t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(i * step_ns));
      if (Clock::now() < due) {
        timer.expires_at(due);
        co_await timer.async_wait(net::use_awaitable);
      }
    }
    if (conns_[i]->state() != Connection::State::Ready) continue; // closed: a disconnect
    viewers_[i].sub_ns = now_ns();
    conns_[i]->subscribe(room);
  }
  const std::int64_t last_sub_ns = now_ns();

  co_await wait_until([&] { return phase_over_ || unexpected_closes_ > 0 || sub_failed_ > 0; },
                      opt_.presence_timeout_s);
  const std::int64_t online_end_ns = now_ns();
  const auto s1 = process_cpu_seconds(pid);
  const auto g1 = process_cpu_seconds(0);
  const auto m1 = machine_idle();
  const double cpu_wall_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Whatever arrives now is late: a correct engine has nothing more to say.
  co_await sleep(opt_.presence_quiet_s);
  sampling = false;
  const auto hwm_kb = process_peak_rss_kb(pid);
  const auto rss_after = process_rss_kb(pid);
  for (auto& c : conns_)
    c->record = nullptr;
  co_await sleep(0.05); // the sampler sees `sampling` false and ends

  // Rebuild and check every view from its recording.
  std::cerr << "[" << opt_.label << "] presence join: checking " << n << " views\n";
  TroupeDialect checker("troupe");
  checker.presence = PresenceParse::entries;
  seen_us_.clear();
  seen_us_.reserve(n * (n - 1) / 2);
  seen_by_all_ns_.assign(n, 0);
  for (Viewer& v : viewers_) {
    v.listed.assign(n, 0);
    Replay replay(*this, v);
    for (const RecordedFrame& f : v.log) {
      replay.now = f.t_ns;
      if (!checker.parse(f.bytes.data(), f.bytes.size(), false, replay)) ++v.malformed;
    }
    v.listed = {};
  }

  std::uint64_t complete_views = 0;
  std::int64_t end_ns = 0; // when the last view became complete
  for (const Viewer& v : viewers_) {
    if (v.complete) ++complete_views;
    end_ns = std::max(end_ns, v.complete_ns);
  }
  const bool completed = complete_views == n;
  if (!completed) end_ns = online_end_ns; // timed out or failed: figures up to then

  std::vector<std::uint64_t> frames, bytes, pdiffs, pdiff_entries, snapshot_entries;
  std::vector<double> reply_ns, seen_by_all;
  std::uint64_t holes = 0, repeats = 0, dups = 0, absent = 0, wrong_user = 0, malformed = 0;
  std::uint64_t early = 0, late_changes = 0, members_with_errors = 0;
  std::uint64_t no_reply = 0, final_pseq = 0;
  for (std::uint32_t slot = 0; slot < n; ++slot) {
    const Viewer& v = viewers_[slot];
    std::uint64_t b = 0;
    for (const RecordedFrame& f : v.log)
      b += f.bytes.size();
    frames.push_back(v.log.size());
    bytes.push_back(b);
    pdiffs.push_back(v.pdiffs);
    pdiff_entries.push_back(v.pdiff_entries);
    snapshot_entries.push_back(v.snapshot_entries);
    if (v.have_snapshot)
      reply_ns.push_back(static_cast<double>(v.reply_ns - v.sub_ns));
    else
      ++no_reply;
    seen_by_all.push_back(static_cast<double>(seen_by_all_ns_[slot]));
    holes += v.holes;
    repeats += v.repeats;
    dups += v.dup_entries;
    absent += v.absent_leaves;
    wrong_user += v.wrong_user;
    malformed += v.malformed;
    early += v.early;
    if (completed && v.last_change_ns > end_ns) ++late_changes;
    if (v.holes + v.repeats + v.dup_entries + v.absent_leaves + v.wrong_user + v.malformed +
        v.early) {
      ++members_with_errors;
    }
    final_pseq = std::max(final_pseq, v.pseq);
  }
  const bool correct = completed && members_with_errors == 0 && late_changes == 0 &&
                       unexpected_closes_ == 0 && errors_.empty();

  Json per_member;
  per_member.add("frames", spread(frames))
      .add("bytes", spread(bytes))
      .add("pdiffs", spread(pdiffs))
      .add("pdiff_entries", spread(pdiff_entries))
      .add("snapshot_entries", spread(snapshot_entries));
  Json errs;
  errs.add("pseq_holes", holes)
      .add("pseq_repeats", repeats)
      .add("duplicate_entries", dups)
      .add("absent_leaves", absent)
      .add("wrong_user", wrong_user)
      .add("malformed", malformed)
      .add("pdiff_before_subscribed", early)
      .add("no_subscribed_reply", no_reply)
      .add("wrong_final_views", static_cast<std::uint64_t>(n - complete_views))
      .add("members_with_errors", members_with_errors)
      .add("changes_after_complete", late_changes)
      .add("disconnects", unexpected_closes_)
      .add("sub_failed", static_cast<std::uint64_t>(sub_failed_));
  Json codes;
  for (auto& [code, count] : errors_)
    codes.add(code, count);
  errs.add("error_codes", codes);

  Json j;
  j.add("type", "presence")
      .add("server", opt_.label)
      .add("members", static_cast<std::uint64_t>(n))
      .add("spread_ms", opt_.join_spread_ms, 0)
      .add("correct", correct)
      .add("completed", completed)
      .add("complete_ms", (end_ns - start_ns) / 1e6, 2)
      .add("last_sub_ms", (last_sub_ns - start_ns) / 1e6, 2)
      .add("after_last_sub_ms", (end_ns - last_sub_ns) / 1e6, 2)
      .add("subscribed_reply_ms", millis(std::move(reply_ns), 1e6))
      .add("join_seen_ms", millis(std::move(seen_us_), 1e3))
      .add("join_seen_by_all_ms", millis(std::move(seen_by_all), 1e6))
      .add("final_pseq", final_pseq)
      .add("per_member", per_member)
      .add("connect_s", connect_s, 2);
  std::optional<double> server_cpu_s;
  if (pid && s0 && s1) server_cpu_s = *s1 - *s0;
  j.add("server_cpu_ms", server_cpu_s ? std::optional<double>(*server_cpu_s * 1e3) : std::nullopt,
        0)
      .add("server_cpu_pct",
           server_cpu_s ? std::optional<double>(*server_cpu_s / cpu_wall_s * 100) : std::nullopt,
           1);
  // A generator near its whole core stretches the completion time: then it is its own.
  const double gen_cpu_s = g0 && g1 ? *g1 - *g0 : 0.0;
  j.add("generator_cpu_ms", gen_cpu_s * 1e3, 0)
      .add("generator_cpu_pct", gen_cpu_s / cpu_wall_s * 100, 1)
      .add("generator_bound", gen_cpu_s / cpu_wall_s > 0.9);
  std::optional<double> other_pct;
  if (m0 && m1 && server_cpu_s) {
    const double busy = m1->cores * cpu_wall_s - (m1->idle_s - m0->idle_s);
    other_pct = std::max(0.0, busy - *server_cpu_s - gen_cpu_s) / cpu_wall_s * 100;
  }
  j.add("other_cpu_pct", other_pct, 1).add("noisy", other_pct && *other_pct > opt_.noise_pct);
  // Memory given back: every member leaves, and after a settle period the RSS should be
  // near where it was before the connections (the engine trims its allocator once quiet).
  // With the members still there, once the engine has been quiet a while: the join's
  // transient memory should be gone, only the members' state left.
  co_await sleep(leave_settle_s);
  const auto rss_joined_settled = process_rss_kb(pid);
  viewers_.clear();
  client_slot_.reset(0);
  seen_us_ = {};
  co_await close_all();
  co_await sleep(leave_settle_s);
  const auto rss_after_leave = process_rss_kb(pid);
  if (pid && rss_before) {
    long peak = sampled_peak_kb;
    if (hwm_reset && hwm_kb) peak = std::max(peak, *hwm_kb);
    j.add("server_rss_before_kb", static_cast<std::int64_t>(*rss_before))
        .add("server_rss_peak_kb", static_cast<std::int64_t>(peak))
        .add("server_rss_after_kb", static_cast<std::int64_t>(rss_after.value_or(0)))
        .add("peak_from", hwm_reset ? "VmHWM" : "10ms samples");
    if (rss_idle_before && rss_after_leave) {
      j.add("server_rss_before_connect_kb", static_cast<std::int64_t>(*rss_idle_before))
          .add("server_rss_joined_settled_kb",
               static_cast<std::int64_t>(rss_joined_settled.value_or(0)))
          .add("server_rss_after_leave_kb", static_cast<std::int64_t>(*rss_after_leave))
          .add("leave_settle_s", leave_settle_s, 1)
          .add("rss_after_leave_vs_before_pct",
               100.0 * static_cast<double>(*rss_after_leave - *rss_idle_before) /
                   static_cast<double>(*rss_idle_before),
               1);
    }
  }
  j.add("errors", errs);
  print(j);
  if (!correct) exit_code_ = 1;
  std::cerr << "[" << opt_.label << "] presence join: " << (correct ? "correct" : "NOT correct")
            << ", every view complete after " << (end_ns - start_ns) / 1e6 << " ms\n";
  if (rss_idle_before && rss_before && rss_after_leave)
    std::cerr << "[" << opt_.label << "] presence join: rss " << *rss_idle_before / 1024
              << " MiB before connecting, " << *rss_before / 1024 << " before the subs, "
              << sampled_peak_kb / 1024 << " at peak (sampled), " << rss_after.value_or(0) / 1024
              << " after the join, " << rss_joined_settled.value_or(0) / 1024 << " "
              << leave_settle_s << " s later, " << *rss_after_leave / 1024 << " " << leave_settle_s
              << " s after every member left\n";
}

void Runner::on_presence(Connection& c, std::uint64_t id, std::uint64_t pseq, std::size_t joins,
                         std::size_t leaves) {
  // Online: only whether the counts add up to every member; check_view judges the entries.
  const std::uint32_t slot = c.index() - base_;
  if (slot >= viewers_.size()) return;
  Viewer& v = viewers_[slot];
  if (id != 0) {
    v.online_pseq = pseq;
    v.online_size = static_cast<std::int64_t>(joins);
  } else if (v.online_size >= 0 && pseq > v.online_pseq) {
    v.online_pseq = pseq;
    v.online_size += static_cast<std::int64_t>(joins) - static_cast<std::int64_t>(leaves);
  }
  const bool complete = v.online_size == static_cast<std::int64_t>(viewers_.size());
  if (complete != v.online_complete) {
    v.online_complete = complete;
    complete ? ++online_complete_ : --online_complete_;
    if (online_complete_ == viewers_.size()) phase_over_ = true;
  }
}

void Runner::check_view(Viewer& v, std::uint64_t id, std::uint64_t pseq,
                        const std::vector<PresenceEntry>& joins,
                        const std::vector<PresenceEntry>& leaves, std::int64_t now) {
  if (id != 0) { // the `subscribed` reply: the list, its own arrival included, as of pseq
    if (v.have_snapshot) {
      ++v.malformed; // one sub, one reply
      return;
    }
    v.have_snapshot = true;
    v.reply_ns = now;
    v.pseq = pseq;
    v.snapshot_entries = joins.size();
    apply_presence(v, joins, leaves, now);
  } else {
    if (!v.have_snapshot) {
      ++v.early;
      return;
    }
    ++v.pdiffs;
    v.pdiff_entries += joins.size() + leaves.size();
    if (!joins.empty() || !leaves.empty()) v.last_change_ns = now;
    if (pseq <= v.pseq) {
      ++v.repeats; // already in its view: applying it again would corrupt it
      return;
    }
    // A client would refetch on a hole; applying it anyway lets the final check tell
    // whether the view still came out right.
    if (pseq > v.pseq + 1) v.holes += pseq - v.pseq - 1;
    v.pseq = pseq;
    apply_presence(v, joins, leaves, now);
  }
  const bool complete = v.size == viewers_.size() && v.foreign.empty();
  if (complete && !v.complete) v.complete_ns = now;
  v.complete = complete;
}

void Runner::list_entry(Viewer& v, std::uint32_t slot, bool listed, std::int64_t now) {
  v.listed[slot] = listed;
  if (!listed) {
    --v.size;
    return;
  }
  ++v.size;
  if (&v == &viewers_[slot]) return; // its own entry: that is the reply's latency
  const std::int64_t took = now - std::max(viewers_[slot].sub_ns, v.sub_ns);
  seen_us_.push_back(static_cast<std::int32_t>(took / 1000));
  seen_by_all_ns_[slot] = std::max(seen_by_all_ns_[slot], took);
}

void Runner::apply_presence(Viewer& v, const std::vector<PresenceEntry>& joins,
                            const std::vector<PresenceEntry>& leaves, std::int64_t now) {
  // Leaves first: a state change is the old entry leaving and the new one joining.
  for (const PresenceEntry& e : leaves) {
    if (e.client.empty()) {
      ++v.malformed;
      continue;
    }
    const auto slot = client_slot_.find(e.client);
    if (!slot) {
      if (!v.foreign.erase(std::string(e.client))) ++v.absent_leaves;
    } else if (!v.listed[*slot]) {
      ++v.absent_leaves;
    } else {
      list_entry(v, *slot, false, now);
    }
  }
  for (const PresenceEntry& e : joins) {
    if (e.client.empty()) {
      ++v.malformed;
      continue;
    }
    const auto slot = client_slot_.find(e.client);
    if (!slot) {
      if (!v.foreign.emplace(e.client).second) ++v.dup_entries;
    } else if (v.listed[*slot]) {
      ++v.dup_entries;
    } else {
      if (e.user != slot_user_[*slot]) ++v.wrong_user;
      list_entry(v, *slot, true, now);
    }
  }
}

} // namespace bench
