#!/usr/bin/env bash
# The scaling runs of issues #6 and #23 (BENCHMARKS.md, "Service"): for stores of about 1, 10
# and 30 million events (2 and 21 months of `hoso gen --seed 1` from 2025-01, 64 months from
# 2021-08; filled by the projection benchmark), the time from start to serving and to a
# caught-up projection, the server's memory, a month's figures through `hoso figures`, 20 s of
# 64 load clients, the store's bytes per event, and the snapshot the server saves when it stops:
# its size, and the time a restart takes to load it and to catch up. The load acts as a desk
# officer and the officers of all 110 agencies of hoso-gen's province (province-tokens.sh),
# `hoso figures` as its auditor.
# Usage: crates/hoso-bench/scripts/scaling.sh [DIR] [RUNS]   (from the repository's root; DIR
# holds the stores, default /tmp/hoso-scaling, about 20 GB; filled stores are reused by later
# runs, so filling, about a minute for 10 million events, happens once; RUNS: which of
# 1m,10m,30m, default all three)
set -euo pipefail
dir=${1:-/tmp/hoso-scaling}
runs=${2:-1m,10m,30m}
cargo build --release -p hoso -p hoso-load -p hoso-bench
hoso=$PWD/target/release/hoso
load=$PWD/target/release/hoso-load
mkdir -p "$dir"
tokens=$(mktemp -d /tmp/hoso-scaling-tokens.XXXXXX)
trap 'rm -rf "$tokens"' EXIT
crates/hoso-bench/scripts/province-tokens.sh "$hoso" "$tokens"
"$hoso" gen --seed 1 --months 1 --out /dev/null --catalogue-out "$tokens/catalogue.csv" >/dev/null
for run in "1m 2025-01 2 2025-02" "10m 2025-01 21 2026-09" "30m 2021-08 64 2026-09"; do
  set -- $run; name=$1; start=$2; months=$3; month=$4; store=$dir/store-$start-$months-months
  case ",$runs," in *",$name,"*) ;; *) continue ;; esac
  if [ ! -d "$store" ]; then
    "$PWD/target/release/projections" --keep "$store" --start "$start" --months "$months" --fill-only
  fi
  data=$(mktemp -d /tmp/hoso-scaling-data.XXXXXX); ln -s "$store" "$data/store"
  bytes=$(du -sbL "$store" | cut -f1)
  port=50091; log=$data/serve.log
  echo "#### $months months from $start, $(date -u +%T) UTC"; top -bn1 | sed -n 8,9p
  started=$(date +%s.%N)
  HOSO_LOG=warn,hoso_server::projection=info HOSO_TOKENS_FILE=$tokens/tokens.toml "$hoso" serve --data-dir "$data" --listen 127.0.0.1:$port >"$log" 2>&1 &
  server=$!
  until grep -q "serving on" "$log"; do sleep 0.05; done; serving=$(date +%s.%N)
  until grep -q "caught up with the log" "$log"; do sleep 0.05; done; caught_up=$(date +%s.%N)
  events=$(grep -o "events=[0-9]*" "$log" | tail -1 | cut -d= -f2)
  echo "events: $events; bytes per event: $((bytes / events))"
  echo "start to serving: $(echo "$serving - $started" | bc) s; to the projection caught up: $(echo "$caught_up - $started" | bc) s"
  echo "server RSS after the catch-up: $(ps -o rss= -p $server) KiB"
  export HOSO_SERVER=http://127.0.0.1:$port
  # The load's desks receive by catalogue (loading the same file again writes nothing).
  HOSO_TOKEN=$(awk '$1 == "operator" { print $2 }' "$tokens/load-tokens.txt") \
    "$hoso" catalogue load "$tokens/catalogue.csv" --decision 1/QĐ-UBND --effective 2025-01-01
  for i in 1 2 3; do
    a=$(date +%s.%N)
    HOSO_TOKEN=$(awk '$1 == "auditor" { print $2 }' "$tokens/load-tokens.txt") "$hoso" figures --month "$month" >/dev/null
    echo "hoso figures --month $month: $(echo "($(date +%s.%N) - $a) * 1000" | bc) ms"
  done
  echo "64 clients, 20 s:"; "$load" --tokens "$tokens/load-tokens.txt" --clients 64 --duration 20s --json
  echo "server RSS after the load: $(ps -o rss= -p $server) KiB"
  # Stopping saves the projection's snapshot; a restart loads it and catches up from it.
  kill -TERM $server; wait $server || true
  echo "snapshot: $(stat -c %s "$data/projection/dossiers.snapshot") bytes"
  log=$data/restart.log; started=$(date +%s.%N)
  HOSO_LOG=warn,hoso_server::projection=info,hoso_server::snapshot=info HOSO_TOKENS_FILE=$tokens/tokens.toml "$hoso" serve --data-dir "$data" --listen 127.0.0.1:$port >"$log" 2>&1 &
  server=$!
  until grep -q "caught up with the log" "$log"; do sleep 0.05; done; caught_up=$(date +%s.%N)
  echo "restart: $(grep -o 'seconds=[0-9.]*' "$log" | head -1) to load the snapshot; to the projection caught up: $(echo "$caught_up - $started" | bc) s"
  echo "server RSS after the restart's catch-up: $(ps -o rss= -p $server) KiB"
  # The snapshot's file is held while it is decoded; the allocator gives it back within seconds.
  sleep 15; echo "server RSS 15 s later: $(ps -o rss= -p $server) KiB"
  kill -TERM $server; wait $server || true
  rm -rf "$data"
done
