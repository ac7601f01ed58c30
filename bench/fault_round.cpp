// The fault round of bench/cluster/run.sh: one room's subscribers spread over the nodes of a
// Troupe cluster, publishing with idempotency keys; mid-run one node is killed with SIGKILL.
// Its clients reconnect to the next node and resubscribe with `since` (the protocol's
// recovery), and publish again, with the same key, what their old connection had sent
// without an ack. Afterwards every subscriber's receipts are checked seq by seq.
#include "proc_stats.hpp"
#include "runner.hpp"

#include <csignal>
#include <cstring>
#include <iostream>

namespace bench {

void Runner::fault_publish(Connection& c) {
  const std::uint32_t slot = c.index() - base_;
  Slot& s = slots_[slot];
  ++s.counter;
  const std::int64_t t = now_ns();
  std::vector<std::uint8_t> payload = payload_;
  std::memcpy(payload.data(), &t, 8);
  std::memcpy(payload.data() + 8, &slot, 4);
  std::memcpy(payload.data() + 12, &s.counter, 4);
  std::string key = "k" + run_tag_ + "-" + std::to_string(slot) + "-" + std::to_string(s.counter);
  const std::uint64_t id = c.publish(payload.data(), payload.size(), key);
  fault_slots_[slot].pending[id] = Pending{std::move(key), std::move(payload)};
  ++pubs_sent_;
}

void Runner::on_request_error(Connection& c, std::uint64_t id, std::string_view code) {
  // A publish refused while the cluster gets over the kill (`unavailable`: it may or may
  // not have taken effect) is retried with the same key, as the contract says is safe.
  if (!fault_ || c.index() < base_ || c.index() - base_ >= fault_slots_.size()) return;
  const std::uint32_t slot = c.index() - base_;
  FaultSlot& f = fault_slots_[slot];
  auto it = f.pending.find(id);
  if (it == f.pending.end() || conns_[slot].get() != &c) return;
  ++retried_on_error_;
  auto retry = std::make_shared<Pending>(std::move(it->second));
  f.pending.erase(it);
  auto timer = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(200));
  ++held_retries_; // counted as pending until it is sent again
  timer->async_wait([this, timer, retry, slot](boost::system::error_code ec) {
    --held_retries_;
    if (ec) return;
    FaultSlot& f = fault_slots_[slot];
    Connection& now = *conns_[slot];
    if (now.state() == Connection::State::Subscribed) {
      f.pending[now.publish(retry->payload.data(), retry->payload.size(), retry->key)] = *retry;
    } else {
      // Reconnecting: it goes out with the others once resubscribed (a fresh id that no
      // reply can match meanwhile).
      f.pending[~std::uint64_t{0} - (++orphan_ids_)] = *retry;
    }
    ++retried_;
  });
}

void Runner::fault_reconnect(std::uint32_t slot) {
  FaultSlot& f = fault_slots_[slot];
  if (f.reconnecting) return;
  std::shared_ptr<Connection> old = conns_[slot];
  if (f.attempts == 0) {
    // The first attempt after its connection died: recover from what it had.
    f.since_seq = old->last_seq();
    f.epoch = old->epoch();
    f.down_ns = now_ns();
    ++f.reconnects;
  }
  if (++f.attempts > 50) {
    ++reconnect_failures_;
    return;
  }
  f.reconnecting = true;
  // The next node that is not the killed one.
  std::uint32_t node = old->node;
  for (std::size_t k = 0; k < servers_.size(); ++k) {
    node = static_cast<std::uint32_t>((node + 1) % servers_.size());
    if (static_cast<int>(node) != killed_node_) break;
  }
  auto start = [this, slot, node, old]() {
    auto c = std::make_shared<Connection>(ioc_, dialect_, *this, old->index());
    c->node = node;
    c->room_index = old->room_index;
    for (auto& m : rooms_[c->room_index].members) {
      if (m == old.get()) m = c.get();
    }
    conns_[slot] = c;
    c->start(servers_[node]);
  };
  if (f.attempts == 1) {
    start();
  } else {
    // Back off a little between attempts (a node may refuse while it is overloaded).
    auto timer = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(100));
    timer->async_wait([timer, start](boost::system::error_code ec) {
      if (!ec) start();
    });
  }
}

