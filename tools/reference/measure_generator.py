#!/usr/bin/env python3
"""Measures an image generator G for a classifier f with OpenCV's own Caffe
importer (cv2.dnn), independently of inverse-set's importer, by the figures of
issue 14:

    pip install --break-system-packages "opencv-python-headless<5" scipy numpy
    python3 tools/reference/measure_generator.py                 # the shipped Models/fashion
    python3 tools/reference/measure_generator.py --generator-weights G.caffemodel --json out.json

x = the first --count test images (t10k, IDX) scaled to [0, 1]; E(x) = f's code
blob (fc6) as Caffe leaves it after the forward pass, i.e. after its in-place
ReLU; G(E(x)) = G's output clipped to [0, 1].

- label agreement: argmax of f's score blob (fc8) on G(E(x)) equals x's label,
  over all --count images;
- sharpness: mean |Laplacian| of G(E(x)) over mean |Laplacian| of x (ratio of
  the two means over all pixels of all --count images); cv2.Laplacian, float32,
  ksize 1 (the 3x3 kernel 0 1 0 / 1 -4 1 / 0 1 0), OpenCV's default border;
- Frechet distance of f's feature blob (fc7, after its in-place ReLU, 256-d):
  Gaussian fits, |m1 - m2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2)), np.cov (N - 1).
  Protocol "halves" (default): G(E(x)) of the first half of the images against
  the real second half, so that no generated image is compared with its own
  original; the baseline is real first half against real second half (the
  noise floor of the same sample size). Protocol "paired": G(E(x)) of all
  --count images against the same x, and baseline x against the next --count
  test images.

The defaults reproduce the issue's figures for the shipped models (sharpness
0.60, Frechet 3.54, baseline 0.82 on 2,000 images); --compare-definitions
prints the figures under the other candidate definitions too.

Blob names follow Caffe: a blob written in place (fc7 by fc7, relu7, drop7) is
read after the last layer that writes it; --raw-features reads the feature
blob as its first writer leaves it (fc7 before ReLU) instead. Exits 2 with a
message on a missing file, a bad option or a net that OpenCV cannot run.
"""
import argparse
import gzip
import json
import os
import re
import sys
import time
import warnings

MODELS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Models", "fashion"))
DATASET = "/usr/share/datasets/fashion-mnist"


class MeasureError(Exception):
    pass


# ---------------------------------------------------------------- prototxt

