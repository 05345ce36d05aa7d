#!/usr/bin/env bash
# Regenerate the protobuf-c bindings for Sources/CaffeSchema/caffe.proto.
#   Output: Sources/CaffeSchema/caffe.pb-c.c
#           Sources/CaffeSchema/include/caffe.pb-c.h
# Needs protoc-c (Debian: protobuf-c-compiler). Safe to run repeatedly.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

schema_dir="Sources/CaffeSchema"
include_dir="$schema_dir/include"

if ! command -v protoc-c >/dev/null 2>&1; then
  echo "regen-proto: protoc-c not found (apt-get install -y protobuf-c-compiler libprotobuf-c-dev)" >&2
  exit 1
fi

# caffe.proto imports protobuf-c/protobuf-c.proto (generator options only);
# it ships with libprotobuf-c-dev.
pbc_include=""
for dir in "${PROTOBUF_C_INCLUDE:-}" /usr/include /usr/local/include; do
  if [ -n "$dir" ] && [ -f "$dir/protobuf-c/protobuf-c.proto" ]; then
    pbc_include="$dir"
    break
  fi
done
if [ -z "$pbc_include" ]; then
  echo "regen-proto: protobuf-c/protobuf-c.proto not found (apt-get install -y libprotobuf-c-dev, or set PROTOBUF_C_INCLUDE)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

protoc-c --proto_path="$schema_dir" --proto_path="$pbc_include" --c_out="$tmp" "$schema_dir/caffe.proto"

# The .c must find the header by its bare name (the header lives in include/).
sed -i 's|#include "[^"]*caffe\.pb-c\.h"|#include "caffe.pb-c.h"|' "$tmp/caffe.pb-c.c"
grep -q '^#include "caffe.pb-c.h"' "$tmp/caffe.pb-c.c"

mkdir -p "$include_dir"
mv -f "$tmp/caffe.pb-c.h" "$include_dir/caffe.pb-c.h"
mv -f "$tmp/caffe.pb-c.c" "$schema_dir/caffe.pb-c.c"

echo "regen-proto: wrote $schema_dir/caffe.pb-c.c and $include_dir/caffe.pb-c.h"
