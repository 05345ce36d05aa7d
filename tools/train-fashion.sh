#!/usr/bin/env bash
# Trains the shipped Fashion-MNIST models with `inverse-set train` and
# `inverse-set train-generator` and writes them into Models/fashion/ (seeded:
# the solvers fix random_seed): classifier.caffemodel, generator.caffemodel,
# fc6_code_upper_bound.txt (per unit min(max, mean + 3 std) of fc6 on the
# training set), fc6_code_mean.txt, pipeline.json, and evaluation.json (the
# figures the README quotes; the generator's OpenCV figures when OpenCV is
# installed: pip install "opencv-python-headless<5" scipy).
# Usage (from anywhere): bash tools/train-fashion.sh [--skip-classifier]
# Takes about an hour on 2 cores (classifier 15 min, generator phase A 21 min,
# phase B about 25 min). Intermediate snapshots go to
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

echo "== generator: inverse-set train-generator (phase A: image and fc6 feature losses; phase B: adversarial)"
t2=$(seconds)
# Writes the generator's prototxts (the shipped ones), trains both phases,
# keeps the generator's layers (generator.caffemodel), measures the fc6 code
# box over the 60,000 training images and writes pipeline.json.
$bin train-generator $dir/classifier_deploy.prototxt --weights $dir/classifier.caffemodel \
  --data /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --out $dir --labels $dir/labels.txt
t3=$(seconds)

echo "== reconstructions G(E(x)) classified again (10,000 test images)"
rec_json=$($bin score $dir/reconstruction_eval.prototxt \
  --weights $dir/classifier.caffemodel,$dir/generator.caffemodel --iterations 100 | tail -n 1)

opencv_json=null
if python3 -c "import cv2, scipy" 2>/dev/null; then
  echo "== the generator measured with OpenCV's Caffe importer (2,000 test images)"
  python3 tools/reference/measure_generator.py --json "$work/opencv.json" >/dev/null
  opencv_json=$(cat "$work/opencv.json")
fi

cat > $dir/evaluation.json <<EOF
{"classifier_test": $acc_json,
 "reconstruction_test": $rec_json,
 "generator_opencv": $opencv_json,
 "classifier_train_seconds": $((t1 - t0)),
 "generator_train_seconds": $((t3 - t2))}
EOF
cat $dir/evaluation.json
