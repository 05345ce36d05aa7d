#!/usr/bin/env bash
# The README's sampler-step figures: one step of the paper's pipeline
# (Models/caffenet-fc6/pipeline.json: the fc6 generator, the crop, CaffeNet,
# one backward from fc8:980 and E = fc6 to the codes, K = 10) timed by
# `inverse-set bench --pipeline` against its GEMM lower bound, with PyTorch CPU
# (the same step in one autograd graph, tools/reference/peer_bench.py) in the
# same run when the oracle environment has torch. The paper's weights are a
# download, so both nets get random weights from `inverse-set init` (timing
# does not depend on them).
#   bash tools/bench-pipeline.sh [ORACLE_DIR]      (RUNS=N repeats the pair, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
oracle="${1:-$HOME/.cache/caffe-oracle}"
runs="${RUNS:-3}"
swift build -c release --product inverse-set >/dev/null
bin=.build/release/inverse-set
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" init Models/caffenet/deploy.prototxt --out "$work/caffenet.caffemodel" >/dev/null
"$bin" init Models/fc6_generator/generator.prototxt --out "$work/generator.caffemodel" >/dev/null
# The shipped pipeline with its paths made absolute and the weights replaced.
python3 - "$work" <<'EOF'
import json, os, sys
work = sys.argv[1]
src = os.path.abspath("Models/caffenet-fc6/pipeline.json")
base = os.path.dirname(src)
p = json.load(open(src))
def absolute(node):
    if isinstance(node, dict):
        return {k: (os.path.normpath(os.path.join(base, v)) if isinstance(v, str) and v.startswith("..") else absolute(v))
                for k, v in node.items()}
    return node
p = absolute(p)
p["generator"]["weights"] = os.path.join(work, "generator.caffemodel")
p["classifier"]["weights"] = os.path.join(work, "caffenet.caffemodel")
json.dump(p, open(os.path.join(work, "pipeline.json"), "w"), indent=2)
EOF
have_torch=0
if [ -f "$oracle/env.sh" ]; then
  # shellcheck disable=SC1091
  source "$oracle/env.sh"
  "$CAFFE_PYTHON" -c "import torch" 2>/dev/null && have_torch=1
fi
field() { echo "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"$2\"])"; }
ratio() { [ "$1" = - ] && echo - || python3 -c "print(round($1/$2, 2))"; }
printf "%-4s %10s %10s %8s %10s %8s %9s %9s\n" run bound_ms ours_ms ratio torch_ms ratio ours_MB torch_MB
for run in $(seq 1 "$runs"); do
  ours=$("$bin" bench --pipeline "$work/pipeline.json" --batch 10 --neuron fc8:980 --threads 2 | tail -n 1)
  bound=$(field "$ours" bound_ms); ms=$(field "$ours" step_ms); rss=$(field "$ours" peak_rss_mb)
  torch_ms=-; torch_mb=-
  if [ "$have_torch" = 1 ]; then
    peer=$("$CAFFE_PYTHON" tools/reference/peer_bench.py Models/fc6_generator/generator.prototxt \
      --classifier Models/caffenet/deploy.prototxt --peer torch --threads 2 --crop 14 --neuron fc8:980 --encoder fc6)
    torch_ms=$(field "$peer" step_ms); torch_mb=$(field "$peer" peak_rss_mb)
  fi
  printf "%-4s %10s %10s %8s %10s %8s %9s %9s\n" "$run" "$bound" "$ms" "$(ratio "$ms" "$bound")" \
    "$torch_ms" "$(ratio "$torch_ms" "$bound")" "$rss" "$torch_mb"
done
