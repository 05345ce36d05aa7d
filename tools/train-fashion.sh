#!/usr/bin/env bash
# Trains the shipped Fashion-MNIST models with `inverse-set train` and writes
# them into Models/fashion/ (seeded: the solvers fix random_seed):
#   classifier.caffemodel, generator.caffemodel, fc6_code_upper_bound.txt
#   (per unit min(max, mean + 3 std) of fc6 on the training set), fc6_code_mean.txt, and evaluation.json (the figures the README quotes).
# Usage (from anywhere): bash tools/train-fashion.sh [--skip-classifier]
# Takes about half an hour on 2 cores. Intermediate snapshots go to
# Models/fashion/work/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

skip_classifier=0
for a in "$@"; do
  case "$a" in
    --skip-classifier) skip_classifier=1 ;;
    *) echo "train-fashion: unknown option $a (known: --skip-classifier)" >&2; exit 2 ;;
  esac
done

bash tools/setup.sh
swift build -c release --product inverse-set
bin=.build/release/inverse-set
dir=Models/fashion
work=$dir/work
mkdir -p "$work"

seconds() { date +%s; }
t0=$(seconds)
if [ "$skip_classifier" = 0 ]; then
  echo "== classifier (Models/fashion/classifier_solver.prototxt)"
  $bin train $dir/classifier_solver.prototxt
  cp "$work/classifier_iter_7000.caffemodel" "$dir/classifier.caffemodel"
fi
t1=$(seconds)

echo "== classifier accuracy on the 10,000 test images"
acc_json=$($bin score $dir/classifier_train.prototxt --weights $dir/classifier.caffemodel --iterations 100 | tail -n 1)

echo "== fc6 code statistics over the 60,000 training images"
$bin score $dir/fc6_stats.prototxt --weights $dir/classifier.caffemodel --iterations 600 \
  --stats fc6 --stats-out "$work" | tail -n 2 | head -n 1
# The code box: per unit min(max, mean + 3 std) over the training set.
cp "$work/fc6.upper.txt" "$dir/fc6_code_upper_bound.txt"
cp "$work/fc6.mean.txt" "$dir/fc6_code_mean.txt"

echo "== generator (Models/fashion/generator_solver.prototxt, E and the feature net frozen)"
t2=$(seconds)
# The classifier's caffemodel covers E and the feature net only: the generator starts from its fillers.
$bin train $dir/generator_solver.prototxt --weights $dir/classifier.caffemodel --allow-missing-weights
t3=$(seconds)
# Keep only the generator's layers (the training net also holds frozen copies
# of the classifier).
$bin init $dir/generator_deploy.prototxt --weights "$work/generator_iter_6000.caffemodel" --out $dir/generator.caffemodel

echo "== reconstructions G(E(x)) classified again (10,000 test images)"
rec_json=$($bin score $dir/reconstruction_eval.prototxt \
  --weights $dir/classifier.caffemodel,$dir/generator.caffemodel --iterations 100 | tail -n 1)

cat > $dir/evaluation.json <<EOF
{"classifier_test": $acc_json,
 "reconstruction_test": $rec_json,
 "classifier_train_seconds": $((t1 - t0)),
 "generator_train_seconds": $((t3 - t2))}
EOF
cat $dir/evaluation.json
