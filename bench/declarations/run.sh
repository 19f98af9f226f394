#!/usr/bin/env bash
# Declaration import rate: N declarations (default 10,000) in each format BayLens reads
# (BayLens JSON, WCO DEC-DMS XML, UN/EDIFACT CUSCAR), lodged with `server declarations import`
# into a fresh SQLite store; the rate includes mapping, checking and the database.
# Usage: bench/declarations/run.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
n=${1:-10000}
cargo build --release --quiet -p baylens-server --bin server
out=${BAYLENS_BENCH_DIR:-target/bench-declarations}
rm -rf "$out"; mkdir -p "$out"
python3 bench/declarations/generate.py "$n" "$out"
for f in batch.json dec-dms.xml cuscar.edi; do
  rm -rf "$out/data-$f"
  start=$(date +%s.%N)
  said=$(BAYLENS_DATA_DIR="$out/data-$f" target/release/server declarations import "$out/$f")
  end=$(date +%s.%N)
  python3 -c "import sys; n,t=int(sys.argv[1]),float(sys.argv[3])-float(sys.argv[2]); print(f'{sys.argv[4]:12s} {n} declarations in {t:.2f} s: {n/t:,.0f} per second  ({sys.argv[5]})')" \
    "$n" "$start" "$end" "$f" "$said"
done
