#!/usr/bin/env bash
# Sets up the machine and runs the whole test suite in release mode (numeric
# loops are 10-50x slower in debug builds).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh --tests
swift build -c release --build-tests
swift test -c release --skip-build "$@"
# The plugin guide, followed verbatim from an empty folder (its own package
# against the InverseSet library product), built, loaded and checked.
bash tools/check-plugin-guide.sh "$(mktemp -d)"
# Fuzzing: each reader of user input (prototxt, caffemodel, npy, png) under
# libFuzzer with AddressSanitizer for 60 s (two at a time; see tools/fuzz.sh).
# FUZZ_SECONDS=0 skips it.
if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
  bash tools/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
