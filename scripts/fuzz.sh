#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer + AddressSanitizer) of the parsers that take outside input:
#   sidecar         the scan sidecar (baylens.scan/1)
#   declaration     advance declarations (baylens.declaration/1)
#   container_code  ISO 6346 codes (and that what parses re-parses to itself)
#   image16         the agent's 16-bit PNG/TIFF ingest path
#
#   scripts/fuzz.sh                     # every target, 10 minutes each
#   scripts/fuzz.sh declaration 60      # one target, 60 seconds
#
# The seed corpora are committed in fuzz/corpus/<target>; inputs found while fuzzing go to
# fuzz/work/<target> (ignored; copy the interesting ones into the seeds). A crash leaves its input in fuzz/artifacts/<target>/:
# fix it and keep it as a regression test. cargo-fuzz needs nightly features; this machine has
# only the stable toolchain, so RUSTC_BOOTSTRAP=1 unlocks them. Not part of ./baylens test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$PWD/.ort/libonnxruntime.so}"
targets=("${1:-sidecar declaration container_code image16}")
seconds="${2:-600}"
for t in ${targets[@]}; do
  echo "== fuzz $t for ${seconds}s"
  mkdir -p "fuzz/work/$t"
  cargo fuzz run --fuzz-dir fuzz "$t" "fuzz/work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 2>&1 \
    | tee "fuzz/$t.log" | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss|==[0-9]+==ERROR|SUMMARY)" || true
  grep -q "Done [0-9]* runs\|DONE" "fuzz/$t.log" || { echo "fuzz: $t did not finish cleanly; see fuzz/$t.log"; exit 1; }
done
