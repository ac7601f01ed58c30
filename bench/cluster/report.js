'use strict';
// Prints the cluster benchmark's results (bench/cluster/run.sh): a table of every measured
// window of every variant and load (stderr), the fault round, and one "cluster_summary"
// JSON line (stdout) with the medians side by side.
//
//   node bench/cluster/report.js RESULTS.jsonl
const fs = require('fs');

const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean);
const records = [];
for (const l of lines) {
  try { records.push(JSON.parse(l)); } catch { /* a partial line from a killed run */ }
}
const points = records.filter((r) => r.type === 'point');
const faults = records.filter((r) => r.type === 'fault');
const errors = records.filter((r) => r.type === 'error');

const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '-' : Number(v).toFixed(d));
const pad = (s, n) => String(s).padStart(n);
const out = [];
const row = (cols, widths) => out.push(cols.map((c, i) => pad(c, widths[i])).join(' '));

const widths = [17, 7, 6, 9, 8, 8, 9, 8, 8, 6, 6, 30];
out.push('');
out.push('Cluster fan-out: 1 room; every window as measured, then the median row (med). CPU is');
out.push('summed over every server process (engines / Socket.IO nodes and redis-server), in µs per');
out.push('delivery and % of one core; redis = Redis commands per published message (scripts\' inner');
out.push('calls included); lat = publish -> delivery in µs, across nodes; oth % = CPU the rest of');
out.push('the machine used meanwhile (~: over 10 % of a core, the window is disturbed).');
row(['variant', 'offered', 'win', 'deliv/s', 'pubs/s', 'cpu µs/d', 'cpu %', 'redis/pub',
     'lat p50', 'p99', 'oth %', 'cpu % by process'], widths);
for (const p of points) {
  const wins = p.windows || [];
  wins.forEach((w, i) => {
    const by = w.cpu_pct_by_process
      ? Object.entries(w.cpu_pct_by_process).map(([k, v]) => `${k} ${fmt(v, 0)}`).join(', ') : '';
    row([p.server, p.offered_dps, i + 1, fmt(w.delivered_dps, 0), fmt(w.pubs_per_s, 1),
         fmt(w.server_cpu_us_per_delivery, 2), fmt(w.server_cpu_pct, 1),
         fmt(w.redis_commands_per_pub, 2), fmt(w.p50_us, 0), fmt(w.p99_us, 0),
         fmt(w.other_cpu_pct, 1) + (w.other_cpu_pct > 10 ? '~' : ''), by], widths);
  });
  const flags = [];
  if (p.undelivered) flags.push(`undelivered ${p.undelivered}`);
  if (p.unacked) flags.push(`unacked ${p.unacked}`);
  if (p.gaps) flags.push(`gaps ${p.gaps}`);
  if (p.dups) flags.push(`dups ${p.dups}`);
  if (p.disconnects) flags.push(`disconnects ${p.disconnects}`);
  if (p.discarded_windows) flags.push(`discarded ${p.discarded_windows}`);
  if (!p.drained) flags.push('not drained');
  row([p.server, p.offered_dps, 'med', fmt(p.delivered_dps, 0), fmt(p.pubs_per_s, 1),
       fmt(p.server_cpu_us_per_delivery, 2), fmt(p.server_cpu_pct, 1),
       fmt(p.redis_commands_per_pub, 2), fmt(p.latency_us.p50, 0), fmt(p.latency_us.p99, 0),
       fmt(p.other_cpu_pct, 1), flags.join(', ') || 'ok'], widths);
  if (p.latency_cross_node_us) {
    const c = p.latency_cross_node_us, s = p.latency_same_node_us;
    out.push(`${pad('', 17)}   latency µs p50/p99, publisher on another node: ${fmt(c.p50, 0)}/${fmt(c.p99, 0)} ` +
             `(${c.samples}); on the same node: ${fmt(s.p50, 0)}/${fmt(s.p99, 0)} (${s.samples})`);
  }
  if (p.redis_calls_per_pub) {
    out.push(`${pad('', 17)}   redis calls per pub: ` +
             Object.entries(p.redis_calls_per_pub).map(([k, v]) => `${k} ${fmt(v, 2)}`).join(', '));
    if (p.redis_background_commands_per_s !== undefined) {
      out.push(`${pad('', 17)}   redis with nothing published: ${fmt(p.redis_background_commands_per_s, 1)} ` +
               `commands/s; per pub net of that: ${fmt(p.redis_commands_per_pub_net, 2)}`);
    }
  }
}

