#!/usr/bin/env bash
# Image upload throughput: N reports ingested, then their full-resolution previews (a real
# 40' scan preview from the agent, PNG) PUT by 8 parallel uploaders over loopback to a release
# server on SQLite with the local image store. Prints MB/s. Not a test.
#
#   bench/server/upload.sh [N=300] [PNG]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
n="${1:-300}"
cargo build --release --quiet -p baylens-server -p scanner-sim -p edge-agent
bin="$root/target/release/server"
data=$(mktemp -d); trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
png="${2:-}"
if [ -z "$png" ]; then
  # A full-size scan's preview, as the agent makes it.
  target/release/scanner-sim generate --count 1 --seed 3 --container 40 --truck yes --out "$data/scan" --quiet >/dev/null
  ORT_DYLIB_PATH="$root/.ort/libonnxruntime.so" target/release/edge-agent analyze "$data"/scan/BAY01-*.json \
    --overlay "$data/overlay" >/dev/null 2>&1 || true
  png=$(ls "$data"/overlay/*/scan.png)
fi
"$bin" --data-dir "$data/server" agent add --name bench --bay BAY01 --token-file "$data/token" >/dev/null
RUST_LOG=error "$bin" --data-dir "$data/server" serve --listen 127.0.0.1:18092 >"$data/log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do curl -fs http://127.0.0.1:18092/healthz >/dev/null 2>&1 && break; sleep 0.2; done
token=$(cat "$data/token"); now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
for i in $(seq 1 "$n"); do
  curl -fs -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"contract\":\"baylens.report/1\",\"report_id\":\"r-$i\",\"scan_id\":\"BAY01-up-$i\",\"bay\":\"BAY01\",\"captured_at\":\"$now\",\"analysed_at\":\"$now\",\"width\":2040,\"height\":450,\"model\":{\"name\":\"m\",\"sha256\":\"00\",\"max_probability\":0.1,\"flagged_fraction\":0,\"inference_ms\":1},\"findings\":[],\"risk\":0.1,\"lane\":\"green\"}" \
    http://127.0.0.1:18092/api/v1/reports
done
size=$(stat -c %s "$png")
start=$(date +%s.%N)
seq 1 "$n" | xargs -P 8 -I{} curl -fs -o /dev/null -X PUT -H "Authorization: Bearer $token" \
  -H 'Content-Type: image/png' --data-binary @"$png" http://127.0.0.1:18092/api/v1/scans/BAY01-up-{}/preview
end=$(date +%s.%N)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%d)"
python3 -c "n=$n; s=$size; t=$end-$start; print(f'{n} previews of {s/1024:.0f} kB in {t:.2f} s: {n*s/t/1e6:.1f} MB/s, {n/t:.0f} uploads/s (8 parallel)')"
stored=$(find "$data/server/images/scans" -name preview.png | wc -l)
echo "previews stored: $stored of $n"