net::awaitable<void> Runner::fault_scenario() {
  const std::size_t n = static_cast<std::size_t>(opt_.fault_subs);
  killed_node_ = opt_.fault_kill < 0 ? static_cast<int>(servers_.size()) - 1 : opt_.fault_kill;
  const bool drop = opt_.fault_mode == "drop";
  if (killed_node_ >= static_cast<int>(servers_.size()) ||
      (!drop && killed_node_ >= static_cast<int>(opt_.server_pids.size()))) {
    std::cerr << "--fault-kill " << killed_node_ << ": no such node in --port / --server-pid\n";
    exit_code_ = 1;
    co_return;
  }
  const pid_t victim = drop ? 0 : opt_.server_pids[static_cast<std::size_t>(killed_node_)];
  std::cerr << "[" << opt_.label << "] fault round: connecting " << n << " over " << servers_.size()
            << " nodes\n";
  base_ = next_index_;
  ready_ = setup_failed_ = subscribed_ = sub_failed_ = 0;
  unexpected_closes_ = 0;
  std::size_t opened = co_await open(n);
  rooms_.assign(1, Room{});
  rooms_[0].name = "bench-" + run_tag_ + "-fault";
  auto fail = [&](const std::string& what) {
    Json j;
    j.add("type", "error").add("server", opt_.label).add("scenario", "fault").add("error", what);
    print(j);
    exit_code_ = 1;
  };
  if (opened < n) {
    fail("connected " + std::to_string(opened) + " of " + std::to_string(n) + ": " +
         last_setup_error_);
    co_await close_all();
    co_return;
  }
  slots_.assign(conns_.size(), Slot{});
  fault_slots_.assign(conns_.size(), FaultSlot{});
  for (auto& c : conns_) {
    c->room_index = 0;
    rooms_[0].members.push_back(c.get());
    c->subscribe(rooms_[0].name);
  }
  co_await wait_until([&] { return subscribed_ + sub_failed_ >= n; }, opt_.setup_timeout_s);
  if (subscribed_ < n) {
    fail("subscribed " + std::to_string(subscribed_) + " of " + std::to_string(n));
    co_await close_all();
    co_return;
  }
  for (std::size_t i = 0; i < conns_.size(); ++i)
    fault_slots_[i].first_seq = conns_[i]->last_seq();

  delivered_ = pubs_sent_ = acked_ = expected_ = pub_errors_ = 0;
  retried_ = retried_on_error_ = 0;
  errors_.clear();
  latency_.clear();
  std::uint64_t gaps0 = 0, dups0 = 0;
  fault_ = true;
  measuring_ = true;
  const double pub_rate = opt_.fault_load / static_cast<double>(n);
  std::cerr << "[" << opt_.label << "] fault round @ " << opt_.fault_load << " deliveries/s ("
            << pub_rate << " pubs/s), node " << killed_node_;
  if (drop)
    std::cerr << ": its clients dropped after " << opt_.fault_kill_at << " s\n";
  else
    std::cerr << " (pid " << victim << ") killed after " << opt_.fault_kill_at << " s\n";
  const auto t0 = Clock::now();
  pacing_ = true;
  net::co_spawn(ioc_, pace(pub_rate), net::detached);
  co_await sleep(opt_.fault_kill_at);
  std::size_t on_victim = 0;
  for (auto& c : conns_)
    on_victim += static_cast<int>(c->node) == killed_node_;
  bool killed = false;
  // Each client of the victim publishes once, 2 ms before the fault: pubs that the node
  // has read, some already run in Redis, whose acks it will never send, so the retry with
  // the same key on another node is exercised every time, not only when the pacing
  // happens to have one in flight.
  std::vector<std::shared_ptr<Connection>> victims;
  for (auto& c : conns_) {
    if (static_cast<int>(c->node) == killed_node_) victims.push_back(c);
  }
  for (auto& c : victims) {
    if (c->state() == Connection::State::Subscribed) fault_publish(*c);
  }
  co_await sleep(0.002);
  kill_ns_ = now_ns();
  if (drop) {
    for (auto& c : victims)
      c->abort();
    killed = true;
    std::cerr << "[" << opt_.label << "] dropped the " << on_victim << " clients of node "
              << killed_node_ << "\n";
  } else {
    killed = ::kill(victim, SIGKILL) == 0;
    std::cerr << "[" << opt_.label << "] SIGKILL to pid " << victim << (killed ? "" : " FAILED")
              << " (" << on_victim << " clients on it)\n";
  }
  co_await sleep(std::max(0.0, opt_.fault_seconds - opt_.fault_kill_at));
  pacing_ = false;
  const double publish_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // Let every retry be acknowledged and every subscriber receive everything up to the
  // newest seq (bounded).
  auto pending_pubs = [&] {
    std::size_t p = 0;
    for (auto& f : fault_slots_)
      p += f.pending.size();
    return p + held_retries_;
  };
  auto complete = [&] {
    if (pacer_running_ || pending_pubs() > 0) return false;
    for (auto& f : fault_slots_) {
      if (f.reconnecting || f.distinct < top_seq_ - std::min(top_seq_, f.first_seq)) return false;
    }
    return true;
  };
  const bool drained = co_await wait_until(complete, opt_.fault_drain_s);
  // A last short wait for anything still in flight (a duplicate would show up here).
  co_await sleep(0.5);
  measuring_ = false;
  fault_ = false;

  std::uint64_t lost = 0, duplicated = 0, acked_lost = 0, acked_seqs = 0, lost_subs = 0;
  int reconnected = 0, recovered = 0, not_recovered = 0;
  for (std::uint64_t s = 1; s <= top_seq_ && s < acked_seqs_.size(); ++s)
    acked_seqs += acked_seqs_[s];
  for (std::size_t i = 0; i < fault_slots_.size(); ++i) {
    FaultSlot& f = fault_slots_[i];
    f.seen.resize(std::max<std::size_t>(f.seen.size(), top_seq_ + 1), 0);
    std::uint64_t mine = 0;
    for (std::uint64_t s = f.first_seq + 1; s <= top_seq_; ++s) {
      if (f.seen[s] == 0) {
        ++mine;
        if (s < acked_seqs_.size() && acked_seqs_[s]) ++acked_lost;
      } else if (f.seen[s] > 1) {
        duplicated += f.seen[s] - 1u;
      }
    }
    lost += mine;
    lost_subs += mine > 0;
    reconnected += f.reconnects > 0;
    recovered += f.recovered;
    not_recovered += f.not_recovered;
  }
  std::uint64_t gaps = 0, dups = 0;
  for (auto& c : conns_) {
    gaps += c->gaps();
    dups += c->dups();
  }
  Latency::Summary lat = latency_.summarize();
  Json latency;
  latency.add("p50", lat.p50_us, 1)
      .add("p90", lat.p90_us, 1)
      .add("p99", lat.p99_us, 1)
      .add("p999", lat.p999_us, 1)
      .add("max", lat.max_us, 1)
      .add("samples", static_cast<std::uint64_t>(lat.samples));
  Json errors;
  for (auto& [code, count] : errors_)
    errors.add(code, count);
  Json j;
  j.add("type", "fault")
      .add("server", opt_.label)
      .add("subscribers", static_cast<std::uint64_t>(n))
      .add("nodes", static_cast<std::uint64_t>(servers_.size()))
      .add("fault_mode", opt_.fault_mode)
      .add("killed_node", killed_node_)
      .add("killed_pid", static_cast<std::int64_t>(victim))
      .add("kill_sent", killed)
      .add("clients_on_killed_node", static_cast<std::uint64_t>(on_victim))
      .add("offered_dps", opt_.fault_load, 0)
      .add("pubs_per_s", pub_rate, 1)
      .add("publish_s", publish_s, 2)
      .add("published", pubs_sent_) // retries not included
      .add("retried", retried_)
      .add("retried_after_error", retried_on_error_)
      .add("acked_seqs", acked_seqs)
      .add("unacked", static_cast<std::uint64_t>(pending_pubs()))
      .add("top_seq", top_seq_)
      .add("lost", lost)
      .add("subscribers_with_losses", lost_subs)
      .add("duplicated", duplicated)
      .add("acked_lost", acked_lost)
      .add("double_published", double_published_)
      .add("delivered", delivered_)
      .add("reconnected_clients", reconnected)
      .add("resubscribed_recovered", recovered)
      .add("resubscribed_not_recovered", not_recovered)
      .add("reconnect_failures", reconnect_failures_)
      .add("recovery_ms",
           last_resub_ns_ > kill_ns_ ? std::optional<double>((last_resub_ns_ - kill_ns_) / 1e6)
                                     : std::nullopt,
           1)
      .add("drained", drained)
      .add("gaps", gaps - gaps0)
      .add("dups", dups - dups0)
      .add("disconnects", unexpected_closes_)
      .add("latency_us", latency)
      .add("errors", errors)
      .add("ok", drained && lost == 0 && duplicated == 0 && acked_lost == 0 &&
                     double_published_ == 0 && pending_pubs() == 0);
  print(j);
  if (!(lost == 0 && duplicated == 0 && acked_lost == 0)) exit_code_ = 1;
  co_await close_all();
}

} // namespace bench
