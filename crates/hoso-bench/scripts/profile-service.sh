#!/usr/bin/env bash
# Where a desk command's CPU goes in the whole service (issue #23; BENCHMARKS.md, "Where the
# service's CPU goes"): a release `hoso serve` on a fresh data directory, driven by `hoso-load`
# in a closed loop as service.sh does, sampled by `perf record` (the cpu-clock software event,
# which needs no hardware counters, with DWARF call stacks) for the run's length. Prints:
#   - the server's CPU time per command (user + system, from /proc, over the sampled run);
#   - the share of its samples in each part of a command's path (profile-categories.py).
# Usage: crates/hoso-bench/scripts/profile-service.sh [--clients N] [--seconds S] [--keep DIR]
#   (from the repository's root; N: 64, S: 20; --keep DIR leaves perf.data and the load's
#   summary in DIR). Needs perf (Debian's linux-perf) and perf_event_paranoid <= 1 or root.
set -euo pipefail
clients=64
seconds=20
keep=
while [ $# -gt 0 ]; do
  case $1 in
    --clients) clients=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "profile-service.sh: unknown argument $1 (see the usage at the top of the script)" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "profile-service.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
cargo build --release -p hoso -p hoso-load --features hoso/postgres
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
hoso=$bin/hoso
load=$bin/hoso-load
work=${keep:-$(mktemp -d /tmp/hoso-profile.XXXXXX)}
mkdir -p "$work"
data=$work/data
rm -rf "$data"
port=50091
server=
cleanup() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$data"
  if [ -z "$keep" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

crates/hoso-bench/scripts/province-tokens.sh "$hoso" "$data"
echo "#### $(date -u +"%F %T UTC"), load average $(cut -d' ' -f1-3 /proc/loadavg), $clients clients, $seconds s"
HOSO_LOG=warn HOSO_TOKENS_FILE=$data/tokens.toml "$hoso" serve --data-dir "$data" --listen 127.0.0.1:$port \
  >"$work/server.log" 2>&1 &
server=$!
until grep -q "serving on" "$work/server.log"; do
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
export HOSO_SERVER=http://127.0.0.1:$port
tokens=$data/load-tokens.txt
"$hoso" gen --seed 1 --months 1 --out /dev/null --catalogue-out "$data/catalogue.csv" >/dev/null
HOSO_TOKEN=$(awk '$1 == "operator" { print $2 }' "$tokens") \
  "$hoso" catalogue load "$data/catalogue.csv" --decision 1/QĐ-UBND --effective 2025-01-01 >/dev/null
# A short warm-up, so the profile is of a server in its stride (connections open, caches warm).
"$load" --tokens "$tokens" --clients "$clients" --duration 5s --json >/dev/null

# CPU time in clock ticks (utime + stime, fields 14 and 15 of /proc/PID/stat).
ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
before=$(ticks)
perf record -e cpu-clock -F 199 --call-graph dwarf,16384 -p "$server" -o "$work/perf.data" \
  -- sleep "$seconds" 2>"$work/perf.log" &
perf_pid=$!
"$load" --tokens "$tokens" --clients "$clients" --duration "${seconds}s" --json >"$work/load.json"
after=$(ticks)
wait "$perf_pid"
hz=$(getconf CLK_TCK)
jq -r --argjson cpu "$(( after - before ))" --argjson hz "$hz" \
  '"commands: \(.commands) in \(.seconds) s, \(.commands_per_second)/s, p50 \(.latency.p50_ms) ms, p99 \(.latency.p99_ms) ms; server CPU \($cpu / $hz) s = \(($cpu / $hz * 1000000 / .commands) | round) µs per command"' \
  "$work/load.json"
perf script -i "$work/perf.data" -F comm,tid,ip,sym --no-inline 2>/dev/null \
  | python3 crates/hoso-bench/scripts/profile-categories.py
