#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL server from the system's own binaries, for benchmarks
# and tests that compare hoso with PostgreSQL. Nothing is installed and nothing outside DIR is
# touched; the server listens on 127.0.0.1 only, with fsync and synchronous_commit on.
#
#   deploy/pg-throwaway.sh start [DIR] [PORT]   # prints: URL, then DIR
#   deploy/pg-throwaway.sh stop DIR
set -euo pipefail

bindir=$(pg_config --bindir 2>/dev/null || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  for candidate in /usr/lib/postgresql/*/bin; do
    [ -x "$candidate/initdb" ] && bindir=$candidate
  done
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg-throwaway: no PostgreSQL server binaries (initdb, pg_ctl) found; install postgresql" >&2
  exit 1
fi

# PostgreSQL refuses to run as root: run it as the postgres (or nobody) user then.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    local user=postgres
    id "$user" >/dev/null 2>&1 || user=nobody
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

case "${1:-}" in
  start)
    dir=${2:-$(mktemp -d -t hoso-pg.XXXXXX)}
    port=${3:-55432}
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
      owner=postgres; id "$owner" >/dev/null 2>&1 || owner=nobody
      chown "$owner" "$dir"
      chmod 755 "$(dirname "$dir")" 2>/dev/null || true
    fi
    as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c synchronous_commit=on -c shared_buffers=512MB -c max_connections=200" \
      start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    echo "$dir"
    ;;
  stop)
    dir=${2:?usage: pg-throwaway.sh stop DIR}
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    rm -rf "$dir"
    ;;
  *)
    echo "usage: pg-throwaway.sh start [DIR] [PORT] | stop DIR" >&2
    exit 2
    ;;
esac
