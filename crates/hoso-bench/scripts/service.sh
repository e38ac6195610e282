#!/usr/bin/env bash
# The service benchmarks of issue #6 (BENCHMARKS.md, "Service"): a release `hoso serve` on a fresh
# data directory and `hoso-load` against it, on the same machine, acting as a desk officer and
# the officers of all 110 agencies of hoso-gen's province (province-tokens.sh).
#   closed loop, 16 and 64 clients, 60 s each; open loop at --rate (default 10,000 commands/s,
#   half the 64-client figure) for 60 s with the projection's lag; replays of a 20-event dossier.
# With --stores embedded,postgres (issue #19) the same runs are made on each store in turn, the
# server on hoso's PostgreSQL store (`hoso serve --store postgres://...`) the second time, and a
# last table puts the stores side by side. One binary, built with the `postgres` feature, serves
# both, so the store is the only difference.
# Usage: crates/hoso-bench/scripts/service.sh [--rate N] [--stores embedded|postgres|embedded,postgres]
#          [--pg URL]     (from the repository's root; RATE may also be given alone, as before)
# The PostgreSQL store goes into a throwaway server (deploy/pg-throwaway.sh, fsync and
# synchronous_commit on) unless --pg names an empty database. Binaries are taken from
# $CARGO_TARGET_DIR (default ./target).
set -euo pipefail
rate=10000
stores=embedded
pg_url=
while [ $# -gt 0 ]; do
  case $1 in
    --rate) rate=$2; shift 2 ;;
    --stores) stores=$2; shift 2 ;;
    --pg) pg_url=$2; shift 2 ;;
    [0-9]*) rate=$1; shift ;;
    *) echo "service.sh: unknown argument $1 (see the usage at the top of the script)" >&2; exit 2 ;;
  esac
done
cargo build --release -p hoso -p hoso-load --features hoso/postgres
bin=${CARGO_TARGET_DIR:-$PWD/target}/release
hoso=$bin/hoso
load=$bin/hoso-load
results=$(mktemp -d /tmp/hoso-service-results.XXXXXX)
port=50090
server=
data=
pg_dir=
stop_server() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=
  if [ -n "$data" ]; then rm -rf "$data" "$data.log"; fi
  data=
}
cleanup() {
  stop_server
  if [ -n "$pg_dir" ]; then deploy/pg-throwaway.sh stop "$pg_dir" || true; fi
  rm -rf "$results"
}
trap cleanup EXIT

# One hoso-load run, its summary kept as $results/NAME.json. A run that ends with failed commands
# (an overloaded machine) still prints its summary, and the next runs go on.
run_load() {
  local name=$1; shift
  "$load" "$@" --json >"$results/$name.json" || echo "service.sh: hoso-load ended with failed commands (counted below)"
  cat "$results/$name.json"
}

# One store's runs; each hoso-load summary is kept as $results/<store>-<run>.json.
measure() {
  local store=$1 store_arg=() log
  data=$(mktemp -d /tmp/hoso-service-bench.XXXXXX)
  log=$data.log
  crates/hoso-bench/scripts/province-tokens.sh "$hoso" "$data"
  if [ "$store" = postgres ]; then
    if [ -z "$pg_url" ]; then
      local started
      started=$(deploy/pg-throwaway.sh start "" 55433)
      pg_url=$(sed -n 1p <<<"$started"); pg_dir=$(sed -n 2p <<<"$started")
    fi
    store_arg=(--store "$pg_url")
    echo "PostgreSQL: $(psql "$pg_url" -Atc "SELECT version()" | cut -d' ' -f1-2)," \
      "$(psql "$pg_url" -Atc "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings \
          WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers')")"
  fi
  echo "#### store: $store, $(date -u +"%F %T UTC"), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  top -bn1 | sed -n 7,10p
  HOSO_LOG=warn HOSO_TOKENS_FILE=$data/tokens.toml "$hoso" serve --data-dir "$data" --listen 127.0.0.1:$port \
    "${store_arg[@]}" >"$log" 2>&1 &
  server=$!
  until grep -q "serving on" "$log"; do
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  export HOSO_SERVER=http://127.0.0.1:$port
  local tokens=$data/load-tokens.txt
  # The desks receive by catalogue: load the generated province's (the workload is not needed).
  "$hoso" gen --seed 1 --months 1 --out /dev/null --catalogue-out "$data/catalogue.csv" >/dev/null
  HOSO_TOKEN=$(awk '$1 == "operator" { print $2 }' "$tokens") \
    "$hoso" catalogue load "$data/catalogue.csv" --decision 1/QĐ-UBND --effective 2025-01-01
  echo "== closed loop, 16 clients, 60 s"
  run_load "$store-16" --tokens "$tokens" --clients 16 --duration 60s
  echo "== closed loop, 64 clients, 60 s"
  run_load "$store-64" --tokens "$tokens" --clients 64 --duration 60s
  echo "== open loop, $rate commands/s, 60 s"
  run_load "$store-open" --tokens "$tokens" --rate "$rate" --duration 60s --lag-sample-ms 5
  echo "== replays of one 20-event dossier, 1 client, 30 s"
  run_load "$store-replay" --tokens "$tokens" --replay 20 --clients 1 --duration 30s
  stop_server
}

for store in ${stores//,/ }; do
  case $store in
    embedded | postgres) measure "$store" ;;
    *) echo "service.sh: --stores takes embedded and postgres, not $store" >&2; exit 2 ;;
  esac
done

echo
echo "| store | run | commands/s (replays/s) | p50 ms | p99 ms | projection lag p99 ms | errors | refused |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for store in ${stores//,/ }; do
  for run in 16 64 open replay; do
    jq -r --arg store "$store" --arg run "$run" \
      '"| \($store) | \($run) | \(.commands_per_second // .replays_per_second) | \(.latency.p50_ms) | \(.latency.p99_ms) | \(.projection_lag.p99_ms // "") | \(.errors) | \(.refused // "") |"' \
      "$results/$store-$run.json"
  done
done
if [ -f "$results/embedded-64.json" ] && [ -f "$results/postgres-64.json" ]; then
  jq -rn --slurpfile e "$results/embedded-64.json" --slurpfile p "$results/postgres-64.json" \
    '"\n64 clients: PostgreSQL store \($p[0].commands_per_second)/s against the embedded store \($e[0].commands_per_second)/s = \(100 * $p[0].commands_per_second / $e[0].commands_per_second | round)% (target: at least 50%), p99 \($p[0].latency.p99_ms) ms (target: under 25 ms)"'
fi