_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{}:;,<>\[\]]|[^\s{}:;,<>\[\]"\'#]+')


def parse_prototxt(path):
    """Protobuf text format -> nested dict of lists (field -> [values]).
    Only what is needed to find layers, their names, types, tops and inputs."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise MeasureError("%s: cannot read the prototxt at character %d" % (path, pos))
        t = m.group(0)
        pos = m.end()
        if not t.isspace() and not t.startswith("#"):
            tokens.append(t)
    root = {}
    stack = [root]
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t in ("}", ">"):
            if len(stack) == 1:
                raise MeasureError("%s: unbalanced '}' in the prototxt" % path)
            stack.pop()
            i += 1
            continue
        if t in (";", ","):
            i += 1
            continue
        key = t
        i += 1
        if i < len(tokens) and tokens[i] == ":":
            i += 1
        if i >= len(tokens):
            raise MeasureError("%s: field '%s' has no value" % (path, key))
        if tokens[i] in ("{", "<"):
            child = {}
            stack[-1].setdefault(key, []).append(child)
            stack.append(child)
            i += 1
        else:
            v = tokens[i]
            if v[0] in "\"'":
                v = v[1:-1]
            stack[-1].setdefault(key, []).append(v)
            i += 1
    if len(stack) != 1:
        raise MeasureError("%s: unbalanced '{' in the prototxt" % path)
    return root


class NetText:
    """Layer names, types and tops of a deploy prototxt, in order."""

    def __init__(self, path):
        self.path = path
        root = parse_prototxt(path)
        self.layers = []  # (name, type, tops)
        for layer in root.get("layer", []) + root.get("layers", []):
            name = layer.get("name", [""])[0]
            kind = layer.get("type", [""])[0]
            self.layers.append((name, kind, layer.get("top", [])))
        self.inputs = list(root.get("input", []))
        self.inputs += [t for (_, kind, tops) in self.layers if kind == "Input" for t in tops]

    def writers(self, blob):
        """Names of the layers that write `blob`, first to last."""
        return [name for (name, kind, tops) in self.layers if blob in tops and kind != "Input"]

    def reader_for(self, blob, what, raw=False):
        """The layer whose output OpenCV must return for the value of `blob`:
        the last writer (Caffe's value after in-place layers), or the first."""
        w = self.writers(blob)
        if not w:
            tops = sorted({t for (_, kind, tops) in self.layers if kind != "Input" for t in tops})
            raise MeasureError("%s: no layer writes the %s blob '%s'; blobs: %s"
                               % (self.path, what, blob, ", ".join(tops)))
        return w[0] if raw else w[-1]

    def last_top(self):
        for (_, _, tops) in reversed(self.layers):
            if tops:
                return tops[0]
        raise MeasureError("%s: no layer with a top" % self.path)


# ---------------------------------------------------------------- data


def read_idx(path, kind):
    import numpy as np
    if not os.path.isfile(path):
        raise MeasureError("%s: no such file (the %s; install Debian's dataset-fashion-mnist "
                           "or pass --dataset DIR)" % (path, kind))
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise MeasureError("%s: not an unsigned-byte IDX file" % path)
    dims = data[3]
    head = 4 + 4 * dims
    shape = [int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(dims)]
    count = 1
    for s in shape:
        count *= s
    if len(data) != head + count:
        raise MeasureError("%s: %d bytes, the header %s asks for %d" % (path, len(data), shape, head + count))
    return np.frombuffer(data, np.uint8, offset=head).reshape(shape)


def load_test_set(directory, needed):
    import numpy as np
    images = read_idx(os.path.join(directory, "t10k-images-idx3-ubyte.gz"), "test images")
    labels = read_idx(os.path.join(directory, "t10k-labels-idx1-ubyte.gz"), "test labels")
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise MeasureError("%s: images %s and labels %s do not match" % (directory, images.shape, labels.shape))
    if needed > len(images):
        raise MeasureError("%s holds %d test images; these options need %d (lower --count)"
                           % (directory, len(images), needed))
    x = images[:needed].astype(np.float32)[:, None, :, :] / 255.0
    return x, labels[:needed].astype(np.int64)


# ---------------------------------------------------------------- nets


def check_file(path, what):
    if not os.path.isfile(path):
        raise MeasureError("%s: no such file (the %s; pass --%s PATH)" % (path, what, what.replace(" ", "-")))


def read_net(cv2, prototxt, weights):
    try:
        net = cv2.dnn.readNetFromCaffe(prototxt, weights)
    except cv2.error as e:
        raise MeasureError("OpenCV cannot import %s with %s: %s" % (prototxt, weights, str(e).strip()))
    if net.empty():
        raise MeasureError("OpenCV imported an empty net from %s with %s" % (prototxt, weights))
    # Keep every layer's own output: with fusion OpenCV folds a ReLU into the
    # layer before it, so that layer's output would no longer be pre-ReLU.
    net.enableFusion(False)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    return net


def run(cv2, net, inputs, input_name, layers, batch, what):
    """Forward `inputs` (N, ...) in batches; returns one array per layer name."""
    import numpy as np
    outs = [[] for _ in layers]
    for start in range(0, len(inputs), batch):
        chunk = np.ascontiguousarray(inputs[start:start + batch], dtype=np.float32)
        try:
            net.setInput(chunk, input_name)
            got = net.forward(list(layers))
        except cv2.error as e:
            raise MeasureError("OpenCV failed to run the %s on input '%s' of shape %s (do the weights "
                               "belong to this prototxt, and is the input blob right?): %s"
                               % (what, input_name, chunk.shape, str(e).strip()))
        for k, o in enumerate(got):
            outs[k].append(np.array(o, copy=True))
    return [np.concatenate(o, axis=0) for o in outs]


# ---------------------------------------------------------------- figures


def mean_abs_laplacian(images, ksize):
    """Mean |Laplacian| over every pixel of every plane of (N, C, H, W)."""
    import cv2
    import numpy as np
    total = 0.0
    count = 0
    for img in images:
        for plane in img:
            lap = cv2.Laplacian(np.ascontiguousarray(plane, dtype=np.float32), cv2.CV_32F, ksize=ksize)
            total += float(np.abs(lap).sum(dtype=np.float64))
            count += lap.size
    return total / count


def frechet(a, b):
    import numpy as np
    from scipy import linalg
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        # Dead ReLU units make both covariances singular; sqrtm still returns
        # the root of the product (its complex part is rounding noise).
        warnings.simplefilter("ignore")
        root = linalg.sqrtm(s1 @ s2)
    root = np.real(root)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2.0 * root))


def frechet_pair(gen_feat, real_feat, extra_real_feat, protocol):
    """(G vs real, real vs other real) under a protocol; see the module header."""
    n = len(gen_feat)
    if protocol == "halves":
        h = n // 2
        return frechet(gen_feat[:h], real_feat[h:2 * h]), frechet(real_feat[:h], real_feat[h:2 * h])
    return frechet(gen_feat, real_feat), frechet(real_feat, extra_real_feat)


