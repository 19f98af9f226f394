#!/usr/bin/env bash
# The bay pipeline in Rust (edge-agent, example pipeline_stages) against the Python reference
# (bench/reference/pipeline.py: numpy, OpenCV, onnxruntime) on the same simulator scans, with the
# same thread count, alternating rounds after a warm-up. Prints per-stage medians, the ratio,
# ORT run() alone, the Rust pipeline's overhead beyond the model, and whether both found the
# same things.
#
#   bench/compare/run.sh [SCANS=40] [ROUNDS=3] [THREADS=2]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
scans="${1:-40}" rounds="${2:-3}" threads="${3:-2}"
venv="$root/target/bench-reference-venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "compare: creating the reference's virtual environment (first time only)"
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r bench/reference/requirements.txt
bash scripts/setup.sh
cargo build --release -q -p scanner-sim -p edge-agent --bins --example pipeline_stages
export ORT_DYLIB_PATH="$root/.ort/libonnxruntime.so"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
target/release/scanner-sim generate --count "$scans" --seed 21 --out "$work/scans" --quiet
sidecars=("$work"/scans/BAY01-*.json)
rust() {
  target/release/examples/pipeline_stages --models models/onnx --threads "$threads" \
    --declarations "$work/scans/declarations" --rounds 1 "${sidecars[@]}" >>"$work/rust.jsonl"
}
python() {
  "$venv/bin/python" bench/reference/pipeline.py --models models/onnx --threads "$threads" \
    --declarations "$work/scans/declarations" --rounds 1 "${sidecars[@]}" >>"$work/python.jsonl"
}
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then rust; python; else python; rust; fi
  echo "compare: round $r of $rounds done" >&2
done
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%Y-%m-%d)"
echo "scans: $scans simulator scans (mixed scenarios, seed 21) x $rounds rounds, $threads threads each"
python3 bench/compare/compare.py "$work/rust.jsonl" "$work/python.jsonl"
