#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

// Small helpers shared by the structure group (Softmax, Concat, Slice, Crop,
// losses, ...): Caffe's (outer, channels, inner) view of a blob, block
// copies, and the softmax kernels. Kept here rather than in Runtime so the
// group stays self-contained.

/// Caffe's view of a blob around `axis`: outer = count(0, axis),
/// channels = dims[axis], inner = count(axis + 1).
struct AxisGeometry: Equatable {
    var outer = 1, channels = 1, inner = 1
    init() {}
    init(_ s: Shape, axis: Int) {
        outer = s.count(from: 0, to: axis)
        channels = s[axis]
        inner = s.count(from: axis + 1)
    }
}

/// Caffe's `CanonicalAxisIndex` with an error that names the parameter:
/// negative axes count from the end; out-of-range axes are rejected.
func structureAxis(_ axis: Int, of s: Shape, field: String, error: (String) -> Error) throws -> Int {
    guard let a = s.canonicalAxis(axis) else {
        let range = s.rank == 0 ? "none: the input is a scalar" : "\(-s.rank) ..< \(s.rank)"
        throw error("\(field) \(axis) is out of range for an input of shape \(s) (\(s.rank) axes; valid: \(range))")
    }
    return a
}

/// The axis of Concat and Slice: Caffe's legacy `concat_dim`/`slice_dim`
/// (`legacyField`) when set, which must lie in 0 ..< rank (no negative
/// form), else `axis` as `structureAxis` reads it. `subject` names what the
/// shape belongs to in the message ("inputs", "an input").
func legacyDimOrAxis(_ legacy: Int?, legacyField: String, axis: Int, axisField: String, of s: Shape,
                     subject: String, error: (String) -> Error) throws -> Int {
    guard let d = legacy else { return try structureAxis(axis, of: s, field: axisField, error: error) }
    guard d >= 0, d < s.rank else {
        throw error("\(legacyField) \(d) is out of range for \(subject) with \(s.rank) axes (shape \(s)); it must be in 0 ..< \(s.rank)")
    }
    return d
}

/// Copies `count` blocks of `block` floats: block b goes from
/// `src + b * srcStride` to `dst + b * dstStride` (memcpy per block).
@inline(__always)
func copyBlocks(count: Int, block: Int, from src: UnsafePointer<Float>, srcStride: Int,
                to dst: UnsafeMutablePointer<Float>, dstStride: Int) {
    guard block > 0 else { return }
    for b in 0..<count { (dst + b * dstStride).update(from: src + b * srcStride, count: block) }
}

/// Numerically stable softmax over the channel axis of an
/// (outer, channels, inner) blob:
///   y[o, c, i] = exp(x[o, c, i] - m[o, i]) / sum_c' exp(x[o, c', i] - m[o, i])
/// with m the channel maximum. `work` holds 2 * inner floats.
/// `x` and `y` may be the same buffer.
func softmaxForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ g: AxisGeometry,
                    work: UnsafeMutablePointer<Float>) {
    let c = g.channels, inner = g.inner
    guard c > 0, inner > 0 else { return }
    let m = work, s = work + inner
    for o in 0..<g.outer {
        let xo = x + o * c * inner, yo = y + o * c * inner
        m.update(from: xo, count: inner)
        for k in 1..<c {
            let row = xo + k * inner
            for i in 0..<inner where row[i] > m[i] { m[i] = row[i] }
        }
        for i in 0..<inner { s[i] = 0 }
        for k in 0..<c {
            let xr = xo + k * inner, yr = yo + k * inner
            for i in 0..<inner {
                let e = expf(xr[i] - m[i])
                yr[i] = e
                s[i] += e
            }
        }
        for k in 0..<c {
            let yr = yo + k * inner
            for i in 0..<inner { yr[i] /= s[i] }
        }
    }
}

