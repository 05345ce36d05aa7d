#!/usr/bin/env bash
# What each departure of the data variant from the paper does: the data variant,
# then the same with one part switched off (docs/sampler.md quotes the table).
# n = 500, seed 1, on the neurons of tools/compare-methods.sh (CASES=... for others).
#   bash tools/ablation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product inverse-set >/dev/null
bin=.build/release/inverse-set
out=${OUT:-out/ablation}
n=${N:-500}
mkdir -p "$out"
read -r -a cases <<< "${CASES:-fc8:7=10:15 fc6:6=2:3 conv5:18=1:2}"
variants=("data|"
          "no prior (random starts, no realism)|prior=0"
          "no realism constraint|realism=0"
          "kernel repulsion instead of squared distances|squared=0"
          "no spacing at acceptance|spacing=0"
          "no band thirds|stratify=0"
          "walks not limited|max_walk=100000"
          "no renewal (walk until stalled)|lifetime=100000 max_walk=100000")
python3 tools/sample_table.py header
for c in "${cases[@]}"; do
  for v in "${variants[@]}"; do
    name=${v%%|*}; tune=${v#*|}
    args=()
    for t in $tune; do args+=(--tune "$t"); done
    dir="$out/$(echo "$c" | tr ':=@,' '____')-$(echo "$name" | tr -c 'a-z0-9' '_')"
    rm -rf "$dir"
    s=$($bin sample --neuron "$c" -n "$n" --seed 1 ${args[@]+"${args[@]}"} --out "$dir" 2>/dev/null | tail -n 1 || true)
    python3 tools/sample_table.py row "$c" "$name" "$dir" "$s"
  done
done
