'use strict';
// Puts the load generator's JSON lines for several servers side by side.
//   node bench/report.js results.jsonl [--markdown FILE]
//     -> one JSON object on stdout, a table on stderr (every round's figure per server),
//        and with --markdown the same figures as a Markdown table in FILE
const fs = require('fs');

const mdAt = process.argv.indexOf('--markdown');
const markdownFile = mdAt > 0 ? process.argv[mdAt + 1] : null;
const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.startsWith('{'));
const records = [];
for (const l of lines) {
  try { records.push(JSON.parse(l)); } catch (e) { /* a truncated line from an aborted run */ }
}

const servers = [];
const points = {};  // "1x200@50000" -> server -> figures (the median over rounds)
const idle = {};    // server -> figures (the median over rounds)
const rounds = {};  // "1x200@50000" or "idle" -> server -> [figures of each round, in order]
const presence = {};  // "2000 over 2000ms", "2000 burst" -> [runs]
const errors = [];
for (const r of records) {
  if (r.server && !servers.includes(r.server)) servers.push(r.server);
  if (r.type === 'point') {
    const key = `${r.scenario}@${r.mode === 'closed' ? 'max' : r.offered_dps}`;
    const fig = {
      round: r.round ?? null,
      commit: r.commit ?? null,
      delivered_dps: r.delivered_dps,
      cpu_us_per_delivery: r.server_cpu_us_per_delivery,
      p50_us: r.latency_us.p50,
      p99_us: r.latency_us.p99,
      p999_us: r.latency_us.p999,
      rss_before_kb: r.server_rss_before_kb ?? null,
      rss_peak_kb: r.server_rss_peak_kb ?? null,
      rss_after_kb: r.server_rss_after_kb ?? null,
      server_cpu_pct: r.server_cpu_pct,
      generator_cpu_pct: r.generator_cpu_pct,
      other_cpu_pct: r.other_cpu_pct,
      generator_bound: r.generator_bound,
      problems: r.undelivered || r.gaps || r.disconnects || Object.keys(r.errors || {}).length
        ? { undelivered: r.undelivered, gaps: r.gaps, disconnects: r.disconnects, errors: r.errors }
        : undefined,
    };
    ((rounds[key] ||= {})[r.server] ||= []).push(fig);
  } else if (r.type === 'idle') {
    ((rounds.idle ||= {})[r.server] ||= []).push({
      round: r.round ?? null,
      commit: r.commit ?? null,
      bytes_per_connection: r.bytes_per_connection,
      connected: r.connected,
      connects_per_s: r.connects_per_s,
      rss_before_kb: r.server_rss_before_kb ?? null,
      rss_after_kb: r.server_rss_after_kb ?? null,
    });
  } else if (r.type === 'presence') {
    const e = r.errors || {};
    (presence[`${r.members} ${r.spread_ms ? `over ${r.spread_ms}ms` : 'burst'}`] ||= []).push({
      correct: r.correct,
      complete_ms: r.complete_ms,
      after_last_sub_ms: r.after_last_sub_ms,
      join_seen_p99_ms: r.join_seen_ms?.p99,
      final_pseq: r.final_pseq,
      frames_median: r.per_member?.frames?.median,
      kb_median: r.per_member?.bytes ? r.per_member.bytes.median / 1000 : null,
      mb_total: r.per_member?.bytes ? r.per_member.bytes.total / 1e6 : null,
      pdiffs_median: r.per_member?.pdiffs?.median,
      server_cpu_ms: r.server_cpu_ms,
      server_cpu_pct: r.server_cpu_pct,
      generator_cpu_pct: r.generator_cpu_pct,
      server_rss_peak_kb: r.server_rss_peak_kb,
      server_rss_before_kb: r.server_rss_before_kb,
      generator_bound: r.generator_bound,
      noisy: r.noisy,
      problems: r.correct ? undefined : Object.fromEntries(Object.entries(e).filter(([, v]) => v && (typeof v !== 'object' || Object.keys(v).length))),
    });
  } else if (r.type === 'error') {
    errors.push(r);
  }
}

