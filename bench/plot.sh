#!/usr/bin/env bash
# Plots publish→delivery latency against offered rate from bench/run.sh's JSON lines: p50
# and p99 (log y), one line per server through the median of its rounds, every round's
# figure as a point. Closed-loop points (no offered rate) are left out.
#
#   bench/plot.sh RESULTS.jsonl [OUT.png] [--scenario 1x200]
#
# RESULTS is a run's build-bench/bench-results/STAMP.jsonl (or runs.jsonl, every run; then
# pick one commit with grep first). Needs gnuplot (Debian's gnuplot-nox, installed with
# apt-get when missing) and node.
set -euo pipefail
in="" out="" scenario="1x200"
while (($#)); do
  case "$1" in
    --scenario) scenario="$2"; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) if [ -z "$in" ]; then in="$1"; elif [ -z "$out" ]; then out="$1"; else echo "plot.sh: extra argument $1" >&2; exit 2; fi ;;
  esac
  shift
done
if [ -z "$in" ] || [ ! -f "$in" ]; then
  echo "usage: bench/plot.sh RESULTS.jsonl [OUT.png] [--scenario 1x200]" >&2
  exit 2
fi
[ -n "$out" ] || out="${in%.jsonl}-latency.png"

if ! command -v gnuplot >/dev/null; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  echo "[plot.sh] installing gnuplot-nox (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends gnuplot-nox >&2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One data file per server: "rate p50_ms p99_ms" per round (rounds.dat) and the medians
# (median.dat); servers.txt lists them in order of appearance.
node - "$in" "$scenario" "$tmp" <<'JS'
const fs = require('fs');
const [file, scenario, dir] = process.argv.slice(2);
const byServer = new Map();
for (const l of fs.readFileSync(file, 'utf8').split('\n')) {
  if (!l.startsWith('{')) continue;
  let r;
  try { r = JSON.parse(l); } catch (e) { continue; }
  if (r.type !== 'point' || r.mode !== 'open' || r.scenario !== scenario || !r.latency_us) continue;
  if (!byServer.has(r.server)) byServer.set(r.server, new Map());
  const rates = byServer.get(r.server);
  if (!rates.has(r.offered_dps)) rates.set(r.offered_dps, []);
  rates.get(r.offered_dps).push([r.latency_us.p50 / 1000, r.latency_us.p99 / 1000]);
}
const med = (v) => { v = [...v].sort((a, b) => a - b); const n = v.length; return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2; };
const names = [];
for (const [server, rates] of byServer) {
  const safe = server.replace(/[^A-Za-z0-9_-]/g, '_');
  names.push(`${safe} ${server}`);
  const each = [], mid = [];
  for (const rate of [...rates.keys()].sort((a, b) => a - b)) {
    const xs = rates.get(rate);
    for (const [p50, p99] of xs) each.push(`${rate} ${p50} ${p99}`);
    mid.push(`${rate} ${med(xs.map((x) => x[0]))} ${med(xs.map((x) => x[1]))}`);
  }
  fs.writeFileSync(`${dir}/${safe}.rounds.dat`, each.join('\n') + '\n');
  fs.writeFileSync(`${dir}/${safe}.median.dat`, mid.join('\n') + '\n');
}
fs.writeFileSync(`${dir}/servers.txt`, names.join('\n') + '\n');
if (!names.length) { console.error(`plot.sh: no open-loop ${scenario} points in ${file}`); process.exit(1); }
JS

plots() {  # $1: column (2 = p50, 3 = p99)
  local col=$1 i=1 sep="" safe name
  while read -r safe name; do
    # shellcheck disable=SC2016  # $1 is gnuplot's column, not the shell's
    printf '%s"%s/%s.median.dat" using ($1/1000):%d with linespoints ls %d title "%s", "%s/%s.rounds.dat" using ($1/1000):%d with points ls %d pt 1 notitle' \
      "$sep" "$tmp" "$safe" "$col" "$i" "$name" "$tmp" "$safe" "$col" "$i"
    sep=", "
    i=$((i + 1))
  done <"$tmp/servers.txt"
}
gnuplot <<GP
set terminal pngcairo size 1000,420 font "sans,9" noenhanced
set output "$out"
set multiplot layout 1,2 title "publish → delivery latency, $scenario, $(basename "$in") (lines: median of rounds; +: each round)"
set logscale y
set grid
set offsets graph 0.04, graph 0.04, 0, 0
set key top left
set xlabel "offered load (thousand deliveries/s)"
set ylabel "ms"
set style line 1 lc rgb "#d62728" lw 2 pt 7
set style line 2 lc rgb "#1f77b4" lw 2 pt 7
set style line 3 lc rgb "#2ca02c" lw 2 pt 7
set style line 4 lc rgb "#9467bd" lw 2 pt 7
set style line 5 lc rgb "#7f7f7f" lw 2 pt 7
set style line 6 lc rgb "#ff7f0e" lw 2 pt 7
set style line 7 lc rgb "#8c564b" lw 2 pt 7
set style line 8 lc rgb "#17becf" lw 2 pt 7
set title "p50"
plot $(plots 2)
set title "p99"
plot $(plots 3)
unset multiplot
GP
echo "$out"
