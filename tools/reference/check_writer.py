#!/usr/bin/env python3
"""Checks that real Caffe reads a caffemodel written by inverse-set's writer with
the same weights as the original:

    .build/release/inverse-set init NET.prototxt --weights ORIG.caffemodel --out OURS.caffemodel
    source ~/.cache/caffe-oracle/env.sh
    $CAFFE_PYTHON tools/reference/check_writer.py NET.prototxt ORIG.caffemodel OURS.caffemodel

Prints one line per layer with blobs and exits 1 on the first difference.
"""
import sys

import numpy as np
import caffe


def main():
    proto, orig, ours = sys.argv[1:4]
    caffe.set_mode_cpu()
    a = caffe.Net(proto, orig, caffe.TEST)
    b = caffe.Net(proto, ours, caffe.TEST)
    count = 0
    for name, blobs in a.params.items():
        for i, blob in enumerate(blobs):
            other = b.params[name][i].data
            same = blob.data.shape == other.shape and np.array_equal(blob.data, other)
            print("%-20s blob %d %-18s %s" % (name, i, blob.data.shape, "identical" if same else "DIFFERENT"))
            if not same:
                sys.exit(1)
            count += blob.data.size
    print("real Caffe reads %s with the same %d weights as %s" % (ours, count, orig))


if __name__ == "__main__":
    main()
