#!/usr/bin/env bash
# Server ingest load test: wrk (Debian's package) posts unique, realistic reports from many
# connections (simulated agents) to a release build on loopback, for SQLite and, when
# BAYLENS_BENCH_POSTGRES_URL is set, PostgreSQL. Each backend runs REPEATS times; the script
# prints requests/s and latency percentiles per run. Not a test: nothing is asserted.
#
#   bench/server/run.sh
#   BAYLENS_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test bench/server/run.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
duration="${DURATION:-15s}"; connections="${CONNECTIONS:-64}"; repeats="${REPEATS:-3}"
command -v wrk >/dev/null || { echo "bench: installing wrk (apt)"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet -p baylens-server
bin="$root/target/release/server"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
echo "wrk: $connections connections, 2 threads, $duration per run, $repeats runs per backend"

bench() {
  local backend=$1; shift
  local data; data=$(mktemp -d)
  "$bin" --data-dir "$data" "$@" agent add --name bench --bay BAY01 --token-file "$data/token" >/dev/null
  RUST_LOG=error "$bin" --data-dir "$data" "$@" serve --listen 127.0.0.1:18090 >"$data/log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 50); do curl -fs http://127.0.0.1:18090/healthz >/dev/null 2>&1 && break; sleep 0.2; done
  for r in $(seq 1 "$repeats"); do
    BAYLENS_BENCH_TOKEN=$(cat "$data/token") BAYLENS_BENCH_PREFIX="$backend$r$RANDOM" \
      wrk -t2 -c"$connections" -d"$duration" --latency -s bench/server/ingest.lua http://127.0.0.1:18090 \
      2>"$data/wrk.err" | awk -v b="$backend" -v r="$r" '
        /Requests\/sec/ {rps=$2}
        /^ +50%/ {p50=$2} /^ +90%/ {p90=$2} /^ +99%/ {p99=$2}
        /requests in/ {n=$1}
        END {printf "%s run %s: %s req/s (%s reports), latency p50 %s p90 %s p99 %s\n", b, r, rps, n, p50, p90, p99}'
    if [ -s "$data/wrk.err" ]; then echo "  non-201 answers:"; sort "$data/wrk.err" | uniq -c | head -3; fi
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
}

bench sqlite
if [ -n "${BAYLENS_BENCH_POSTGRES_URL:-}" ]; then
  schema="bench_$$"
  PGOPTIONS="-c client_min_messages=warning" psql -q "$BAYLENS_BENCH_POSTGRES_URL" -c "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema"
  sep='?'; [[ "$BAYLENS_BENCH_POSTGRES_URL" == *\?* ]] && sep='&'
  bench postgres --database-url "${BAYLENS_BENCH_POSTGRES_URL}${sep}options=-c%20search_path%3D${schema}"
  PGOPTIONS="-c client_min_messages=warning" psql -q "$BAYLENS_BENCH_POSTGRES_URL" -c "DROP SCHEMA $schema CASCADE"
fi
