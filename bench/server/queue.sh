#!/usr/bin/env bash
# The case queue at scale: a release server over a SQLite database seeded with N cases
# (bench/server/seed_cases.py), then wrk against the queue API and page as a supervisor and as an
# officer, reporting p50/p99 latency; and the server's peak RSS. Not a test.
#
#   bench/server/queue.sh [N...]      (default: 100000 1000000)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000)
command -v wrk >/dev/null || { echo "bench: installing wrk (apt)"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet -p baylens-server
bin="$root/target/release/server"
port=18091
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
for n in "${sizes[@]}"; do
  data=$(mktemp -d)
  export BENCH_PW="queue bench password"
  "$bin" --data-dir "$data" user add --username sup --role supervisor --password-env BENCH_PW >/dev/null
  "$bin" --data-dir "$data" user add --username off --role officer --bay BAY07 --password-env BENCH_PW >/dev/null
  "$bin" --data-dir "$data" agent add --name bench --bay BAY01 --token-file "$data/agent.token" >/dev/null
  "$bin" --data-dir "$data" user token --username sup --days 1 --token-file "$data/sup.token" >/dev/null
  "$bin" --data-dir "$data" user token --username off --days 1 --token-file "$data/off.token" >/dev/null
  t0=$(date +%s); python3 bench/server/seed_cases.py "$data/baylens.db" "$n" >/dev/null; t1=$(date +%s)
  RUST_LOG=error "$bin" --data-dir "$data" serve --demo --listen 127.0.0.1:$port >"$data/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs http://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.2; done
  session=$(curl -fs -H 'Content-Type: application/json' -d "{\"username\":\"sup\",\"password\":\"$BENCH_PW\"}" \
    http://127.0.0.1:$port/api/v1/session | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  echo "$n cases (seeded in $((t1 - t0)) s; database $(du -h "$data/baylens.db" | cut -f1)):"
  run() {
    local what=$1 url=$2; shift 2
    wrk -t2 -c8 -d10s --latency "$@" "http://127.0.0.1:$port$url" | awk -v w="$what" '
      /Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$0}
      END {printf "  %-44s %8s req/s  p50 %-8s p99 %-8s %s\n", w, rps, p50, p99, bad}'
  }
  run "API queue, supervisor, by risk" "/api/v1/cases?sort=risk" -H "Authorization: Bearer $(cat "$data/sup.token")"
  run "API queue, supervisor, open red cases" "/api/v1/cases?status=open&lane=red" -H "Authorization: Bearer $(cat "$data/sup.token")"
  run "API queue, officer of one bay" "/api/v1/cases" -H "Authorization: Bearer $(cat "$data/off.token")"
  run "API search by container prefix" "/api/v1/cases?container=MSCU0042" -H "Authorization: Bearer $(cat "$data/sup.token")"
  run "queue page (HTML), supervisor" "/queue" -H "Cookie: baylens_session=$session"
  echo "  server peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MB"}')"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
done
