#!/usr/bin/env python3
"""Writes Sources/Layers/Kernels/WinogradTiles.swift: the tile transforms of
Winograd's F(m, T) as straight-line code on eight tiles (SIMD8 lanes) at a
time, one enum per transform, from exact Toom-Cook matrices (the
construction is described at the top of Winograd.swift; the layer tests
compare every transform with a direct convolution).

The transforms read and write through pointers, never through closures:
a closure argument with a dozen or more call sites is not always inlined,
and an out-of-line call per SIMD8 value (returned in two halves) made the
input transform several times slower than its memory traffic.

Regenerate after changing the points or the set of transforms:
    python3 tools/gen-winograd.py > Sources/Layers/Kernels/WinogradTiles.swift
"""
from fractions import Fraction

POINTS = [Fraction(0), Fraction(1), Fraction(-1), Fraction(2), Fraction(-2), Fraction(1, 2), Fraction(-1, 2)]
TRANSFORMS = [(2, 3), (4, 3), (3, 2), (4, 2), (2, 4), (2, 5), (4, 5)]   # (m, T)


def poly(roots):
    """Ascending coefficients of prod (x - root)."""
    c = [Fraction(1)]
    for r in roots:
        n = [Fraction(0)] * (len(c) + 1)
        for i, x in enumerate(c):
            n[i + 1] += x
            n[i] -= r * x
        c = n
    return c


def matrices(m, t):
    a = m + t - 1
    n = a - 1
    p = POINTS[:n]
    at = [[Fraction(0)] * a for _ in range(m)]
    g = [[Fraction(0)] * t for _ in range(a)]
    bt = [[Fraction(0)] * a for _ in range(a)]
    for j in range(n):
        others = [p[l] for l in range(n) if l != j]
        nj = Fraction(1)
        for o in others:
            nj *= p[j] - o
        sign = -1 if nj < 0 else 1
        for i in range(m):
            at[i][j] = p[j] ** i
        for k in range(t):
            g[j][k] = sign * p[j] ** k / nj
        for i, c in enumerate(poly(others)):
            bt[j][i] = sign * c
    at[m - 1][n] = Fraction(1)
    g[n][t - 1] = Fraction(1)
    for i, c in enumerate(poly(p)):
        bt[n][i] = c
    return at, g, bt


def literal(c):
    if c.denominator == 1:
        return f"({c.numerator} as Float)"
    return f"(Float({c.numerator}) / {c.denominator})"


def combination(name, terms, start=None):
    """`let name: S = sum(c * x)` over the nonzero terms, as a chain of
    single-operator statements (fast to type-check, every operator small
    enough to be inlined)."""
    terms = [(c, x) for c, x in terms if c != 0]
    terms.sort(key=lambda term: term[0] < 0)   # a positive term first: no negation
    lines = []
    acc = start
    for n, (c, x) in enumerate(terms):
        if c in (1, -1):
            term = x
        else:
            term = f"{name}_{n}"
            lines.append(f"let {term}: S = {literal(abs(c))} * {x}")
        if acc is None:
            if c < 0:
                lines.append(f"let {name}_a{n}: S = -{term}")
                acc = f"{name}_a{n}"
            else:
                acc = term
        else:
            lines.append(f"let {name}_a{n}: S = {acc} {'-' if c < 0 else '+'} {term}")
            acc = f"{name}_a{n}"
    lines.append(f"return_{name} = {acc if acc is not None else 'S()'}")
    return lines


def one_d(fname, matrix, rows, cols, doc):
    """A 1-D transform: `rows` outputs from `cols` inputs (tuples)."""
    ins = ", ".join(f"_ x{q}: S" for q in range(cols))
    outs = ", ".join("S" for _ in range(rows))
    body = []
    for i in range(rows):
        body.extend(combination(f"y{i}", [(matrix[i][q], f"x{q}") for q in range(cols)]))
    text = [f"    /// {doc}", "    @inline(__always)",
            f"    static func {fname}({ins}) -> ({outs}) {{"]
    results = []
    for line in body:
        if line.startswith("return_"):
            name, value = line[len("return_"):].split(" = ")
            results.append(value)
        else:
            text.append("        " + line)
    text.append(f"        return ({', '.join(results)})")
    text.append("    }")
    return text


