#!/usr/bin/env bash
# The officers the service benchmarks (service.sh, scaling.sh) act as: a desk officer, an auditor,
# an operator and one agency officer for every handling agency of hoso-gen's province, so that
# `hoso-load` keeps each generated dossier with its own agency instead of handing them all to the
# one agency officer of a development server's dev-tokens.txt.
#
# All 110 agencies, not a sample: a token costs one `hoso token new` (a few milliseconds) and the
# load one gRPC client per agency and connection, so there is no reason to leave any out. (With
# --seed 1, the benchmarks' seed, 109 of them get dossiers: 000.01.09.H18 handles none.)
#
# Writes, in DIR (created readable by the owner only):
#   tokens.toml       the server's tokens file (hashes only): HOSO_TOKENS_FILE=DIR/tokens.toml
#   load-tokens.txt   `<role> <token> <agency>` lines for `hoso-load --tokens` and the auditor's
#                     `hoso figures`; it holds the tokens themselves, so it is never printed.
# Usage: crates/hoso-bench/scripts/province-tokens.sh HOSO DIR   (HOSO: the built hoso binary)
set -euo pipefail
hoso=$1
dir=$2
umask 077
mkdir -p "$dir"
toml=$dir/tokens.toml
txt=$dir/load-tokens.txt
echo "# The service benchmarks' officers (crates/hoso-bench/scripts/province-tokens.sh)." >"$toml"
echo "# role token agency (benchmark tokens: never print them)" >"$txt"

# `hoso token new` prints the token on its first line (`token (...): <token>`), then the
# tokens-file entry from `[[tokens]]` on: the entry goes to tokens.toml, the token only to
# load-tokens.txt.
officer() { # role subject agency
  local out token
  out=$("$hoso" token new --role "$1" --subject "$2" --agency "$3")
  token=$(printf '%s\n' "$out" | sed -n '1s/^token .*: //p')
  if [ -z "$token" ]; then
    echo "province-tokens.sh: no token in the output of \`hoso token new --role $1\`" >&2
    exit 1
  fi
  printf '%s\n' "$out" | sed -n '/^\[\[tokens\]\]$/,$p' >>"$toml"
  printf '%s %s %s\n' "$1" "$token" "$3" >>"$txt"
}

# The province's desk (hoso_gen::PROVINCE_DESK) and the provincial office.
officer desk_officer bench.desk-officer 000.00.00.G18
officer auditor bench.auditor 000.00.00.H00
officer operator bench.operator 000.00.00.H00
# hoso_gen::Province::new's agencies (the same for every seed): departments 000.00.01.G18 to
# 000.00.20.G18, then communes i = 1..90 as 000.<i/10+1>.<i%10+1>.H18.
agencies=0
for i in $(seq 1 20); do
  code=$(printf '000.00.%02d.G18' "$i")
  officer agency_officer "bench.agency.$code" "$code"
  agencies=$((agencies + 1))
done
for i in $(seq 1 90); do
  code=$(printf '000.%02d.%02d.H18' $((i / 10 + 1)) $((i % 10 + 1)))
  officer agency_officer "bench.agency.$code" "$code"
  agencies=$((agencies + 1))
done
echo "tokens for a desk officer, an auditor, an operator and $agencies agency officers in $dir"