/// Softmax backward (Jacobian-vector product) over the channel axis:
///   dx[o, c, i] = y[o, c, i] * (dy[o, c, i] - sum_c' dy[o, c', i] * y[o, c', i])
/// `accumulate` adds into dx instead of overwriting it. `work` holds inner floats.
func softmaxBackward(y: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                     _ g: AxisGeometry, accumulate: Bool, work: UnsafeMutablePointer<Float>) {
    let c = g.channels, inner = g.inner
    guard c > 0, inner > 0 else { return }
    let dot = work
    for o in 0..<g.outer {
        let base = o * c * inner
        let yo = y + base, dyo = dy + base, dxo = dx + base
        for i in 0..<inner { dot[i] = 0 }
        for k in 0..<c {
            let yr = yo + k * inner, dr = dyo + k * inner
            for i in 0..<inner { dot[i] += dr[i] * yr[i] }
        }
        for k in 0..<c {
            let yr = yo + k * inner, dr = dyo + k * inner, xr = dxo + k * inner
            if accumulate {
                for i in 0..<inner { xr[i] += (dr[i] - dot[i]) * yr[i] }
            } else {
                for i in 0..<inner { xr[i] = (dr[i] - dot[i]) * yr[i] }
            }
        }
    }
}

/// The label at `index` of a label blob as Caffe reads it (`static_cast<int>`
/// of the float: truncation toward zero), or nil when it is not a finite
/// number that fits an Int.
@inline(__always)
func labelValue(_ v: Float) -> Int? {
    guard v.isFinite, abs(v) < 2e9 else { return nil }
    return Int(v)   // truncates toward zero, like static_cast<int>
}

/// The `loss_param` of a loss layer: the label to ignore (if any) and the
/// normalization mode (VALID, FULL, BATCH_SIZE or NONE). When neither
/// `normalization` nor the legacy `normalize` is set the mode is the layer's
/// own default (`unset`: VALID for SoftmaxWithLoss, BATCH_SIZE for
/// SigmoidCrossEntropyLoss, as in Caffe); `normalize: true` means VALID and
/// `normalize: false` BATCH_SIZE when `normalization` is unset.
struct LossParameters {
    enum Normalization: String { case full = "FULL", valid = "VALID", batchSize = "BATCH_SIZE", none = "NONE" }
    var ignoreLabel: Int?
    var normalization: Normalization

    /// The divisor of a loss summed over `outer` x `inner` predictions of
    /// which `valid` were not ignored (Caffe's rule, at least 1 so that a
    /// batch with every label ignored gives 0, not NaN): FULL = outer * inner,
    /// VALID = valid, BATCH_SIZE = outer, NONE = 1.
    func normalizer(outer: Int, inner: Int, valid: Int) -> Float {
        let z: Int
        switch normalization {
        case .full: z = outer * inner
        case .valid: z = valid
        case .batchSize: z = outer
        case .none: z = 1
        }
        return Float(max(1, z))
    }

    /// True when `target` (a label stored as a float) is the ignored label,
    /// compared as Caffe does, after `static_cast<int>`.
    @inline(__always)
    func ignores(_ target: Float) -> Bool {
        guard let ig = ignoreLabel, let l = labelValue(target) else { return false }
        return l == ig
    }
}

func lossParameters(_ ctx: LayerContext, unset: LossParameters.Normalization = .valid) throws -> LossParameters {
    let p = ctx.param("loss_param")
    let (ignore, mode, normalize) = try ctx.reading {
        (p.has("ignore_label") ? try p.int("ignore_label", default: 0) : nil,
         p.has("normalization") ? try p.enumName("normalization") : nil,
         p.has("normalize") ? try p.bool("normalize", default: true) : nil)
    }
    let norm: LossParameters.Normalization
    if let mode {
        guard let n = LossParameters.Normalization(rawValue: mode) else {
            throw ctx.error("loss_param.normalization \(mode) is unknown; use VALID, FULL, BATCH_SIZE or NONE")
        }
        norm = n
    } else if let legacy = normalize {
        norm = legacy ? .valid : .batchSize
    } else {
        norm = unset
    }
    return LossParameters(ignoreLabel: ignore, normalization: norm)
}

extension LayerContext {
    /// Caffe's MinBottomBlobs: at least `n` inputs.
    func expectAtLeastInputs(_ n: Int) throws {
        guard inputShapes.count >= n else {
            throw error("takes at least \(n) input blob(s) but has \(inputShapes.count)")
        }
    }
    /// Caffe's MinTopBlobs: at least `n` outputs.
    func expectAtLeastOutputs(_ n: Int) throws {
        guard outputCount >= n else {
            throw error("produces at least \(n) output blob(s) but has \(outputCount) tops")
        }
    }
}
