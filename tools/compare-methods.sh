#!/usr/bin/env bash
# The README's comparison table: inverse-set vs am vs ppgn on the shipped
# Fashion-MNIST pipeline, for an fc8 class neuron, an fc6 unit and a conv5
# unit, each at one band, n = 100, seed 1. Prints a Markdown table; the sample
# folders go to ${OUT:-out/compare}.
#   bash tools/compare-methods.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product inverse-set >/dev/null
bin=.build/release/inverse-set
out=${OUT:-out/compare}
mkdir -p "$out"
# neuron=band: fc8 class 7 (sneaker), fc6 unit 6, conv5 channel 12 at the centre.
cases=("fc8:7=10:15" "fc6:6=2:3" "conv5:12=2:4")
echo "| neuron | method | in band | mean pairwise E distance | steps | seconds |"
echo "|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
  for m in inverse-set am ppgn; do
    dir="$out/$(echo "$c" | tr ':=' '__')-$m"
    rm -rf "$dir"
    s=$($bin sample --neuron "$c" -n 100 --seed 1 --method "$m" --out "$dir" 2>/dev/null | tail -n 1 || true)
    echo "$s" | python3 -c '
import json, sys
c, m = sys.argv[1], sys.argv[2]
try:
    j = json.loads(sys.stdin.read())
except Exception:
    print("| `%s` | %s | failed | | | |" % (c, m)); sys.exit()
print("| `%s` | %s | %.2f | %.2f | %d | %.1f |" % (c, m, j["in_band"], j["diversity"], j["steps"], j["seconds"]))' "$c" "$m"
  done
done
