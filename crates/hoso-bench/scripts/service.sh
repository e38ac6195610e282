#!/usr/bin/env bash
# The service benchmarks of issue #6 (BENCHMARKS.md, "Service"): a release `hoso serve` on a fresh
# data directory and `hoso-load` against it, on the same machine, acting as a desk officer and
# the officers of all 110 agencies of hoso-gen's province (province-tokens.sh).
#   closed loop, 16 and 64 clients, 60 s each; open loop at --rate (default 10,000 commands/s,
#   half the 64-client figure) for 60 s with the projection's lag; replays of a 20-event dossier.
# Usage: crates/hoso-bench/scripts/service.sh [RATE]     (from the repository's root)
set -euo pipefail
rate=${1:-10000}
cargo build --release -p hoso -p hoso-load
hoso=$PWD/target/release/hoso
load=$PWD/target/release/hoso-load
data=$(mktemp -d /tmp/hoso-service-bench.XXXXXX)
port=50090
log=$data.log
server=
trap 'kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data" "$log"' EXIT
crates/hoso-bench/scripts/province-tokens.sh "$hoso" "$data"
date -u +"%F %T UTC"; top -bn1 | sed -n 7,10p
HOSO_LOG=warn HOSO_TOKENS_FILE=$data/tokens.toml "$hoso" serve --data-dir "$data" --listen 127.0.0.1:$port >"$log" 2>&1 &
server=$!
until grep -q "serving on" "$log"; do sleep 0.1; done
export HOSO_SERVER=http://127.0.0.1:$port
tokens=$data/load-tokens.txt
# The desks receive by catalogue: load the generated province's (the workload is not needed).
"$hoso" gen --seed 1 --months 1 --out /dev/null --catalogue-out "$data/catalogue.csv" >/dev/null
HOSO_TOKEN=$(awk '$1 == "operator" { print $2 }' "$tokens") \
  "$hoso" catalogue load "$data/catalogue.csv" --decision 1/QĐ-UBND --effective 2025-01-01
echo "== closed loop, 16 clients, 60 s"; "$load" --tokens "$tokens" --clients 16 --duration 60s --json
echo "== closed loop, 64 clients, 60 s"; "$load" --tokens "$tokens" --clients 64 --duration 60s --json
echo "== open loop, $rate commands/s, 60 s"
"$load" --tokens "$tokens" --rate "$rate" --duration 60s --lag-sample-ms 5 --json
echo "== replays of one 20-event dossier, 1 client, 30 s"
"$load" --tokens "$tokens" --replay 20 --clients 1 --duration 30s --json
