#!/usr/bin/env bash
# The demo: a server, one edge agent and the scanner simulator, all under .demo/.
# Prints the review-queue URL and one-time logins; Ctrl-C stops everything. The server runs with
# --demo (plain HTTP, so session cookies are not marked Secure).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
port="${BAYLENS_DEMO_PORT:-8080}"
interval="${BAYLENS_DEMO_INTERVAL:-4}"
demo="$root/.demo"

echo "demo: building (release; the first build takes a few minutes)"
cargo build --release --quiet -p baylens-server -p edge-agent -p scanner-sim
bin="$root/target/release"
export ORT_DYLIB_PATH="$root/.ort/libonnxruntime.so"

# A fresh demo every time: a new database, new agent token, new one-time password.
rm -rf "$demo"
mkdir -p "$demo/drop"
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20)
# One password for the demo's three people, new on every run; production has no demo users.
for who in "supervisor --role supervisor" "officer1 --role officer --bay BAY01" "officer2 --role officer --bay BAY02"; do
  # shellcheck disable=SC2086
  BAYLENS_DEMO_PASSWORD="$password" "$bin/server" --data-dir "$demo/server" user add \
    --username $who --password-env BAYLENS_DEMO_PASSWORD >/dev/null
done
"$bin/server" --data-dir "$demo/server" agent add --name bay01-agent --bay BAY01 --token-file "$demo/agent.token" >/dev/null
# The traders' advance declarations, lodged as the simulator writes them (as a customs broker's
# system would), with the supervisor's API token.
"$bin/server" --data-dir "$demo/server" user token --username supervisor --days 1 --token-file "$demo/lodge.token" >/dev/null
mkdir -p "$demo/declarations/lodged"
# The officer's tablet: an access code for officer1, only its hash in the agent's config.
officer_line=$("$bin/edge-agent" officer-code --username officer1)
officer_code=$(echo "$officer_line" | sed -n 's/^code .*: //p')
officer_hash=$(echo "$officer_line" | sed -n 's/.*code_sha256 = "\([0-9a-f]*\)".*/\1/p')
camera_port="${BAYLENS_DEMO_CAMERA_PORT:-8554}"
tablet_port="${BAYLENS_DEMO_TABLET_PORT:-8091}"
cat > "$demo/agent.toml" <<TOML
bay = "BAY01"
drop_dir = "$demo/drop"
data_dir = "$demo/agent"
models_dir = "$root/models/onnx"
model_threads = 1
poll_interval_ms = 300
calibration_file = "$root/assets/calibration/scanner-sim.toml"
# Declarations are lodged a few scans ahead of their trucks; sync often so each scan finds its own.
declaration_sync_secs = 3
[lanes]
yellow = 0.35
red = 0.7
# The bay camera: scanner-sim's simulated IP camera, showing the container last scanned.
[camera]
source = "http://127.0.0.1:$camera_port/stream.mjpg"
ocr_models_dir = "$root/models/onnx/ocr"
max_fps = 8
# The officers' tablet page, served by the agent (works when the server is away).
[tablet]
listen = "127.0.0.1:$tablet_port"
officers = [{ username = "officer1", code_sha256 = "$officer_hash" }]
[server]
url = "http://127.0.0.1:$port"
token_file = "$demo/agent.token"
max_backoff_secs = 30
TOML

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

RUST_LOG="${RUST_LOG:-info}" "$bin/server" --data-dir "$demo/server" serve --demo --listen "127.0.0.1:$port" >"$demo/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { echo "demo: the server did not start; see $demo/server.log" >&2; exit 1; }
"$bin/edge-agent" run --config "$demo/agent.toml" >"$demo/agent.log" 2>&1 &
pids+=($!)
(
  while true; do
    for f in "$demo"/declarations/*.json; do
      [ -e "$f" ] || continue
      curl -fs -H "Authorization: Bearer $(cat "$demo/lodge.token")" -H 'Content-Type: application/json' \
        --data @"$f" "http://127.0.0.1:$port/api/v1/declarations" >/dev/null \
        || echo "demo: lodging $(basename "$f") failed" >&2
      mv "$f" "$demo/declarations/lodged/"
    done
    sleep 0.3
  done
) &
pids+=($!)
# Declarations are written five scans ahead of their scans (pre-arrival lodging); the agent syncs
# them every few seconds, so each scan is checked at the bay against its own declaration.
"$bin/scanner-sim" feed --drop "$demo/drop" --declarations "$demo/declarations" --lead 5 --interval "$interval" --seed "$RANDOM" --bay BAY01 --camera "127.0.0.1:$camera_port" &
pids+=($!)

cat <<MSG

  BayLens demo is running.
  Review queue:  http://127.0.0.1:$port/queue
  Log in as:     supervisor / $password   (decides; sees every bay)
                 officer1 or officer2, same password (officers of BAY01 / BAY02; the feed is BAY01)
                 one-time demo password, new on every run
  Open a case:   the viewer stacks the bay's overlay layers over the contrast-enhanced scan
                 (material map, expected cargo from the declaration, heat map, findings), each
                 with a toggle and a legend; "Why this risk" shows what each finding contributed.
  Bay tablet:    http://127.0.0.1:$tablet_port/   access code $officer_code (officer1)
                 live camera view with the scan's findings drawn on the container, the container
                 code read by the camera, findings, declaration; record seal and examination
  AR stream:     ws://127.0.0.1:$tablet_port/api/v1/overlay/stream (Authorization: Bearer <code>;
                 schema at http://127.0.0.1:$tablet_port/overlay-stream.schema.json)
  Bay status:    $bin/edge-agent status --config $demo/agent.toml
  Logs:       $demo/server.log, $demo/agent.log
  Press Ctrl-C to stop.

MSG
wait "${pids[0]}"
