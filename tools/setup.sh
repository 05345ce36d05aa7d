#!/usr/bin/env bash
# Installs the Debian packages InverseSet needs to build, test and run.
# Idempotent: skips apt entirely when everything is present.
set -euo pipefail

PACKAGES=(pkg-config libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev libopenblas-dev libpng-dev zlib1g-dev dataset-fashion-mnist)
# `setup.sh --tests` (tools/test.sh): also a one-node Slurm cluster for the atlas's Slurm
# test (tools/slurm-local.sh runs it).
if [ "${1:-}" = "--tests" ]; then
    PACKAGES+=(slurmctld slurmd slurm-client munge)
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: Swift is not on PATH (install Swift 6.x first)" >&2; exit 1; }
