import GraphIR
import Runtime

/// BatchNorm (Caffe's, without the affine part; follow it with a Scale
/// layer): y = (x - mean_c) / sqrt(var_c + eps), per channel c (axis 1; a
/// 1-axis input is one channel). x is viewed as (N, C, S), S = spatial size.
///
/// Parameter blobs (all statistics, never learned): 0 = running mean sum
/// (C), 1 = running variance sum (C), 2 = scale factor (1).
///
/// - Global statistics (`use_global_stats`, default true in TEST):
///   mean = blob0 * f, var = blob1 * f with f = 1 / blob2 (0 when blob2 is 0).
/// - Batch statistics: mean and (biased) var over N and S; the forward pass
///   then updates the running sums as Caffe does, with
///   m = moving_average_fraction and M = N * S:
///     blob2 = m * blob2 + 1
///     blob0 = mean + m * blob0
///     blob1 = M / (M - 1) * var + m * blob1      (M / (M - 1) = 1 when M = 1)
///
/// Backward, with sd_c = sqrt(var_c + eps) from the forward pass:
/// - global statistics: dx = dy / sd_c;
/// - batch statistics (y the output):
///     dx = (dy - mean(dy) - y * mean(dy * y)) / sd_c,
///   means over N and S per channel.
/// The parameter gradients are zero (nothing is accumulated).
final class BatchNormLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["BatchNorm"]
    let useGlobalStats: Bool
    let movingAverageFraction: Float
    let eps: Float
    let channels: Int
    /// sqrt(var_c + eps) of the last forward pass (C floats).
    private let sd = Storage(capacity: 1)
    /// Batch mean / variance scratch (C floats each).
    private let mean = Storage(capacity: 1)
    private let variance = Storage(capacity: 1)

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("batch_norm_param")
        let explicitGlobal: Bool?
        (explicitGlobal, movingAverageFraction, eps) = try ctx.reading {
            (p.has("use_global_stats") ? try p.bool("use_global_stats", default: false) : nil,
             try p.float("moving_average_fraction", default: 0.999),
             try p.float("eps", default: 1e-5))
        }
        useGlobalStats = explicitGlobal ?? (ctx.phase == .test)
        let s = ctx.inputShapes[0]
        guard s.rank >= 1 else { throw ctx.error("needs an input with at least one axis, got a scalar") }
        channels = s.rank == 1 ? 1 : s[1]
        guard channels > 0 else { throw ctx.error("input \(s) has no channels") }
        sd.reserve(channels); mean.reserve(channels); variance.reserve(channels)
        super.init(base: ctx)
    }

    var parameterShapes: [Shape] { [Shape([channels]), Shape([channels]), Shape([1])] }
    var parameterFillers: [ParamMessage?] { [nil, nil, nil] }   // constant 0
    /// Mean, variance and count are running statistics, not learned (Caffe forces lr_mult 0).
    var statisticParameters: Set<Int> { [0, 1, 2] }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let s = inputs[0]
        guard s.rank >= 1 else { throw error("needs an input with at least one axis, got a scalar") }
        let c = s.rank == 1 ? 1 : s[1]
        guard c == channels else {
            throw error("input \(s) has \(c) channels but the layer (and its statistics) has \(channels)")
        }
        return [s]
    }

    /// (N, S) of an input shape.
    private func dims(_ s: Shape) -> (num: Int, spatial: Int) {
        let n = s[0]
        return (n, n * channels == 0 ? 0 : s.count / (n * channels))
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let (num, spatial) = dims(inputs[0].shape)
        guard num * spatial > 0 else { return }   // empty batch: nothing to normalise or count
        let C = channels
        let x = inputs[0].data, y = outputs[0].data
        let mu = mean.pointer, v = variance.pointer, sd = sd.pointer
        if useGlobalStats {
            let stored = parameters[2][0]
            let f: Float = stored == 0 ? 0 : 1 / stored
            let m0 = parameters[0].data, v0 = parameters[1].data
            for c in 0..<C { mu[c] = f * m0[c]; v[c] = f * v0[c] }
        } else {
            let inv = 1 / Float(num * spatial)
            ewChannelSums(outer: num, channels: C, inner: spatial, into: mu) { rowSum(x + $0, spatial) }
            for c in 0..<C { mu[c] *= inv }
        }
        // y = x - mean
        var off = 0
        for _ in 0..<num {
            for c in 0..<C {
                let m = mu[c]
                for i in off..<(off + spatial) { y[i] = x[i] - m }
                off += spatial
            }
        }
        if !useGlobalStats {
            let inv = 1 / Float(num * spatial)
            ewChannelSums(outer: num, channels: C, inner: spatial, into: v) { ewSumSquares(y + $0, spatial) }
            for c in 0..<C { v[c] *= inv }
            // Running sums, as Caffe keeps them.
            let maf = movingAverageFraction
            let m0 = parameters[0].data, v0 = parameters[1].data, s0 = parameters[2].data
            s0[0] = s0[0] * maf + 1
            let m = num * spatial
            let correction: Float = m > 1 ? Float(m) / Float(m - 1) : 1
            for c in 0..<C {
                m0[c] = mu[c] + maf * m0[c]
                v0[c] = correction * v[c] + maf * v0[c]
            }
        }
        for c in 0..<C { sd[c] = (v[c] + eps).squareRoot() }
        off = 0
        for _ in 0..<num {
            for c in 0..<C {
                let r = sd[c]
                for i in off..<(off + spatial) { y[i] /= r }
                off += spatial
            }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let (num, spatial) = dims(pass.inputs[0].shape)
        guard num * spatial > 0 else { return }
        let C = channels
        let dy = pass.outputGrads[0].data, dx = dxT.data, sd = sd.pointer
        if useGlobalStats {
            var off = 0
            for _ in 0..<num {
                for c in 0..<C {
                    let r = sd[c]
                    for i in off..<(off + spatial) { dx[i] = dy[i] / r }
                    off += spatial
                }
            }
            return
        }
        let y = pass.outputs[0].data
        let sumDy = mean.pointer, sumDyY = variance.pointer
        ewChannelSums(outer: num, channels: C, inner: spatial, into: sumDy) { rowSum(dy + $0, spatial) }
        ewChannelSums(outer: num, channels: C, inner: spatial, into: sumDyY) { ewDot(dy + $0, y + $0, spatial) }
        let inv = 1 / Float(num * spatial)
        var off = 0
        for _ in 0..<num {
            for c in 0..<C {
                let a = sumDy[c] * inv, b = sumDyY[c] * inv, r = sd[c]
                for i in off..<(off + spatial) { dx[i] = (dy[i] - a - y[i] * b) / r }
                off += spatial
            }
        }
    }

    var backwardUses: BackwardUses { useGlobalStats ? [] : .outputs }
}
