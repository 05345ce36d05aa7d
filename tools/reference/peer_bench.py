#!/usr/bin/env python3
"""Times the peers of `inverse-set bench` on the same prototxt: real BVLC Caffe
(pycaffe, CPU) and PyTorch CPU (the same layers translated to torch.nn, one
autograd graph), forward + backward to the input, median of repeats after
warm-up, peak RSS of the process. Prints one JSON object per peer.

    source ~/.cache/caffe-oracle/env.sh   # pycaffe, built by ../shared/oracle
    $CAFFE_PYTHON tools/reference/peer_bench.py NET.prototxt --batch 10 --threads 2 --peer caffe
    $CAFFE_PYTHON tools/reference/peer_bench.py NET.prototxt --batch 10 --threads 2 --peer torch
    $CAFFE_PYTHON tools/reference/peer_bench.py G.prototxt --classifier F.prototxt --peer torch \
        --crop 14 --neuron fc8:980 --encoder fc6

The last form times one sampler step of `inverse-set bench --pipeline` in
PyTorch: G forward on K codes, the crop to f's input (offset --crop), clipping to the
pixel range, f forward, then one backward from f's neuron and from E's blob
(E = f cut at --encoder, sharing the trunk) to the codes, in one autograd
graph.

Weights are random (timing does not depend on them). Supported layers for the
torch translation: Input, Convolution, Deconvolution, InnerProduct, ReLU
(leaky), Pooling (MAX/AVE, Caffe's ceil rounding), LRN (across channels),
Dropout (test: identity), Softmax, Reshape, Sigmoid, TanH.
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def parse(path):
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    net = caffe_pb2.NetParameter()
    with open(path) as f:
        text_format.Merge(f.read(), net)
    return net


def input_shape(net, batch):
    if net.input:
        dims = list(net.input_shape[0].dim) if net.input_shape else list(net.input_dim)
        return net.input[0], [batch] + dims[1:]
    for l in net.layer:
        if l.type == "Input":
            return l.top[0], [batch] + list(l.input_param.shape[0].dim)[1:]
    raise SystemExit("no input in " + str(net.name))


def bench_caffe(path, batch, repeats):
    import numpy as np
    import caffe
    caffe.set_mode_cpu()
    net = parse(path)
    net.force_backward = True
    # A Reshape that hard-codes batch 1 (the fc6 generator) must follow the
    # batch in Caffe too: dim 0 = "copy the input's first dim".
    for l in net.layer:
        if l.type == "Reshape" and l.reshape_param.shape.dim and l.reshape_param.shape.dim[0] > 0:
            l.reshape_param.shape.dim[0] = 0
    name, shape = input_shape(net, batch)
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as f:
        from google.protobuf import text_format
        f.write(text_format.MessageToString(net))
        tmp = f.name
    n = caffe.Net(tmp, caffe.TEST)
    os.unlink(tmp)
    n.blobs[name].reshape(*shape)
    n.reshape()
    rng = np.random.RandomState(1)
    for layer in n.layers:
        for b in layer.blobs:
            b.data[...] = rng.normal(0, 0.01, b.data.shape)
    n.blobs[name].data[...] = rng.normal(0, 1, shape)
    outs = n.outputs
    times = []
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        n.forward()
        for o in outs:
            n.blobs[o].diff[...] = 1
        n.backward()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"peer": "caffe", "fwd_bwd_ms": round(median(times[2:]), 1), "peak_rss_mb": round(peak_rss_mb(), 1)}


def torch_model(net):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.steps = []
            self.mods = nn.ModuleDict()
            channels = {}
            name, shape = input_shape(net, 1)
            channels[name] = shape[1] if len(shape) > 1 else None
            flat = {name: len(shape) == 2}
            for l in net.layer:
                t = l.type
                if t == "Input":
                    continue
                b, top = l.bottom[0], l.top[0]
                if t in ("Convolution", "Deconvolution"):
                    p = l.convolution_param
                    k = p.kernel_size[0] if p.kernel_size else p.kernel_h
                    s = p.stride[0] if p.stride else 1
                    pad = p.pad[0] if p.pad else 0
                    g = p.group or 1
                    cls = nn.Conv2d if t == "Convolution" else nn.ConvTranspose2d
                    self.mods[l.name] = cls(channels[b], p.num_output, k, s, pad, groups=g, bias=p.bias_term)
                    channels[top] = p.num_output
                    self.steps.append(("mod", l.name, b, top))
                elif t == "InnerProduct":
                    self.mods[l.name] = nn.Linear(1, l.inner_product_param.num_output)  # resized by the dry run
                    self.steps.append(("ip", l.name, b, top))
                    channels[top] = l.inner_product_param.num_output
                elif t == "ReLU":
                    self.steps.append(("relu", l.relu_param.negative_slope, b, top))
                    channels[top] = channels.get(b)
                elif t == "Pooling":
                    p = l.pooling_param
                    self.steps.append(("pool", (p.pool, p.kernel_size, p.stride or 1, p.pad), b, top))
                    channels[top] = channels.get(b)
                elif t == "LRN":
                    p = l.lrn_param
                    self.steps.append(("lrn", (p.local_size, p.alpha, p.beta, p.k), b, top))
                    channels[top] = channels.get(b)
                elif t in ("Dropout",):
                    self.steps.append(("id", None, b, top))
                    channels[top] = channels.get(b)
                elif t == "Softmax":
                    self.steps.append(("softmax", None, b, top))
                elif t == "Sigmoid":
                    self.steps.append(("sigmoid", None, b, top))
                elif t == "TanH":
                    self.steps.append(("tanh", None, b, top))
                elif t == "Reshape":
                    dims = list(l.reshape_param.shape.dim)
                    self.steps.append(("reshape", dims, b, top))
                    channels[top] = dims[1] if len(dims) > 1 else None
                else:
                    raise SystemExit("peer_bench: layer type %s is not translated to torch" % t)

        def forward(self, x, name):
            import torch
            import torch.nn.functional as F
            v = {name: x}
            for kind, arg, b, top in self.steps:
                a = v[b]
                if kind == "mod":
                    y = self.mods[arg](a)
                elif kind == "ip":
                    y = self.mods[arg](a.flatten(1))
                elif kind == "relu":
                    y = F.leaky_relu(a, arg) if arg else F.relu(a)
                elif kind == "pool":
                    pool, k, s, pad = arg
                    if pool == 0:
                        y = F.max_pool2d(a, k, s, pad, ceil_mode=True)
                    else:
                        y = F.avg_pool2d(a, k, s, pad, ceil_mode=True)
                elif kind == "lrn":
                    size, alpha, beta, kk = arg
                    y = F.local_response_norm(a, size, alpha, beta, kk)
                elif kind == "id":
                    y = a
                elif kind == "softmax":
                    y = torch.softmax(a, 1)
                elif kind == "sigmoid":
                    y = torch.sigmoid(a)
                elif kind == "tanh":
                    y = torch.tanh(a)
                elif kind == "reshape":
                    y = a.reshape([a.shape[0]] + arg[1:])
                v[top] = y
            self.blobs = v
            return y

    return Model()


def bench_torch(path, batch, repeats, threads):
    import torch
    torch.set_num_threads(threads)
    net = parse(path)
    name, shape = input_shape(net, batch)
    x = torch.randn(*shape)
    model = sized_torch_model(net, x, name)
    times = []
    for i in range(repeats + 2):
        xi = x.clone().requires_grad_(True)
        t0 = time.perf_counter()
        y = model.forward(xi, name)
        y.sum().backward()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"peer": "torch", "fwd_bwd_ms": round(median(times[2:]), 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "torch": torch.__version__}


def sized_torch_model(net, x, name):
    """The torch translation with each Linear sized from its actual input
    width (one step-by-step dry run)."""
    import torch
    import torch.nn as nn
    model = torch_model(net).eval()
    with torch.no_grad():
        v = {name: x}
        all_steps = model.steps
        for step in all_steps:
            kind, arg, b, top = step
            a = v[b]
            if kind == "ip" and model.mods[arg].in_features != a[0].numel():
                model.mods[arg] = nn.Linear(a[0].numel(), model.mods[arg].out_features)
            model.steps = [step]
            v[top] = model.forward(a, b)
        model.steps = all_steps
    return model


def bench_torch_pipeline(gpath, fpath, batch, repeats, threads, crop, neuron, encoder):
    import torch
    torch.set_num_threads(threads)
    gnet, fnet = parse(gpath), parse(fpath)
    gname, gshape = input_shape(gnet, batch)
    fname, fshape = input_shape(fnet, batch)
    codes = torch.rand(*gshape) * 0.33
    g = sized_torch_model(gnet, codes, gname)
    with torch.no_grad():
        image = g.forward(codes, gname)
    size = fshape[2]
    f = sized_torch_model(fnet, image[:, :, crop:crop + size, crop:crop + size].contiguous(), fname)
    blob, unit = neuron.split(":")
    unit = int(unit)
    times = []
    for i in range(repeats + 2):
        h = codes.clone().requires_grad_(True)
        t0 = time.perf_counter()
        image = g.forward(h, gname)
        x = image[:, :, crop:crop + size, crop:crop + size].clamp(-128, 127)
        f.forward(x, fname)
        e = f.blobs[encoder]
        objective = f.blobs[blob][:, unit].sum() + (e * torch.ones_like(e)).sum()
        objective.backward()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"peer": "torch", "step_ms": round(median(times[2:]), 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prototxt")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--peer", choices=["caffe", "torch"], required=True)
    ap.add_argument("--classifier", help="pipeline mode: f's prototxt (the positional one is G)")
    ap.add_argument("--crop", type=int, default=14, help="pipeline: crop offset of f's input in G's output")
    ap.add_argument("--neuron", default="fc8:980", help="pipeline: f's neuron, blob:index")
    ap.add_argument("--encoder", default="fc6", help="pipeline: E's blob (f cut there)")
    a = ap.parse_args()
    if a.classifier:
        if a.peer != "torch":
            raise SystemExit("peer_bench: the pipeline step is timed for the torch peer only")
        r = bench_torch_pipeline(a.prototxt, a.classifier, a.batch, a.repeats, a.threads, a.crop, a.neuron,
                                 a.encoder)
        r["pipeline"] = [a.prototxt, a.classifier]
        r["batch"] = a.batch
        print(json.dumps(r, sort_keys=True))
        return
    if a.peer == "caffe":
        r = bench_caffe(a.prototxt, a.batch, a.repeats)
    else:
        r = bench_torch(a.prototxt, a.batch, a.repeats, a.threads)
    r["net"] = a.prototxt
    r["batch"] = a.batch
    print(json.dumps(r, sort_keys=True))


if __name__ == "__main__":
    main()
