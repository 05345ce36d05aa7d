#!/usr/bin/env bash
# Follows docs/writing-a-layer-plugin.md from an empty folder: takes the guide's
# Package.swift and layer code verbatim (pointing the dependency at this
# checkout), builds the plugin as its own package against the InverseSet
# library product, loads it into inverse-set and checks ScaledTanh's forward
# and gradient.   bash tools/check-plugin-guide.sh [WORKDIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
pkg="$work/ScaledTanhPlugin"
rm -rf "$pkg" && mkdir -p "$pkg/Sources/ScaledTanhPlugin"
python3 - "$root" "$pkg" <<'PY'
import re, sys
root, pkg = sys.argv[1], sys.argv[2]
doc = open(root + "/docs/writing-a-layer-plugin.md").read()
blocks = re.findall(r"```swift\n(.*?)```", doc, re.S)
name = root.rstrip("/").split("/")[-1]
manifest = blocks[0].replace('.package(path: "/path/to/InverseSet")', '.package(path: "%s")' % root)
manifest = manifest.replace('package: "InverseSet"', 'package: "%s"' % name)
manifest = re.sub(r'\s*\.testTarget\(name: "ScaledTanhPluginTests",\s*dependencies: \[[^\]]*\]\),', "", manifest)
open(pkg + "/Package.swift", "w").write(manifest)
open(pkg + "/Sources/ScaledTanhPlugin/ScaledTanh.swift", "w").write(blocks[1] + "\n" + blocks[2])
PY
(cd "$pkg" && swift build -c release)
(cd "$root" && swift build -c release --product inverse-set)
lib="$pkg/.build/release/libScaledTanhPlugin.so"
bin="$root/.build/release/inverse-set"
"$bin" layers --plugin "$lib" | grep -q "ScaledTanh.*libScaledTanhPlugin.so"
cat > "$work/st.prototxt" <<'P'
input: "x" input_shape { dim: 1 dim: 3 }
layer { name: "act" type: "ScaledTanh" bottom: "x" top: "y" scaled_tanh_param { a: 2 b: 0.5 } }
P
python3 - "$work/x.npy" <<'PY'
import struct, sys
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }"
header += " " * (63 - (10 + len(header)) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack("<3f", -1, 0, 2))
PY
"$bin" run "$work/st.prototxt" --input x="$work/x.npy" --top-diff y="$work/x.npy" --out "$work/out" --plugin "$lib" >/dev/null
python3 - "$work" <<'PY'
import math, struct, sys
def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<H", data[8:10])[0]
    return struct.unpack("<3f", data[10 + n:10 + n + 12])
w = sys.argv[1]; x = [-1.0, 0.0, 2.0]
y, g = load(w + "/out/fwd_y.npy"), load(w + "/out/grad_x.npy")
assert all(abs(a - 2 * math.tanh(0.5 * v)) < 1e-6 for a, v in zip(y, x)), y
assert all(abs(a - v * (1 - math.tanh(0.5 * v) ** 2)) < 1e-6 for a, v in zip(g, x)), g
print("plugin guide: built, loaded and checked ScaledTanh (forward and gradient)")
PY
