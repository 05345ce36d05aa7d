#!/usr/bin/env bash
# Regenerate the protobuf-c bindings for Sources/CaffeSchema/caffe.proto.
#   Output: Sources/CaffeSchema/caffe.pb-c.c
#           Sources/CaffeSchema/include/caffe.pb-c.h
# With an argument OUT, writes OUT/caffe.pb-c.c and OUT/include/caffe.pb-c.h
# instead (the suite's GeneratedCodeTests compare them with the committed files).
# Needs protoc-c (Debian: protobuf-c-compiler). Safe to run repeatedly.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

schema_dir="Sources/CaffeSchema"
out_dir="${1:-$schema_dir}"
include_dir="$out_dir/include"

if ! command -v protoc-c >/dev/null 2>&1; then
  echo "regen-proto: protoc-c not found (apt-get install -y protobuf-c-compiler libprotobuf-c-dev)" >&2
  exit 1
fi

# The first folder of the list that holds FILE, or an error naming the package.
include_holding() {
  local file="$1" package="$2" variable="$3" dir
  shift 3
  for dir in "$@"; do
    if [ -n "$dir" ] && [ -f "$dir/$file" ]; then
      echo "$dir"
      return
    fi
  done
  echo "regen-proto: $file not found (apt-get install -y $package, or set $variable)" >&2
  exit 1
}

# caffe.proto imports protobuf-c/protobuf-c.proto (generator options only; it
# ships with libprotobuf-c-dev), which imports google/protobuf/descriptor.proto
# (libprotobuf-dev).
pbc_include="$(include_holding protobuf-c/protobuf-c.proto libprotobuf-c-dev PROTOBUF_C_INCLUDE \
  "${PROTOBUF_C_INCLUDE:-}" /usr/include /usr/local/include)"
pb_include="$(include_holding google/protobuf/descriptor.proto libprotobuf-dev PROTOBUF_INCLUDE \
  "${PROTOBUF_INCLUDE:-}" "$pbc_include" /usr/include /usr/local/include)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

protoc-c --proto_path="$schema_dir" --proto_path="$pbc_include" --proto_path="$pb_include" --c_out="$tmp" "$schema_dir/caffe.proto"

# The .c must find the header by its bare name (the header lives in include/).
sed -i 's|#include "[^"]*caffe\.pb-c\.h"|#include "caffe.pb-c.h"|' "$tmp/caffe.pb-c.c"
grep -q '^#include "caffe.pb-c.h"' "$tmp/caffe.pb-c.c"

mkdir -p "$include_dir"
mv -f "$tmp/caffe.pb-c.h" "$include_dir/caffe.pb-c.h"
mv -f "$tmp/caffe.pb-c.c" "$out_dir/caffe.pb-c.c"

echo "regen-proto: wrote $out_dir/caffe.pb-c.c and $include_dir/caffe.pb-c.h"