# ---------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description="Measure a generator with OpenCV's Caffe importer (issue 14).")
    p.add_argument("--classifier-deploy", default=os.path.join(MODELS, "classifier_deploy.prototxt"))
    p.add_argument("--classifier-weights", default=os.path.join(MODELS, "classifier.caffemodel"))
    p.add_argument("--generator-deploy", default=os.path.join(MODELS, "generator_deploy.prototxt"))
    p.add_argument("--generator-weights", default=os.path.join(MODELS, "generator.caffemodel"))
    p.add_argument("--dataset", default=DATASET, help="folder with t10k-images/labels-idx*-ubyte.gz")
    p.add_argument("--count", type=int, default=2000, help="test images 0..count-1 (default 2000)")
    p.add_argument("--classifier-input", default="data", help="the classifier's input blob")
    p.add_argument("--code-blob", default="fc6", help="the classifier blob that is G's code (after in-place layers)")
    p.add_argument("--feature-blob", default="fc7", help="the classifier blob for the Frechet distance")
    p.add_argument("--raw-features", action="store_true",
                   help="read the feature blob before its in-place layers (fc7 before ReLU)")
    p.add_argument("--score-blob", default="fc8", help="the classifier blob whose argmax is the label")
    p.add_argument("--generator-input", default="fc6", help="G's input blob")
    p.add_argument("--generator-output", default=None, help="G's output blob (default: the last layer's top)")
    p.add_argument("--laplacian-ksize", type=int, default=1, choices=[1, 3, 5, 7])
    p.add_argument("--frechet-protocol", default="halves", choices=["halves", "paired"])
    p.add_argument("--batch", type=int, default=500, help="images per forward pass")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="also write the figures and definitions here")
    p.add_argument("--compare-definitions", action="store_true",
                   help="also print the figures under the other candidate definitions")
    args = p.parse_args(argv)
    if args.count < 4:
        p.error("--count must be at least 4")
    if args.batch < 1:
        p.error("--batch must be at least 1")
    return args


