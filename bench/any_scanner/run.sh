#!/usr/bin/env bash
# Any scanner, measured: for each profile, the shipped calibration ("out of the box"), the
# phantom's ("after phantom calibration"), and the phantom's with the site's cleared-scan
# settings. Fitted on seeds 101/102 (cleared) and 1 (phantom); measured on seeds 202-208 (one
# per scenario), which nothing was fitted on. Usage: bench/any_scanner/run.sh [FIT_HONEST] [FIT_EMPTY] [PER_SCENARIO]
# (defaults 160 40 30: 200 cleared loads and 210 measured per profile). BAYLENS_PROFILES picks
# the profiles (mobile-d is the development profile; portal-b and gantry-c are held out).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.ort/libonnxruntime.so}
honest=${1:-160}; empty=${2:-40}; per=${3:-30}
sim=target/release/scanner-sim; agent=target/release/edge-agent
out=${BAYLENS_BENCH_DIR:-target/any-scanner}
rm -rf "$out"; mkdir -p "$out"
at=2026-12-01T08:00:00Z
# Seeds: BAYLENS_FIT_SEED (cleared honest; +1 for cleared empty) and BAYLENS_MEASURE_SEED (one
# scenario each, upwards). Development runs use other seeds than the reported ones.
fit=${BAYLENS_FIT_SEED:-101}; measure=${BAYLENS_MEASURE_SEED:-202}
for profile in ${BAYLENS_PROFILES:-scanner-sim portal-b gantry-c}; do
  d="$out/$profile"
  $sim phantom --profile "$profile" --seed 1 --out "$d/phantom" >/dev/null
  $sim generate --profile "$profile" --scenario honest --count "$honest" --seed "$fit" --out "$d/cleared" --quiet --captured-at $at >/dev/null
  $sim generate --profile "$profile" --scenario empty --count "$empty" --seed $((fit + 1)) --out "$d/cleared-empty" --quiet --captured-at $at >/dev/null
  # One cleared folder: the empty loads' files and declarations join the honest ones.
  cp "$d"/cleared-empty/BAY01-* "$d/cleared/"; cp "$d"/cleared-empty/declarations/* "$d/cleared/declarations/"
  # The measured scans: each scenario on its own seed (202, 203, ...), one folder.
  mkdir -p "$d/measure/declarations"
  k=0
  for s in honest empty mismatch undeclared false_empty concealment compartment; do
    $sim generate --profile "$profile" --scenario $s --count "$per" --seed $((measure + k)) --out "$d/m-$s" --quiet --captured-at $at >/dev/null
    cp "$d"/m-$s/BAY01-* "$d/measure/"; cp "$d"/m-$s/declarations/* "$d/measure/declarations/"
    k=$((k + 1))
  done
  python3 -c 'import json,sys,glob; print(json.dumps(sum((json.load(open(t)) for t in glob.glob(sys.argv[1] + "/m-*/truth.json")), [])))' "$d" > "$d/measure/truth.json"
  echo "== $profile: out of the box -> after cleared-scan settings (shipped calibration)"
  $agent calibrate --cleared "$d/cleared" --anomalies "$d/measure" --out "$d/site-shipped.toml"
  $agent calibrate --phantom "$d/phantom/BAY01-phantom-$profile-s1.json" --scanner "$profile" --out "$d/phantom.toml" | tail -1
  echo "== $profile: after phantom calibration -> after phantom and cleared-scan settings"
  $agent calibrate --cleared "$d/cleared" --calibration "$d/phantom.toml" --anomalies "$d/measure" --out "$d/site.toml"
done
