#!/usr/bin/env bash
# Training data for the domain-randomised concealment model (issue "Site adaptation", item 4).
#
#   models/train/concealment_data.sh DATA
#
# DATA/train: 1,500 mixed loads from scanner-sim's own scanner, in 15 batches of 100 (seeds
# 1100-1114), each batch at its own pixel pitch, horizontal and vertical drawn apart from 4 to
# 15 mm (three batches at the native 10 mm). The detector is varied per scan in Python
# (`train_xray_concealment.py --randomise`). DATA/val: 300 loads at 10 mm (seed 2000), as for
# the first model. No other scanner profile is used: mobile-d stays the development profile,
# portal-b, gantry-c and linac-e stay held out.
set -euo pipefail
out=${1:?usage: concealment_data.sh DATA}
root=$(cd "$(dirname "$0")/../.." && pwd)
sim=${SIM:-$root/target/release/scanner-sim}
[ -x "$sim" ] || { echo "build it first: cargo build --release -p scanner-sim" >&2; exit 1; }
# Pitches (horizontal vertical), fixed here so that the data is the same on every machine.
pitches=(
  "10 10" "10 10" "10 10" "4 4" "5 5" "6 8" "7.5 7.5" "8 6" "8 12"
  "12 8" "12.5 12.5" "15 15" "5 10" "6 6" "14 9"
)
for i in "${!pitches[@]}"; do
  read -r px py <<< "${pitches[$i]}"
  dir="$out/train/b$(printf %02d "$i")"
  [ -f "$dir/truth.json" ] && continue
  "$sim" generate --scenario mixed --count 100 --seed $((1100 + i)) --out "$dir" --masks --quiet \
    --pitch-mm "$px" --pitch-vertical-mm "$py"
done
[ -f "$out/val/truth.json" ] || \
  "$sim" generate --scenario mixed --count 300 --seed 2000 --out "$out/val" --masks --quiet
echo "wrote $out/train (15 x 100) and $out/val (300)"
