#!/usr/bin/env bash
# Threat image projection, checked against the simulator: for each scanner profile, threats
# projected into cleared honest loads (`scanner-sim tip`) should be found by the concealment
# model about as often as the same kinds of threat rendered into scenes by the simulator
# itself, and the cleared loads themselves stay clean. Usage:
#   bench/tip/run.sh [CLEARED] [PER_KIND] [NATIVE]
# (defaults 60 cleared loads, 20 projections per kind, 40 native scans per scenario).
# BAYLENS_PROFILES picks the profiles. Seeds: cleared 711, projection 1, native 712/713;
# none of them is used for anything else.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.ort/libonnxruntime.so}
cleared=${1:-60}; per_kind=${2:-20}; native=${3:-40}
sim=target/release/scanner-sim; agent=target/release/edge-agent
out=${BAYLENS_BENCH_DIR:-target/tip-bench}
rm -rf "$out"; mkdir -p "$out"
at=2026-12-01T08:00:00Z
for profile in ${BAYLENS_PROFILES:-scanner-sim portal-b}; do
  d="$out/$profile"
  $sim generate --profile "$profile" --scenario honest --count "$cleared" --seed 711 --out "$d/cleared" --quiet --captured-at $at >/dev/null
  $sim tip --cleared "$d/cleared" --profile "$profile" --count $((7 * per_kind)) --seed 1 --out "$d/tip" --examples 0
  $sim generate --profile "$profile" --scenario concealment --count "$native" --seed 712 --out "$d/concealment" --quiet --captured-at $at >/dev/null
  $sim generate --profile "$profile" --scenario compartment --count "$native" --seed 713 --out "$d/compartment" --quiet --captured-at $at >/dev/null
  for set in cleared tip concealment compartment; do
    # Only the model matters here: no declarations, the shipped calibration.
    $agent analyze "$d/$set"/BAY01-*.json --json > "$d/$set.analysis.json"
  done
  python3 - "$d" "$profile" <<'EOF'
import json, sys
d, profile = sys.argv[1], sys.argv[2]

def found(set_name):
    """scan_id -> concealed_object regions."""
    out = {}
    for r in json.load(open(f"{d}/{set_name}.analysis.json")):
        rep = r["report"]
        out[rep["scan_id"]] = [f.get("region") for f in rep["findings"] if f["kind"] == "concealed_object"]
    return out

def overlaps(region, box):
    if region is None or box is None:
        return False
    x, y, w, h = box
    return region["x"] < x + w and x < region["x"] + region["width"] and \
        region["y"] < y + h and y < region["y"] + region["height"]

rows = []
clean = found("cleared")
flagged = sum(1 for v in clean.values() if v)
rows.append(("cleared honest loads (flagged)", flagged, len(clean)))
tip = found("tip")
by_kind = {}
for e in json.load(open(f"{d}/tip/truth.json")):
    hit = any(overlaps(r, b) for r in tip[e["scan_id"]] for b in e["concealed_boxes"])
    n, k = by_kind.get(e["variant"], (0, 0))
    by_kind[e["variant"]] = (n + hit, k + 1)
for kind, (n, k) in by_kind.items():
    rows.append((f"projected {kind}", n, k))
for scenario in ("concealment", "compartment"):
    f = found(scenario)
    n = k = 0
    for e in json.load(open(f"{d}/{scenario}/truth.json")):
        boxes = e["concealed_boxes"]
        n += any(overlaps(r, b) for r in f[e["scan_id"]] for b in boxes)
        k += 1
    rows.append((f"simulator's own {scenario}", n, k))
print(f"== {profile}")
for name, n, k in rows:
    print(f"| {profile} | {name} | {n}/{k} ({100 * n / max(k, 1):.0f} %) |")
EOF
done
