#!/usr/bin/env bash
# Fuzzes the readers of user input with libFuzzer: the prototxt parser (with
# graph building and shape inference, as `inspect`), the caffemodel reader,
# the .npy reader and PNG decoding (with Caffe preprocessing). Each target
# runs for SECONDS (default 60), two at a time on two cores.
#
#   bash tools/fuzz.sh [SECONDS] [prototxt|caffemodel|npy|png ...]
#
# Build: the probe `inverse-set-fuzz` (Tests/Fuzz) with -sanitize=fuzzer,address
# into the scratch path .build-fuzz (git-ignored; incremental after the first
# build of a few minutes). Seeds: the shipped models and test fixtures (and small
# PNGs of every colour type from tools/fuzz_png_seeds.py), merged into
# .build-fuzz/corpus/FORMAT, which keeps what earlier runs found.
#
# A crash, an AddressSanitizer report, an input slower than 10 s or a process
# above 2 GB (or one allocation above 1 GB) fails the run; the input is saved
# as .build-fuzz/artifacts/FORMAT-crash-* (or -timeout-, -oom-) and can be
# replayed with the normal build: .build/release/inverse-set-fuzz FORMAT FILE.
# The memory budget is 512 MB inside the fuzzer, so inputs that claim more
# are the clean errors they must be.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
formats=("$@")
[ ${#formats[@]} -eq 0 ] && formats=(prototxt caffemodel npy png)

scratch=.build-fuzz
echo "== fuzz: building inverse-set-fuzz with -sanitize=fuzzer,address into $scratch"
swift build -c release --product inverse-set-fuzz --scratch-path "$scratch" \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DINVERSE_SET_FUZZ 2>&1 | grep -v "Cannot export local symbol" | tail -n 3
bin="$scratch/release/inverse-set-fuzz"

seed() {   # seed FORMAT DIR: copy the seed files of FORMAT into DIR
  local format=$1 dir=$2
  case "$format" in
    # (nets with data layers read their datasets at set-up: slow seeds, left out)
    prototxt)   find Models Tests/Fixtures -name '*.prototxt' -size -64k -exec grep -L 'IDXData\|ImageData\|solver' {} + ;;
    caffemodel) find Models Tests/Fixtures -name '*.caffemodel' -size -200k ;;
    npy)        find Models Tests/Fixtures -name '*.npy' -size -16k ;;
    png)        find Tests/Fixtures -name '*.png' -size -300k ;;
  esac | while read -r f; do
    # Name by content, so seeds with the same file name do not overwrite each other.
    cp "$f" "$dir/seed-$(sha1sum "$f" | cut -c1-16)"
  done
  if [ "$format" = png ] && command -v python3 > /dev/null; then python3 tools/fuzz_png_seeds.py "$dir"; fi
}

max_len() {
  case "$1" in
    caffemodel) echo 200000 ;;
    png) echo 300000 ;;
    *) echo 65536 ;;
  esac
}

mkdir -p "$scratch/artifacts" "$scratch/logs"
run_one() {   # run_one FORMAT: fuzz it for $seconds, log to $scratch/logs/FORMAT.log
  local format=$1
  local corpus="$scratch/corpus/$format"
  mkdir -p "$corpus"
  seed "$format" "$corpus"
  INVERSE_SET_FUZZ_FORMAT=$format INVERSE_SET_MEMORY_BUDGET=512M \
  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
    "$bin" "$corpus" -max_total_time="$seconds" -max_len="$(max_len "$format")" -timeout=10 \
      -rss_limit_mb=2048 -malloc_limit_mb=1024 -detect_leaks=0 -print_final_stats=1 \
      -artifact_prefix="$scratch/artifacts/$format-" > "$scratch/logs/$format.log" 2>&1
}

status=0
pids=()
names=()
report() {   # report INDEX: wait for the run and print its summary
  local i=$1 format=${names[$1]} code=0
  wait "${pids[$i]}" || code=$?
  local log="$scratch/logs/$format.log"
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  local corpus
  corpus=$(ls "$scratch/corpus/$format" | wc -l)
  if [ "$code" = 0 ]; then
    echo "fuzz $format: ok, $runs inputs in ${seconds} s, no crash (corpus: $corpus files)"
  else
    echo "fuzz $format: FAILED (exit $code) after $runs inputs; see $log and $scratch/artifacts/$format-*"
    grep -E "ERROR|SUMMARY|deadly signal|Test unit written" "$log" | head -n 8
    status=1
  fi
}
for f in "${formats[@]}"; do
  case "$f" in prototxt|caffemodel|npy|png) ;; *) echo "fuzz: unknown format $f (known: prototxt caffemodel npy png)" >&2; exit 2 ;; esac
  run_one "$f" &
  pids+=($!)
  names+=("$f")
  # Two at a time: one per core.
  if [ $(( ${#pids[@]} % 2 )) = 0 ]; then
    report $(( ${#pids[@]} - 2 ))
    report $(( ${#pids[@]} - 1 ))
  fi
done
if [ $(( ${#pids[@]} % 2 )) = 1 ]; then report $(( ${#pids[@]} - 1 )); fi
exit $status