def two_d(fn, n_in, n_out, load, store):
    """Statements applying the 1-D transform `fn` (n_in values -> n_out) to
    every column of an n_in x n_in tile (`load(i, j)`), then to every row of
    the result, handing element (i, j) to `store(i, j, value)`."""
    lines = []
    for j in range(n_in):
        lines.append(f"let c{j} = {fn}({', '.join(load(i, j) for i in range(n_in))})")
    for i in range(n_out):
        lines.append(f"let r{i} = {fn}({', '.join(f'c{j}.{i}' for j in range(n_in))})")
        for j in range(n_out):
            lines.append(store(i, j, f"r{i}.{j}"))
    return lines


def emit_input(a):
    """B^T depends on alpha alone (the points), so the tiles of one alpha
    share it."""
    _, _, bt = matrices(2, a - 1)
    users = ", ".join(f"F({m}, {t})" for m, t in TRANSFORMS if m + t - 1 == a)
    out = [f"/// The input transform of {a}x{a} tiles, shared by {users}.",
           f"enum WinogradInputTile{a} {{",
           "    typealias S = SIMD8<Float>",
           ""]
    out.extend(one_d("bt", bt, a, a, "B^T x: one column or row of an input tile."))
    out.append("}")
    return out


def emit(m, t):
    at, g, bt = matrices(m, t)
    a = m + t - 1
    out = []
    w = out.append
    w(f"/// F({m}, {t}): {m}x{m} outputs from {a}x{a} inputs and {t}x{t} taps.")
    w(f"enum WinogradF{m}x{t}: WinogradTile {{")
    w(f"    static var m: Int {{ {m} }}")
    w(f"    static var taps: Int {{ {t} }}")
    w("")
    out.extend(one_d("at", at, m, a, "A^T x: one column or row of a product tile."))
    w("")
    out.extend(one_d("gg", g, a, t, "G x: one column or row of a filter."))
    w("")
    def method(doc, signature, body):
        out.extend(doc)
        w("    @inline(__always)")
        w(f"    static func {signature} {{")
        out.extend("        " + line for line in body)
        w("    }")

    # Input: row i of the eight tiles starts at rows[i]; that virtual row
    # is split into m phases of `run` floats, so column j of the tiles is
    # the contiguous run at phase (j mod m), offset j / m. `arrays` names
    # the row-pointer parameters and the prefix of their locals; `load`
    # turns the element's address in each into the eight-lane value.
    def input_method(doc, signature, arrays, load):
        prologue = [f"let {x}{i} = {arr}[{i}]" for arr, x in arrays for i in range(a)]
        prologue += [f"let {x}{i}_{f} = {x}{i} + {f} * run" for _, x in arrays for i in range(a) for f in range(1, m)]
        def element(i, j):
            d = f" + {j // m}" if j // m else ""
            return load([(f"{x}{i}" if j % m == 0 else f"{x}{i}_{j % m}") + d for _, x in arrays])
        method(doc, signature,
               prologue + two_d(f"WinogradInputTile{a}.bt", a, a, element,
                                lambda i, j, x: f"winogradStore({x}, v + {i * a + j} * vStride)"))

    input_method(["    /// V = B^T d B for eight tiles. Input row i of the tiles starts at",
                  "    /// `rows[i]`, split into m phases of `run` floats: column j is at",
                  "    /// phase j % m, offset j / m. Position xi = i * alpha + j goes to",
                  "    /// `v + xi * vStride` (eight floats)."],
                 "input(_ rows: UnsafePointer<UnsafePointer<Float>>, run: Int, _ v: UnsafeMutablePointer<Float>, vStride: Int)",
                 [("rows", "p")], lambda at: f"winogradLoad({at[0]})")
    w("")
    # The same from two tile rows: lanes 0..3 from `lo`, lanes 4..7 from
    # `hi` (four tiles per row, as on a 13x13 plane with F(4, 3)).
    input_method(["    /// `input` on four tiles of each of two tile rows: lanes 0..3 read",
                  "    /// through `lo`, lanes 4..7 through `hi` (each laid out as `rows`)."],
                 "inputPair(_ lo: UnsafePointer<UnsafePointer<Float>>, _ hi: UnsafePointer<UnsafePointer<Float>>, run: Int, _ v: UnsafeMutablePointer<Float>, vStride: Int)",
                 [("lo", "p"), ("hi", "q")], lambda at: f"winogradLoadPair({at[0]}, {at[1]})")
    w("")
    method(["    /// Y = A^T M A + bias for eight tiles: position xi is read at",
            "    /// `mm + xi * mStride`; result (i, j) goes to `y + 8 * (i * m + j)`."],
           "output(_ mm: UnsafePointer<Float>, mStride: Int, bias: S, _ y: UnsafeMutablePointer<Float>)",
           two_d("at", a, m, lambda i, j: f"winogradLoad(mm + {i * a + j} * mStride)",
                 lambda i, j, x: f"winogradStore({x} + bias, y + {8 * (i * m + j)})"))
    w("")
    method(["    /// U = G g G^T for eight filters: tap (i, j) is read at",
            "    /// `g + 8 * (i * taps + j)`; position xi goes to `u + xi * uStride`."],
           "filter(_ g: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>, uStride: Int)",
           two_d("gg", t, a, lambda i, j: f"winogradLoad(g + {8 * (i * t + j)})",
                 lambda i, j, x: f"winogradStore({x}, u + {i * a + j} * uStride)"))
    w("}")
    return out


