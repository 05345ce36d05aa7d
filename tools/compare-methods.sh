#!/usr/bin/env bash
# The README's comparison: inverse-set (data variant, the default), the paper's
# algorithm (--variant paper), activation maximisation and PPGN on the shipped
# Fashion-MNIST pipeline, for an fc8 class unit, an fc6 unit and a conv5 unit,
# n = 500 (N=...), seed 1, K = 10; every folder judged against the real test
# images in the band (docs/evaluation.md). Prints a Markdown table; the sample
# folders go to ${OUT:-out/compare}. About 15 minutes on 2 cores (AM takes most).
#   bash tools/compare-methods.sh
#   CASES="fc8:0=5:10 fc6:18=1:2" METHODS="inverse-set paper" bash tools/compare-methods.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# BIN=path runs another build of the tool (e.g. a copy, while the tree is rebuilt).
if [ -z "${BIN:-}" ]; then swift build -c release --product inverse-set >/dev/null; fi
bin=${BIN:-.build/release/inverse-set}
out=${OUT:-out/compare}
n=${N:-500}
mkdir -p "$out"
# neuron=band: fc8 class 7 (sneaker), fc6 unit 6, conv5 channel 18 at the centre.
read -r -a cases <<< "${CASES:-fc8:7=10:15 fc6:6=2:3 conv5:18=1:2}"
read -r -a methods <<< "${METHODS:-inverse-set paper am ppgn}"
python3 tools/sample_table.py header
for c in "${cases[@]}"; do
  for m in "${methods[@]}"; do
    dir="$out/$(echo "$c" | tr ':=@,' '____')-$m"
    rm -rf "$dir"
    case $m in
      paper) args=(--method inverse-set --variant paper) ;;
      *) args=(--method "$m") ;;
    esac
    s=$($bin sample --neuron "$c" -n "$n" --seed 1 "${args[@]}" --out "$dir" 2>/dev/null | tail -n 1 || true)
    python3 tools/sample_table.py row "$c" "$m" "$dir" "$s"
  done
  python3 tools/sample_table.py control "$c" "$dir"
done