if (faults.length) {
  out.push('');
  out.push('Fault round: a node killed with SIGKILL mid-run; its clients reconnect to the next node,');
  out.push('resubscribe with since, and retry unacknowledged publishes with the same key.');
  for (const f of faults) {
    const what = f.fault_mode === 'drop'
      ? `the ${f.clients_on_killed_node} clients of node ${f.killed_node} dropped (self-test: one engine listed twice, it stays up)`
      : `node ${f.killed_node} (pid ${f.killed_pid}, ${f.clients_on_killed_node} clients) killed with SIGKILL`;
    out.push(`  ${f.server}: ${f.subscribers} subscribers on ${f.nodes} nodes, ${f.offered_dps} deliveries/s ` +
             `(${fmt(f.pubs_per_s, 1)} pubs/s) for ${fmt(f.publish_s, 1)} s; ${what}`);
    out.push(`    LOST ${f.lost} (subscribers with losses ${f.subscribers_with_losses}), ` +
             `DUPLICATED ${f.duplicated}, acknowledged but lost ${f.acked_lost}, ` +
             `published twice ${f.double_published}, unacked ${f.unacked}  => ${f.ok ? 'OK' : 'NOT OK'}`);
    out.push(`    published ${f.published}, retried ${f.retried}, acked seqs ${f.acked_seqs}, top seq ${f.top_seq}, ` +
             `delivered ${f.delivered}; reconnected ${f.reconnected_clients} (recovered ${f.resubscribed_recovered}, ` +
             `not recovered ${f.resubscribed_not_recovered}, failures ${f.reconnect_failures}), ` +
             `recovery ${fmt(f.recovery_ms, 0)} ms, drained ${f.drained}`);
    out.push(`    latency µs p50 ${fmt(f.latency_us.p50, 0)} p99 ${fmt(f.latency_us.p99, 0)} ` +
             `max ${fmt(f.latency_us.max, 0)}; gaps ${f.gaps}, dups ${f.dups} (order check per connection)`);
  }
}
if (errors.length) {
  out.push('');
  out.push('Errors:');
  for (const e of errors) out.push(`  ${e.variant || e.server}: ${e.scenario ? e.scenario + ': ' : ''}${e.error}`);
}
process.stderr.write(out.join('\n') + '\n\n');

// Medians side by side, and ratios to the single node.
const summary = { type: 'cluster_summary', variants: {}, fault: faults, errors: errors.map((e) => e.error) };
for (const p of points) {
  const v = (summary.variants[p.server] ||= {});
  v[String(p.offered_dps)] = {
    delivered_dps: p.delivered_dps,
    cpu_us_per_delivery: p.server_cpu_us_per_delivery,
    cpu_pct: p.server_cpu_pct,
    redis_commands_per_pub: p.redis_commands_per_pub ?? null,
    redis_commands_per_pub_net: p.redis_commands_per_pub_net ?? null,
    p50_us: p.latency_us.p50,
    p99_us: p.latency_us.p99,
    cross_node_p50_us: p.latency_cross_node_us ? p.latency_cross_node_us.p50 : null,
    cross_node_p99_us: p.latency_cross_node_us ? p.latency_cross_node_us.p99 : null,
    undelivered: p.undelivered,
    windows: (p.windows || []).length,
  };
}
const single = summary.variants.single || {};
for (const [name, loads] of Object.entries(summary.variants)) {
  if (name === 'single') continue;
  for (const [load, v] of Object.entries(loads)) {
    const s = single[load];
    if (s && s.cpu_us_per_delivery && v.cpu_us_per_delivery) {
      v.cpu_vs_single = Number((v.cpu_us_per_delivery / s.cpu_us_per_delivery).toFixed(2));
    }
  }
}
console.log(JSON.stringify(summary));
