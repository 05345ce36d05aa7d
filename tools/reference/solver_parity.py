#!/usr/bin/env python3
"""Reference training runs with real Caffe for the solver parity tests.

Trains a small net (conv -> relu -> max pool -> inner product -> SoftmaxWithLoss)
for 20 iterations from fixed initial weights on a fixed sequence of batches,
once per solver case, and writes what the Swift tests compare against into
Tests/Fixtures/solver/ (see the README.md written there):

  data.npy, labels.npy      the batches: (40, 6, 2, 8, 8) float32, (40, 6) float32
  init.caffemodel           the initial weights (numpy RandomState(SEED))
  <case>/solver.prototxt    the solver fields (no net: the tests supply it)
  <case>/net.prototxt       the net as we run it: Input layer for data and label
  <case>/net_caffe.prototxt the net Caffe ran: a MemoryData layer instead, so that
                            iter_size > 1 sees a new batch in every pass
  <case>/losses.npy         (20,) loss of each iteration: mean over its iter_size passes
  <case>/passes.npy         (20, iter_size) loss of every forward pass
  <case>/final.caffemodel   the weights after 20 updates
  <case>/caffe.solverstate  (cases with snapshot) Caffe's own state after 20 updates
  <case>/meta.json          the case, the gradient norms, how often clipping fired

Iteration i uses batches i * iter_size + p, p = 0..iter_size-1. The loss of each
pass is computed by a second net (Input layers, the same prototxt as net.prototxt)
that shares the solver net's weights, run in the solver's on_start callback, i.e.
with exactly the weights of that iteration; the script checks that it equals the
solver net's own loss blob after the last pass.

Run with the Caffe oracle (see /work/shared/oracle/README.md):

  source /root/.cache/caffe-oracle/env.sh
  $CAFFE_PYTHON tools/reference/solver_parity.py            # all cases
  $CAFFE_PYTHON tools/reference/solver_parity.py adam_clip  # some cases
"""
import json
import os
import sys
import tempfile

import numpy as np

os.environ.setdefault('GLOG_minloglevel', '2')
import caffe  # noqa: E402
from caffe.proto import caffe_pb2  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'Tests', 'Fixtures', 'solver')
SEED = 20241126
N, C, H, W, CLASSES = 6, 2, 8, 8, 5
ITERS = 20
BATCHES = 40

NET = '''name: "SolverParity"
{data}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1" {conv_params}
        convolution_param {{ num_output: 4 kernel_size: 3 }} }}
layer {{ name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }}
layer {{ name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1" {ip_params}
        inner_product_param {{ num_output: 5 }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }}
'''
INPUT = ('layer { name: "data" type: "Input" top: "data" top: "label"\n'
         '        input_param { shape { dim: %d dim: %d dim: %d dim: %d } shape { dim: %d } } }' % (N, C, H, W, N))
MEMORY = ('layer { name: "data" type: "MemoryData" top: "data" top: "label"\n'
          '        memory_data_param { batch_size: %d channels: %d height: %d width: %d } }' % (N, C, H, W))

