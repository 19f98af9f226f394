#!/usr/bin/env bash
# Site adaptation, measured: for each scanner profile the concealment model never saw in
# training, 100 cleared loads (80 honest, seed 971; 20 empty, seed 972) and a phantom (seed 1)
# to commission and adapt on, and 300 loads to measure on that nothing was fitted or adapted
# on (60 honest, 40 empty, 100 concealment, 100 compartment; seeds 981-984). BAYLENS_CLEARED_SEED
# and BAYLENS_MEASURE_SEED move the seeds (cleared honest, +1 empty; measured, +0 to +3). Three
# states:
#   base        the shipped model and calibration;
#   calibrated  "Any scanner": phantom calibration, then edge-agent calibrate --cleared;
#   adapted     models/train/adapt_site.py on the same 100 cleared loads, projecting with the
#               physics fitted from the phantom (its model and the calibration it writes; the
#               base model with that calibration where the command kept the base).
# Counted per load: a concealed_object finding (false alarm on honest and empty loads; on
# the others, detection when it overlaps what was hidden).
# Usage: bench/site_adaptation/run.sh  (BAYLENS_PROFILES, default "portal-b gantry-c";
# BAYLENS_SIM_ARGS, more arguments for every phantom and load, e.g. "--pitch-mm 12
# --pitch-vertical-mm 8" for the development profile at a held-out scanner's pixels;
# BAYLENS_ADAPT_ARGS, more arguments for adapt_site.py, e.g. "--steps 1000 --lr 4e-4";
# PYTHON, default /tmp/train-venv/bin/python with models/train/requirements.txt;
# BAYLENS_MODEL, a candidate base model with its .sha256 beside it, measured in place of the
# shipped one in every state, before it ships).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.ort/libonnxruntime.so}
python=${PYTHON:-/tmp/train-venv/bin/python}
sim=target/release/scanner-sim; agent=target/release/edge-agent
out=${BAYLENS_BENCH_DIR:-target/site-adaptation}
at=2026-12-01T08:00:00Z
sim_args=${BAYLENS_SIM_ARGS:-}
cleared_seed=${BAYLENS_CLEARED_SEED:-971}; measure_seed=${BAYLENS_MEASURE_SEED:-981}
base=(); base_py=()
if [ -n "${BAYLENS_MODEL:-}" ]; then base=(--model "$BAYLENS_MODEL"); base_py=(--base "$BAYLENS_MODEL"); fi
mkdir -p "$out"
for profile in ${BAYLENS_PROFILES:-portal-b gantry-c}; do
  d="$out/$profile"; rm -rf "$d"; mkdir -p "$d"
  $sim phantom --profile "$profile" $sim_args --seed 1 --out "$d/phantom" >/dev/null
  $agent calibrate --phantom "$d/phantom/BAY01-phantom-$profile-s1.json" --scanner "$profile" --out "$d/phantom.toml" | tail -1
  $sim generate --profile "$profile" $sim_args --scenario honest --count 80 --seed "$cleared_seed" --out "$d/cleared" --quiet --captured-at $at >/dev/null
  $sim generate --profile "$profile" $sim_args --scenario empty --count 20 --seed $((cleared_seed + 1)) --out "$d/ce" --quiet --captured-at $at >/dev/null
  cp "$d"/ce/BAY01-* "$d/cleared/"; cp "$d"/ce/declarations/* "$d/cleared/declarations/"; rm -rf "$d/ce"
  mkdir -p "$d/measure"
  k=0
  for s in honest:60 empty:40 concealment:100 compartment:100; do
    $sim generate --profile "$profile" $sim_args --scenario "${s%%:*}" --count "${s##*:}" --seed $((measure_seed + k)) --out "$d/m-${s%%:*}" --quiet --captured-at $at >/dev/null
    k=$((k + 1))
  done
  $agent calibrate --cleared "$d/cleared" --calibration "$d/phantom.toml" --out "$d/calibrated.toml" "${base[@]}" | tail -3
  /usr/bin/time -f "adaptation: %e s, %M KB" "$python" models/train/adapt_site.py --cleared "$d/cleared" \
      --phantom "$d/phantom/BAY01-phantom-$profile-s1.json" --calibration "$d/phantom.toml" --out "$d/site" "${base_py[@]}" ${BAYLENS_ADAPT_ARGS:-} > "$d/adapt.log" 2>&1 || { tail -20 "$d/adapt.log"; exit 1; }
  grep -m1 -E "^- \*\*(Adopted|Not adopted)" "$d/adapt.log" | cut -c1-60; tail -1 "$d/adapt.log"
  for state in base calibrated adapted; do
    case $state in
      base) args=("${base[@]}");;
      calibrated) args=(--calibration "$d/calibrated.toml" "${base[@]}");;
      adapted)
        if [ -f "$d/site/xray-concealment.onnx" ]; then
          args=(--calibration "$d/site/scanner.toml" --model "$d/site/xray-concealment.onnx")
        else
          args=(--calibration "$d/site/scanner.toml" "${base[@]}")
        fi;;
    esac
    for s in honest empty concealment compartment; do
      $agent analyze "$d/m-$s"/BAY01-*.json --json "${args[@]}" > "$d/$state.$s.json"
    done
  done
  python3 - "$d" "$profile" <<'EOF'
import json, sys
d, profile = sys.argv[1], sys.argv[2]

def overlaps(r, b):
    x, y, w, h = b
    return r is not None and r["x"] < x + w and x < r["x"] + r["width"] and r["y"] < y + h and y < r["y"] + r["height"]

print(f"| profile | state | honest | empty | concealment | compartment |")
for state in ("base", "calibrated", "adapted"):
    cells = []
    for s in ("honest", "empty", "concealment", "compartment"):
        truth = {e["scan_id"]: e for e in json.load(open(f"{d}/m-{s}/truth.json"))}
        n = k = 0
        for r in json.load(open(f"{d}/{state}.{s}.json")):
            rep = r["report"]
            regions = [f.get("region") for f in rep["findings"] if f["kind"] == "concealed_object"]
            if s in ("honest", "empty"):
                n += bool(regions)
            else:
                n += any(overlaps(g, b) for g in regions for b in truth[rep["scan_id"]]["concealed_boxes"])
            k += 1
        cells.append(f"{n}/{k}")
    print(f"| {profile} | {state} | " + " | ".join(cells) + " |")
EOF
done