// Medians over rounds (one round: its figures as they are).
const med = (xs) => {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (!v.length) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
function medianOf(runs) {
  if (runs.length === 1) return runs[0];
  const m = { rounds: runs.length };
  for (const f of Object.keys(runs[0])) {
    if (typeof runs[0][f] === 'number' && f !== 'round') m[f] = med(runs.map((x) => x[f]));
  }
  if ('generator_bound' in runs[0]) m.generator_bound = runs.some((x) => x.generator_bound);
  const bad = runs.filter((x) => x.problems);
  if (bad.length) m.problems = bad.map((x) => ({ round: x.round, ...x.problems }));
  return m;
}
for (const [key, byServer] of Object.entries(rounds)) {
  for (const [server, runs] of Object.entries(byServer)) {
    if (key === 'idle') idle[server] = medianOf(runs);
    else (points[key] ||= {})[server] = medianOf(runs);
  }
}

function ratio(a, b) {
  return typeof a === 'number' && typeof b === 'number' && b > 0 ? Math.round((a / b) * 100) / 100 : null;
}

// The figures that matter most: 1 room x 200 at 50k deliveries/s, and idle memory.
const head = points['1x200@50000'] || {};
const headline = {
  '1x200@50000': {
    cpu_us_per_delivery: Object.fromEntries(servers.map((s) => [s, head[s]?.cpu_us_per_delivery ?? null])),
    p99_us: Object.fromEntries(servers.map((s) => [s, head[s]?.p99_us ?? null])),
  },
  idle_bytes_per_connection: Object.fromEntries(servers.map((s) => [s, idle[s]?.bytes_per_connection ?? null])),
};
for (const peer of ['ws', 'uws']) {
  if (servers.includes('troupe') && servers.includes(peer)) {
    headline[`troupe_vs_${peer}`] = {
      cpu_per_delivery: ratio(head.troupe?.cpu_us_per_delivery, head[peer]?.cpu_us_per_delivery),
      p99: ratio(head.troupe?.p99_us, head[peer]?.p99_us),
      idle_bytes: ratio(idle.troupe?.bytes_per_connection, idle[peer]?.bytes_per_connection),
    };
  }
}

// Presence join: the median of each figure over the runs of one variant.
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (!v.length) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const presenceSummary = {};
for (const [key, runs] of Object.entries(presence)) {
  const m = {};
  for (const f of ['complete_ms', 'after_last_sub_ms', 'join_seen_p99_ms', 'final_pseq', 'frames_median',
    'kb_median', 'mb_total', 'pdiffs_median', 'server_cpu_ms', 'server_cpu_pct', 'generator_cpu_pct',
    'server_rss_peak_kb', 'server_rss_before_kb']) {
    m[f] = median(runs.map((r) => r[f]));
  }
  presenceSummary[key] = { runs: runs.length, all_correct: runs.every((r) => r.correct), median: m, each: runs };
}

const presenceOnly = Object.keys(presenceSummary).length && !Object.keys(points).length && !Object.keys(idle).length;
const summary = presenceOnly
  ? { type: 'presence_summary', servers, presence: presenceSummary, errors }
  : { type: 'side_by_side', servers, headline, points, idle, rounds, errors };
if (!presenceOnly && Object.keys(presenceSummary).length) summary.presence = presenceSummary;
process.stdout.write(JSON.stringify(summary) + '\n');

// A table for people.
const pad = (s, n) => String(s ?? '-').padStart(n);
const fmt = (v, d = 1) => (typeof v === 'number' ? v.toFixed(d) : '-');
const out = [];
out.push('');
if (Object.keys(presenceSummary).length) {
  out.push(`${'presence join, median of runs'.padEnd(30)}  runs  ok  done_ms  after_last  seen_p99  pdiffs  frames  KB/member  MB_all  cpu_ms  gen%  rss_MB before>peak`);
  for (const [key, p] of Object.entries(presenceSummary)) {
    const m = p.median;
    const mb = (kb) => (typeof kb === 'number' ? (kb / 1024).toFixed(1) : '-');
    const flag = p.each.some((r) => r.noisy) ? '~' : p.each.some((r) => r.generator_bound) ? '*' : ' ';
    out.push(`${key.padEnd(30)}${pad(p.runs, 6)}${pad(p.all_correct ? 'yes' : 'NO', 4)}${pad(fmt(m.complete_ms, 0), 9)}${flag}` +
      `${pad(fmt(m.after_last_sub_ms, 0), 11)}${pad(fmt(m.join_seen_p99_ms, 0), 10)}${pad(fmt(m.pdiffs_median, 0), 8)}` +
      `${pad(fmt(m.frames_median, 0), 8)}${pad(fmt(m.kb_median, 1), 11)}${pad(fmt(m.mb_total, 1), 8)}` +
      `${pad(fmt(m.server_cpu_ms, 0), 8)}${pad(fmt(m.generator_cpu_pct, 0), 6)}${pad(`${mb(m.server_rss_before_kb)}>${mb(m.server_rss_peak_kb)}`, 20)}`);
  }
  out.push("(per member: frames, KB and pdiffs are medians; '~': a noisy run; '*': the generator was near its core)");
  if (presenceOnly) {
    if (errors.length) out.push('errors: ' + errors.map((e) => `${e.server}: ${e.error}`).join('; '));
    process.stderr.write(out.join('\n') + '\n');
    process.exit(0);
  }
  out.push('');
}
// Fan-out: one row per point and figure, every round's figure per server ("6.5, 9.8"),
// then Troupe's ratio to native uWebSockets and to ws, round by round.
const flagOf = (p) => (p.problems ? '!' : p.generator_bound ? '*' : p.other_cpu_pct > 10 ? '~' : '');
const figures = [
  ['deliv/s', (p) => p.delivered_dps, 0, 1],
  ['cpu us/deliv', (p) => p.cpu_us_per_delivery, 2, 1],
  ['p50 ms', (p) => p.p50_us, 2, 1e-3],
  ['p99 ms', (p) => p.p99_us, 2, 1e-3],
  ['p99.9 ms', (p) => p.p999_us, 2, 1e-3],
  ['rss MB bef/pk/aft', null],
];
const mbs = (kb) => (typeof kb === 'number' ? (kb / 1024).toFixed(0) : '-');
function cell(runs, get, d, scale) {
  if (!runs || !runs.length) return '-';
  if (!get) return runs.map((p) => `${mbs(p.rss_before_kb)}/${mbs(p.rss_peak_kb)}/${mbs(p.rss_after_kb)}`).join(', ');
  return runs.map((p) => {
    const v = get(p);
    return `${typeof v === 'number' ? (v * scale).toFixed(d) : '-'}${flagOf(p)}`;
  }).join(', ');
}
function ratioCell(a, b, get) {
  if (!a || !b || !get) return '-';
  const out = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const r = ratio(get(a[i]), get(b[i]));
    out.push(r === null ? '-' : r.toFixed(2));
  }
  return out.length ? out.join(', ') : '-';
}
const ratioPeers = ['uws', 'ws'].filter((x) => servers.includes('troupe') && servers.includes(x));
const head1 = ['point', 'figure', ...servers, ...ratioPeers.map((x) => `troupe/${x}`)];
const rows = [];
for (const [key, byServer] of Object.entries(rounds)) {
  if (key === 'idle') continue;
  for (const [name, get, d, scale] of figures) {
    rows.push([key, name, ...servers.map((sv) => cell(byServer[sv], get, d, scale)),
      ...ratioPeers.map((x) => (name.startsWith('deliv') || !get ? '' : ratioCell(byServer.troupe, byServer[x], get)))]);
  }
}
if (rounds.idle) {
  const get = (p) => p.bytes_per_connection;
  rows.push(['idle', 'B/conn', ...servers.map((sv) => cell(rounds.idle[sv], get, 0, 1)),
    ...ratioPeers.map((x) => ratioCell(rounds.idle.troupe, rounds.idle[x], get))]);
}
const widths = head1.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
out.push(head1.map((h, i) => h.padEnd(widths[i])).join('  '));
let lastKey = null;
for (const r of rows) {
  const shown = r.map((c, i) => (i === 0 && c === lastKey ? '' : String(c)));
  lastKey = r[0];
  out.push(shown.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
}
if (errors.length) out.push('errors: ' + errors.map((e) => `${e.server}: ${e.error}`).join('; '));
out.push('(each cell: every round in order; troupe/X: the ratio round by round. ' +
  "'!': undelivered messages, gaps, disconnects or errors;");
out.push(" '*': the generator was the limit; '~': something else used over 10% of a core meanwhile: not a clean measurement)");
if (markdownFile) {
  const md = ['| ' + head1.join(' | ') + ' |', '|' + head1.map(() => '---').join('|') + '|'];
  for (const r of rows) md.push('| ' + r.map((c) => (c === '' ? '' : String(c))).join(' | ') + ' |');
  fs.writeFileSync(markdownFile, md.join('\n') + '\n');
}
process.stderr.write(out.join('\n') + '\n');
