#!/usr/bin/env bash
# API fuzzing: schemathesis generates requests from server/openapi.json and checks every answer
# against the document (no 5xx, status codes, content types and bodies as documented). Runs a
# debug server on a fresh SQLite store with an admin API token, one agent and a seeded case.
#
#   scripts/api-fuzz.sh                 # 100 examples per operation (a few minutes)
#   BAYLENS_FUZZ_EXAMPLES=1000 scripts/api-fuzz.sh
#
# Reports (JUnit) go to target/api-fuzz/. Not part of ./baylens test: it is long and random.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
examples="${BAYLENS_FUZZ_EXAMPLES:-100}"
port="${BAYLENS_FUZZ_PORT:-18080}"
venv="$root/.tools/apifuzz"
req="$root/scripts/api-fuzz-requirements.txt"
stamp="$venv/.installed-$(sha256sum "$req" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "api-fuzz: installing schemathesis (PyPI) into .tools/apifuzz"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  rm -f "$venv"/.installed-*; touch "$stamp"
fi
cargo build --quiet -p baylens-server
bin="$root/target/debug/server"
out="$root/target/api-fuzz"
data=$(mktemp -d)
rm -rf "$out"; mkdir -p "$out"
trap 'kill $server 2>/dev/null || true; rm -rf "$data"' EXIT
export BAYLENS_FUZZ_PASSWORD="fuzz-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
"$bin" --data-dir "$data" user add --username admin --role admin --password-env BAYLENS_FUZZ_PASSWORD >/dev/null
"$bin" --data-dir "$data" user add --username sup --role supervisor --password-env BAYLENS_FUZZ_PASSWORD >/dev/null
"$bin" --data-dir "$data" user token --username admin --token-file "$data/admin.token" >/dev/null
"$bin" --data-dir "$data" user token --username sup --token-file "$data/sup.token" >/dev/null
"$bin" --data-dir "$data" agent add --name agent-1 --bay BAY01 --token-file "$data/agent.token" >/dev/null
RUST_LOG=warn "$bin" --data-dir "$data" serve --listen "127.0.0.1:$port" >"$out/server.log" 2>&1 &
server=$!
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
admin=$(cat "$data/admin.token"); agent=$(cat "$data/agent.token")
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# One declaration and one case with an image, so that ids in paths can hit real data.
sed "s/2027-06-01T08:00:00Z/$now/" assets/declarations/example.json \
  | curl -fs -o /dev/null -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' --data @- "http://127.0.0.1:$port/api/v1/declarations"
curl -fs -o /dev/null -H "Authorization: Bearer $agent" -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/v1/reports" --data @- <<JSON
{"contract":"baylens.report/1","report_id":"fuzz-1","scan_id":"BAY01-fuzz-1","bay":"BAY01","captured_at":"$now","analysed_at":"$now",
 "container_code":"CSQU3054383","width":416,"height":208,
 "model":{"name":"concealment-v1","sha256":"ab","max_probability":0.9,"flagged_fraction":0.01,"inference_ms":20.0},
 "findings":[{"kind":"concealed_object","score":0.9,"region":{"x":10,"y":10,"width":20,"height":20},"message":"dense object"}],
 "risk":0.9,"lane":"red"}
JSON
# Three passes, each as the role that may call the operations: admin (everything, most get
# 403 where another role is needed), supervisor (cases, declarations), agent (agent endpoints).
# DELETE /api/v1/session would end the token the run itself uses.
run_pass() {
  local name=$1 token=$2; shift 2
  echo "api-fuzz: pass '$name', $examples examples per operation against http://127.0.0.1:$port"
  "$venv/bin/schemathesis" run server/openapi.json \
    --url "http://127.0.0.1:$port" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --exclude-operation-id deleteSession \
    --max-examples "$examples" \
    --report junit --report-dir "$out/$name" \
    --workers 2 "$@" 2>&1 | tee "$out/$name.txt"
  return "${PIPESTATUS[0]}"
}
failed=0
run_pass admin "$admin" || failed=1
run_pass supervisor "$(cat "$data/sup.token")" --include-tag cases --include-tag declarations || failed=1
run_pass agent "$agent" --include-tag agents || failed=1
if grep -q ' ERROR' "$out/server.log"; then
  echo "api-fuzz: the server logged errors, see $out/server.log"; failed=1
fi
for pass in admin supervisor agent; do
  echo "api-fuzz: $pass: $(grep -E 'generated, ' "$out/$pass.txt" | tail -1 | sed 's/^ *//')"
done
exit "$failed"