def measure(args):
    for path, what in ((args.classifier_deploy, "classifier deploy"), (args.classifier_weights, "classifier weights"),
                       (args.generator_deploy, "generator deploy"), (args.generator_weights, "generator weights")):
        check_file(path, what)
    try:
        import numpy as np
        import cv2
        import scipy.linalg  # noqa: F401
    except ImportError as e:
        raise MeasureError("%s; install with: pip install --break-system-packages "
                           "\"opencv-python-headless<5\" scipy numpy" % e)
    cv2.setNumThreads(max(1, args.threads))
    started = time.time()

    ctext = NetText(args.classifier_deploy)
    gtext = NetText(args.generator_deploy)
    if args.classifier_input not in ctext.inputs:
        raise MeasureError("%s: no input blob '%s' (inputs: %s; pass --classifier-input)"
                           % (args.classifier_deploy, args.classifier_input, ", ".join(ctext.inputs) or "none"))
    if args.generator_input not in gtext.inputs:
        raise MeasureError("%s: no input blob '%s' (inputs: %s; pass --generator-input)"
                           % (args.generator_deploy, args.generator_input, ", ".join(gtext.inputs) or "none"))
    g_out_blob = args.generator_output or gtext.last_top()
    code_layer = ctext.reader_for(args.code_blob, "code")
    feat_post = ctext.reader_for(args.feature_blob, "feature")
    feat_raw = ctext.reader_for(args.feature_blob, "feature", raw=True)
    feat_layer = feat_raw if args.raw_features else feat_post
    score_layer = ctext.reader_for(args.score_blob, "score")
    g_layer = gtext.reader_for(g_out_blob, "generator output")

    paired_extra = args.frechet_protocol == "paired" or args.compare_definitions
    x_all, labels_all = load_test_set(args.dataset, 2 * args.count if paired_extra else args.count)
    x, labels = x_all[:args.count], labels_all[:args.count]

    cnet = read_net(cv2, args.classifier_deploy, args.classifier_weights)
    gnet = read_net(cv2, args.generator_deploy, args.generator_weights)
    clayers = [code_layer, feat_post, feat_raw, score_layer]

    code, real_post, real_raw, _ = run(cv2, cnet, x, args.classifier_input, clayers, args.batch, "classifier")
    (gen,) = run(cv2, gnet, code.reshape(len(code), -1), args.generator_input, [g_layer], args.batch, "generator")
    gen = np.clip(gen, 0.0, 1.0)
    if gen.shape[1:] != x.shape[1:]:
        raise MeasureError("G's output '%s' has shape %s per image, the classifier's input %s; "
                           "this script compares them without cropping"
                           % (g_out_blob, tuple(gen.shape[1:]), tuple(x.shape[1:])))
    _, gen_post, gen_raw, gen_scores = run(cv2, cnet, gen, args.classifier_input, clayers, args.batch, "classifier")
    extra_post = extra_raw = None
    if paired_extra:
        _, extra_post, extra_raw, _ = run(cv2, cnet, x_all[args.count:], args.classifier_input,
                                          clayers, args.batch, "classifier")

    agreement = float((gen_scores.reshape(len(gen_scores), -1).argmax(1) == labels).mean())

    def sharpness(ksize):
        return mean_abs_laplacian(gen, ksize) / mean_abs_laplacian(x, ksize)

    feats = {False: (gen_post, real_post, extra_post), True: (gen_raw, real_raw, extra_raw)}
    fd, fd_base = frechet_pair(*feats[args.raw_features], args.frechet_protocol)
    result = {
        "label_agreement": agreement,
        "sharpness": sharpness(args.laplacian_ksize),
        "frechet": fd,
        "frechet_baseline": fd_base,
        "count": args.count,
        "definitions": {
            "x": "t10k test images 0..%d, pixel / 255" % (args.count - 1),
            "code": "classifier blob '%s' as layer '%s' leaves it" % (args.code_blob, code_layer),
            "generated": "G blob '%s' clipped to [0, 1]" % g_out_blob,
            "label_agreement": "argmax of '%s' (layer '%s') on G(E(x)) equals the label of x, all %d images"
                               % (args.score_blob, score_layer, args.count),
            "sharpness": "mean |cv2.Laplacian(ksize=%d, float32)| of G(E(x)) / that of x, all %d images"
                         % (args.laplacian_ksize, args.count),
            "features": "classifier blob '%s' as layer '%s' leaves it" % (args.feature_blob, feat_layer),
            "frechet": ("G(E(x)) of images 0..%d vs real images %d..%d; baseline real 0..%d vs real %d..%d"
                        % (args.count // 2 - 1, args.count // 2, 2 * (args.count // 2) - 1,
                           args.count // 2 - 1, args.count // 2, 2 * (args.count // 2) - 1))
            if args.frechet_protocol == "halves" else
            ("G(E(x)) vs x, images 0..%d; baseline real 0..%d vs real %d..%d"
             % (args.count - 1, args.count - 1, args.count, 2 * args.count - 1)),
            "frechet_protocol": args.frechet_protocol,
        },
        "files": {"classifier_deploy": args.classifier_deploy, "classifier_weights": args.classifier_weights,
                  "generator_deploy": args.generator_deploy, "generator_weights": args.generator_weights},
        "opencv": cv2.__version__,
    }
    if args.compare_definitions:
        rows = []
        for k in (1, 3, 5):
            rows.append(("sharpness, Laplacian ksize %d" % k, sharpness(k), None))
        for raw, name in ((False, "%s (layer %s)" % (args.feature_blob, feat_post)),
                          (True, "%s (layer %s)" % (args.feature_blob, feat_raw))):
            for protocol in ("halves", "paired"):
                a, b = frechet_pair(*feats[raw], protocol)
                rows.append(("Frechet %s, %s" % (name, protocol), a, b))
        result["candidates"] = [{"definition": d, "value": v, "baseline": b} for (d, v, b) in rows]
    result["seconds"] = round(time.time() - started, 1)
    return result


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        r = measure(args)
    except MeasureError as e:
        print("measure_generator: %s" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("measure_generator: %s" % e, file=sys.stderr)
        return 2
    print("generator %s (%d test images, OpenCV %s, %.1f s)"
          % (r["files"]["generator_weights"], r["count"], r["opencv"], r["seconds"]))
    print("| figure | value |")
    print("|---|---|")
    print("| G(E(x)) classified with the label of x | %.2f%% |" % (100 * r["label_agreement"]))
    print("| sharpness: mean abs Laplacian of G(E(x)) / that of x | %.3f |" % r["sharpness"])
    print("| Frechet distance of the classifier's %s features, G(E(x)) vs x (x vs other real x: %.3f) | %.3f |"
          % (args.feature_blob, r["frechet_baseline"], r["frechet"]))
    for key in ("code", "sharpness", "features", "frechet"):
        print("  %s: %s" % (key, r["definitions"][key]))
    if "candidates" in r:
        print("other candidate definitions:")
        for c in r["candidates"]:
            base = "" if c["baseline"] is None else "   baseline %.3f" % c["baseline"]
            print("  %-50s %.3f%s" % (c["definition"], c["value"], base))
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(r, f, indent=2)
                f.write("\n")
        except OSError as e:
            print("measure_generator: cannot write %s: %s" % (args.json, e), file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