# Every case: solver fields, per-blob param specs, whether to keep Caffe's state.
CASES = {
    # SGD with momentum, L2 weight decay, step policy.
    'sgd_step': dict(solver='type: "SGD" base_lr: 0.05 momentum: 0.9 weight_decay: 0.004 '
                            'lr_policy: "step" gamma: 0.5 stepsize: 6'),
    # Nesterov, inv policy, gradients accumulated over 2 passes.
    'nesterov_itersize2': dict(solver='type: "Nesterov" base_lr: 0.03 momentum: 0.95 weight_decay: 0.002 '
                                      'lr_policy: "inv" gamma: 0.1 power: 0.75 iter_size: 2'),
    # Adam with gradient clipping and per-blob lr_mult / decay_mult on the bias.
    'adam_clip': dict(solver='type: "Adam" base_lr: 0.02 momentum: 0.9 momentum2: 0.999 delta: 1e-8 '
                             'weight_decay: 0.001 lr_policy: "fixed" clip_gradients: 4',
                      ip='param { lr_mult: 1 } param { lr_mult: 2 decay_mult: 0 }', snapshot=True),
    # AdaGrad with a multistep policy.
    'adagrad_multistep': dict(solver='type: "AdaGrad" base_lr: 0.05 delta: 1e-6 weight_decay: 0.001 '
                                     'lr_policy: "multistep" gamma: 0.5 stepvalue: 5 stepvalue: 12'),
    # RMSProp with an exp policy.
    'rmsprop_exp': dict(solver='type: "RMSProp" base_lr: 0.005 rms_decay: 0.9 delta: 1e-6 '
                               'lr_policy: "exp" gamma: 0.97'),
    # AdaDelta (two history blobs per parameter, like Adam).
    'adadelta': dict(solver='type: "AdaDelta" base_lr: 1.0 momentum: 0.95 delta: 1e-6 weight_decay: 0.001 '
                            'lr_policy: "fixed"', snapshot=True),
    # Frozen conv1 (lr_mult 0), L1 regularisation, poly policy.
    'sgd_frozen_l1_poly': dict(solver='type: "SGD" base_lr: 0.02 momentum: 0.9 weight_decay: 0.002 '
                                      'regularization_type: "L1" lr_policy: "poly" power: 2 max_iter: 40',
                               conv='param { lr_mult: 0 } param { lr_mult: 0 }'),
    # The legacy solver_type enum, sigmoid policy.
    'legacy_nesterov_sigmoid': dict(solver='solver_type: NESTEROV base_lr: 0.05 momentum: 0.8 '
                                           'lr_policy: "sigmoid" gamma: -0.3 stepsize: 10'),
}


def net_text(data_layer, case):
    return NET.format(data=data_layer, conv_params=case.get('conv', ''), ip_params=case.get('ip', ''))


def solver_fields(case):
    text = case['solver']
    if 'max_iter' not in text:
        text += ' max_iter: %d' % ITERS
    return text


def make_inputs():
    rng = np.random.RandomState(SEED)
    data = rng.randn(BATCHES, N, C, H, W).astype(np.float32)
    # Learnable labels: the class a fixed random projection of the image prefers.
    projection = rng.randn(C * H * W, CLASSES)
    labels = np.argmax(data.reshape(BATCHES * N, -1) @ projection, axis=1).reshape(BATCHES, N).astype(np.float32)
    weights = {
        'conv1': [rng.normal(0, 0.3, (4, C, 3, 3)), rng.uniform(-0.1, 0.1, (4,))],
        'ip1': [rng.normal(0, 0.2, (CLASSES, 4 * 3 * 3)), rng.normal(0, 0.1, (CLASSES,))],
    }
    return data, labels, {k: [v.astype(np.float32) for v in vs] for k, vs in weights.items()}


