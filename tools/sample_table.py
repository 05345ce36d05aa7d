#!/usr/bin/env python3
"""Prints one Markdown row of the evaluation table for a sample folder.

    python3 tools/sample_table.py header
    python3 tools/sample_table.py row NEURON METHOD DIR 'SUMMARY-JSON'
    python3 tools/sample_table.py control NEURON DIR

A row: samples in band, near-duplicates, distinct fraction, coverage and capped
precision (absolute, and as a ratio to the control G(code(x))), the E-norm ratio,
the smallest third of the band, the paper's mean pairwise distance, steps, seconds.
"""
import json
import sys


def f(v, fmt="%.2f"):
    return "–" if v is None else fmt % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return "%.2f" % (a / b)


def header():
    print("| neuron | method | in band | near-dup | distinct | coverage (x control) | capped precision (x control) | E-norm ratio | smallest third | mean pairwise E distance | steps | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")


def row(neuron, method, folder, summary):
    try:
        s = json.loads(summary)
        e = json.load(open(folder + "/evaluation.json"))["bands"][0]
    except Exception:
        print("| `%s` | %s | failed | | | | | | | | | |" % (neuron, method))
        return
    q, c = e["samples"], e["control"]
    third = min(q["thirds"][0]) if q["thirds"] else None
    short = "" if s["accepted"] >= s.get("requested", s["accepted"]) else " (%d samples)" % s["accepted"]
    print("| `%s` | %s%s | %s | %s | %s | %s (%s) | %s (%s) | %s | %s | %s | %d | %.1f |" % (
        neuron, method, short, f(q["in_band"]), f(q["near_duplicates"]), f(q["distinct_fraction"]),
        f(q["coverage"]), ratio(q["coverage"], c["coverage"]),
        f(q["capped_precision"]), ratio(q["capped_precision"], c["capped_precision"]),
        f(q["norm_ratio"]), f(third), f(s["diversity"]), s["steps"], s["seconds"]))


def control(neuron, folder):
    e = json.load(open(folder + "/evaluation.json"))["bands"][0]
    c = e["control"]
    third = min(c["thirds"][0]) if c["thirds"] else None
    print("| `%s` | control G(code(x)) of %d real images | %s | %s | %s | %s | %s | %s | %s | | | |" % (
        neuron, len(e["real_images"]), f(c["in_band"]), f(c["near_duplicates"]), f(c["distinct_fraction"]),
        f(c["coverage"]), f(c["capped_precision"]), f(c["norm_ratio"]), f(third)))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "header":
        header()
    elif cmd == "row":
        row(*sys.argv[2:6])
    elif cmd == "control":
        control(*sys.argv[2:4])
