#!/usr/bin/env bash
# The README's performance table: `inverse-set bench` (batch 10, forward +
# backward to the input, 2 threads) on CaffeNet and the fc6 generator, with the
# peers measured in the same run: real BVLC Caffe (pycaffe, built by
# ../shared/oracle into ~/.cache/caffe-oracle) and PyTorch CPU where installed
# in that environment. Each figure is the median of repeats in one process;
# the lower bound is the nets' GEMM FLOPs at the SGEMM rate `bench` measures.
#   bash tools/bench-peers.sh [ORACLE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
oracle="${1:-$HOME/.cache/caffe-oracle}"
swift build -c release --product inverse-set >/dev/null
bin=.build/release/inverse-set
nets=(Models/caffenet/deploy.prototxt Models/fc6_generator/generator.prototxt)
have_caffe=0
if [ -f "$oracle/env.sh" ]; then
  # shellcheck disable=SC1091
  source "$oracle/env.sh"
  "$CAFFE_PYTHON" -c "import caffe" 2>/dev/null && have_caffe=1
fi
printf "%-40s %10s %10s %8s %12s %8s %12s %8s %9s\n" net bound_ms ours_ms ratio caffe_ms ratio torch_ms ratio ours_MB
for net in "${nets[@]}"; do
  ours=$($bin bench "$net" --batch 10 --backward --threads 2 | tail -n 1)
  bound=$(echo "$ours" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bound_ms"])')
  ms=$(echo "$ours" | python3 -c 'import json,sys; print(json.load(sys.stdin)["backward_ms"])')
  rss=$(echo "$ours" | python3 -c 'import json,sys; print(json.load(sys.stdin)["peak_rss_mb"])')
  caffe_ms=-; torch_ms=-
  if [ "$have_caffe" = 1 ]; then
    caffe_ms=$(OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$CAFFE_PYTHON" tools/reference/peer_bench.py "$net" --peer caffe | python3 -c 'import json,sys; print(json.load(sys.stdin)["fwd_bwd_ms"])')
    if "$CAFFE_PYTHON" -c "import torch" 2>/dev/null; then
      torch_ms=$("$CAFFE_PYTHON" tools/reference/peer_bench.py "$net" --peer torch --threads 2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["fwd_bwd_ms"])')
    fi
  fi
  ratio() { [ "$1" = - ] && echo - || python3 -c "print(round($1/$2, 2))"; }
  printf "%-40s %10s %10s %8s %12s %8s %12s %8s %9s\n" "$net" "$bound" "$ms" "$(ratio "$ms" "$bound")" \
    "$caffe_ms" "$(ratio "$caffe_ms" "$bound")" "$torch_ms" "$(ratio "$torch_ms" "$bound")" "$rss"
done