def run_case(name, case, data, labels, weights, tmp):
    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'net.prototxt'), 'w') as f:
        f.write(net_text(INPUT, case))
    with open(os.path.join(out, 'net_caffe.prototxt'), 'w') as f:
        f.write(net_text(MEMORY, case))
    fields = solver_fields(case)
    with open(os.path.join(out, 'solver.prototxt'), 'w') as f:
        f.write('# Solver of the parity case "%s" (the net is net.prototxt; see ../README.md)\n' % name)
        tokens = fields.split()
        for key, value in zip(tokens[0::2], tokens[1::2]):
            f.write('%s %s\n' % (key, value))

    iter_size = 1
    if 'iter_size' in fields:
        iter_size = int(fields.split('iter_size:')[1].split()[0])
    prefix = os.path.join(tmp, name)
    solver_path = os.path.join(tmp, name + '_solver.prototxt')
    with open(solver_path, 'w') as f:
        f.write('net: "%s"\n%s\nsolver_mode: CPU\nrandom_seed: 1\ndisplay: 0\nsnapshot_prefix: "%s"\n'
                'snapshot_after_train: false\n' % (os.path.join(out, 'net_caffe.prototxt'), fields, prefix))

    solver = caffe.get_solver(solver_path)
    net = solver.net
    for layer, blobs in weights.items():
        for j, w in enumerate(blobs):
            net.params[layer][j].data[...] = w
    if not os.path.exists(os.path.join(OUT, 'init.caffemodel')):
        net.save(os.path.join(OUT, 'init.caffemodel'))
    # MemoryData hands out consecutive batches and wraps around after all 40.
    flat_data = np.ascontiguousarray(data.reshape(BATCHES * N, C, H, W))
    flat_labels = np.ascontiguousarray(labels.reshape(BATCHES * N))
    net.set_input_arrays(flat_data, flat_labels)

    aux = caffe.Net(os.path.join(out, 'net.prototxt'), caffe.TRAIN)
    aux.share_with(net)
    passes = np.zeros((ITERS, iter_size), np.float32)
    norms = []
    learnable = [(layer, j) for layer in ('conv1', 'ip1') for j in range(2)]
    frozen = {('conv1', 0), ('conv1', 1)} if 'lr_mult: 0' in case.get('conv', '') else set()

    def on_start():
        it = solver.iter
        for p in range(iter_size):
            b = it * iter_size + p
            aux.blobs['data'].data[...] = data[b]
            aux.blobs['label'].data[...] = labels[b]
            passes[it, p] = aux.forward()['loss']

    def on_gradients_ready():
        it = solver.iter
        last = float(net.blobs['loss'].data)
        if abs(last - passes[it, -1]) > 1e-6 * max(1.0, abs(last)):
            sys.exit('%s: iteration %d: the aux net loss %g differs from the solver net loss %g'
                     % (name, it, passes[it, -1], last))
        sq = sum(float(np.sum(net.params[l][j].diff.astype(np.float64) ** 2))
                 for l, j in learnable if (l, j) not in frozen)
        norms.append(float(np.sqrt(sq)))

    solver.add_callback(on_start, on_gradients_ready)
    solver.step(ITERS)
    if solver.iter != ITERS:
        sys.exit('%s: the solver stopped at iteration %d' % (name, solver.iter))

    np.save(os.path.join(out, 'passes.npy'), passes)
    np.save(os.path.join(out, 'losses.npy'), passes.mean(axis=1, dtype=np.float64).astype(np.float32))
    net.save(os.path.join(out, 'final.caffemodel'))
    if case.get('snapshot'):
        solver.snapshot()
        state = prefix + '_iter_%d.solverstate' % ITERS
        with open(state, 'rb') as src, open(os.path.join(out, 'caffe.solverstate'), 'wb') as dst:
            dst.write(src.read())
    clip = None
    if 'clip_gradients' in fields:
        clip = float(fields.split('clip_gradients:')[1].split()[0])
    meta = {
        'case': name,
        'solver': fields,
        'iter_size': iter_size,
        'iterations': ITERS,
        'batch_of_pass': 'iteration * iter_size + pass',
        'gradient_norms': norms,
        'clipped_iterations': [i for i, n in enumerate(norms) if clip is not None and n > clip],
        'loss_first': float(passes[0].mean()),
        'loss_last': float(passes[-1].mean()),
        'caffe': 'BVLC Caffe 1.0 (brocolli-caffe 9.0.2), CPU, pycaffe',
        'seed': SEED,
    }
    with open(os.path.join(out, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')
    print('%-24s loss %.5f -> %.5f  |g| %.3f..%.3f  clipped %d'
          % (name, meta['loss_first'], meta['loss_last'], min(norms), max(norms), len(meta['clipped_iterations'])))


def main():
    caffe.set_mode_cpu()
    names = sys.argv[1:] or list(CASES)
    for n in names:
        if n not in CASES:
            sys.exit('unknown case %r; known: %s' % (n, ', '.join(CASES)))
    os.makedirs(OUT, exist_ok=True)
    data, labels, weights = make_inputs()
    np.save(os.path.join(OUT, 'data.npy'), data)
    np.save(os.path.join(OUT, 'labels.npy'), labels)
    with tempfile.TemporaryDirectory() as tmp:
        for n in names:
            run_case(n, CASES[n], data, labels, weights, tmp)


if __name__ == '__main__':
    main()