def main():
    print("// Generated by tools/gen-winograd.py; do not edit. Regenerate with")
    print("//     python3 tools/gen-winograd.py > Sources/Layers/Kernels/WinogradTiles.swift")
    print("// Straight-line tile transforms of Winograd's F(m, T) on eight tiles at a")
    print("// time (see Winograd.swift for the algorithm and the matrices).")
    print("")
    print("/// The tile transforms of one F(m, T), each on eight tiles (SIMD8 lanes).")
    print("protocol WinogradTile {")
    print("    static var m: Int { get }")
    print("    static var taps: Int { get }")
    print("    typealias S = SIMD8<Float>")
    print("    static func input(_ rows: UnsafePointer<UnsafePointer<Float>>, run: Int, _ v: UnsafeMutablePointer<Float>, vStride: Int)")
    print("    static func inputPair(_ lo: UnsafePointer<UnsafePointer<Float>>, _ hi: UnsafePointer<UnsafePointer<Float>>, run: Int, _ v: UnsafeMutablePointer<Float>, vStride: Int)")
    print("    static func output(_ mm: UnsafePointer<Float>, mStride: Int, bias: S, _ y: UnsafeMutablePointer<Float>)")
    print("    static func filter(_ g: UnsafePointer<Float>, _ u: UnsafeMutablePointer<Float>, uStride: Int)")
    print("}")
    print("")
    print("/// Eight floats at p (any alignment).")
    print("@inline(__always)")
    print("func winogradLoad(_ p: UnsafePointer<Float>) -> SIMD8<Float> {")
    print("    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)")
    print("}")
    print("")
    print("/// Four floats at lo (lanes 0..3) and four at hi (lanes 4..7).")
    print("@inline(__always)")
    print("func winogradLoadPair(_ lo: UnsafePointer<Float>, _ hi: UnsafePointer<Float>) -> SIMD8<Float> {")
    print("    SIMD8(lowHalf: UnsafeRawPointer(lo).loadUnaligned(as: SIMD4<Float>.self),")
    print("          highHalf: UnsafeRawPointer(hi).loadUnaligned(as: SIMD4<Float>.self))")
    print("}")
    print("")
    print("/// Stores eight floats at p (any alignment).")
    print("@inline(__always)")
    print("func winogradStore(_ x: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {")
    print("    UnsafeMutableRawPointer(p).storeBytes(of: x, as: SIMD8<Float>.self)")
    print("}")
    print("")
    print("extension WinogradTile {")
    print("    static var alpha: Int { m + taps - 1 }")
    print("}")
    for a in sorted({m + t - 1 for m, t in TRANSFORMS}):
        print("")
        print("\n".join(emit_input(a)))
    for m, t in TRANSFORMS:
        print("")
        print("\n".join(emit(m, t)))


if __name__ == "__main__":
    main()
