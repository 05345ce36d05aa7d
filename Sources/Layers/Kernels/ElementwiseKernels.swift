#if canImport(Glibc)
import Glibc
#endif
import CBLAS
import GraphIR

// Small kernels shared by the element-wise group (BatchNorm, Scale, Bias,
// MVN, PReLU): reductions over contiguous rows. Kept here rather than in
// Runtime so the group stays self-contained.

/// Dot product of two rows of `n` floats (OpenBLAS sdot).
@inline(__always)
func ewDot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    guard n > 0 else { return 0 }
    return cblas_sdot(Int32(n), a, 1, b, 1)
}

/// Sum of squares of a row: sum_i p[i]^2.
@inline(__always)
func ewSumSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Float { ewDot(p, p, n) }

/// Per-channel reduction over a blob viewed as (outer, channels, inner):
/// out[c] = sum over o, i of f(o, c, i) with f given per row by `row`.
/// `row(offset)` returns the reduced value of the contiguous row starting at
/// `offset` (length inner).
@inline(__always)
func ewChannelSums(outer: Int, channels: Int, inner: Int, into out: UnsafeMutablePointer<Float>,
                   row: (Int) -> Float) {
    for c in 0..<channels { out[c] = 0 }
    for o in 0..<outer {
        for c in 0..<channels { out[c] += row((o * channels + c) * inner) }
    }
}

/// How a per-slice operand (a Scale factor, a Bias) lines up with its input
/// x, as Caffe's Scale and Bias layers do: the operand's shape must equal
/// x.dims[axis ..< axis + operand.rank]; x is then viewed as
/// (outer, dim, inner) with dim = operand.count.
struct BroadcastGeometry {
    let outer: Int, dim: Int, inner: Int

    /// Calls `body(offset, d)` for each contiguous row of `inner` elements,
    /// in memory order; operand element d applies to the whole row.
    @inline(__always)
    func forEachRow(_ body: (_ offset: Int, _ d: Int) -> Void) {
        var offset = 0
        for _ in 0..<outer {
            for d in 0..<dim { body(offset, d); offset += inner }
        }
    }
}

/// The shape of Scale's or Bias's operand for these input shapes: the second
/// input when there is one, else the learned blob's (`learned`, nil when the
/// layer was set up with two inputs).
func broadcastOperandShape(_ inputs: [Shape], learned: Shape?, what: String,
                           error: (String) -> Error) throws -> Shape {
    guard let s = inputs.count > 1 ? inputs[1] : learned else {
        throw error("was set up with a second input (the \(what)) but now has \(inputs.count)")
    }
    return s
}

/// The shape of a learned Scale/Bias blob: x.dims[axis ..< axis + numAxes]
/// (to the end when numAxes == -1). `error` builds the error thrown.
func broadcastParamShape(x: Shape, axis rawAxis: Int, numAxes: Int, what: String,
                         error: (String) -> Error) throws -> Shape {
    guard let axis = x.canonicalAxis(rawAxis) else {
        throw error("axis \(rawAxis) is out of range for an input of shape \(x) (\(x.rank) axes)")
    }
    guard numAxes >= -1 else {
        throw error("num_axes must be non-negative, or -1 to extend to the end of the input; got \(numAxes)")
    }
    let end = numAxes == -1 ? x.rank : axis + numAxes
    guard end <= x.rank else {
        throw error("the \(what) blob's shape (num_axes \(numAxes) from axis \(axis)) extends past the input's \(x.rank) axes (shape \(x))")
    }
    return Shape(Array(x.dims[axis..<end]))
}

/// Checks that `operand` fits x at `rawAxis` (a scalar operand fits any x)
/// and returns the (outer, dim, inner) view.
func broadcastGeometry(x: Shape, operand: Shape, axis rawAxis: Int, what: String,
                       error: (String) -> Error) throws -> BroadcastGeometry {
    let axis: Int
    if operand.rank == 0 {
        axis = 0
    } else {
        guard let a = x.canonicalAxis(rawAxis) else {
            throw error("axis \(rawAxis) is out of range for an input of shape \(x) (\(x.rank) axes)")
        }
        axis = a
    }
    guard axis + operand.rank <= x.rank else {
        throw error("the \(what) of shape \(operand) extends past the input's \(x.rank) axes (shape \(x)) when applied from axis \(axis)")
    }
    for i in 0..<operand.rank where x[axis + i] != operand[i] {
        throw error("the \(what) of shape \(operand) does not match the input \(x) at axis \(axis + i) (\(operand[i]) vs \(x[axis + i]))")
    }
    return BroadcastGeometry(outer: x.count(from: 0, to: axis), dim: operand.count,
                             inner: x.count(from: axis + operand.rank))
}
