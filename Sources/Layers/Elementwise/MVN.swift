import GraphIR
import Runtime

/// MVN: mean (and variance) normalisation of each sample's channels, or of
/// each whole sample with `across_channels: true`.
///
/// Caffe works on the legacy 4-d view (num, channels, height, width) of an
/// input of up to 4 axes, and its output has that 4-d shape. Rows are
/// (num * channels) rows of height * width values, or num rows of
/// channels * height * width with `across_channels`. Per row of n values:
///   u = x - mean(x)
///   y = u                       (normalize_variance: false)
///   y = u / (sqrt(mean(u^2)) + eps)   (default; eps outside the root, as Caffe)
///
/// Backward, with s = sqrt(mean(u^2)), d = s + eps, g = dy:
///   dx = g - mean(g)                                       (no variance)
///   dx = (g - mean(g) - y * mean(g * y) * d / s) / d       (exact derivative;
///        Caffe omits the d / s factor, a relative difference of eps / s)
final class MVNLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["MVN"]
    let normalizeVariance: Bool
    let acrossChannels: Bool
    let eps: Float
    /// Per row of the last forward pass: d = s + eps and d / s.
    private let rowD = Storage(capacity: 1)
    private let rowRatio = Storage(capacity: 1)

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("mvn_param")
        (normalizeVariance, acrossChannels, eps) = try ctx.reading {
            (try p.bool("normalize_variance", default: true), try p.bool("across_channels", default: false),
             try p.float("eps", default: 1e-9))
        }
        super.init(base: ctx)
    }

    /// Caffe's legacy (num, channels, height, width) of a shape of <= 4 axes.
    private func legacy4(_ s: Shape) throws -> [Int] {
        guard s.rank <= 4 else {
            throw error("works on inputs of at most 4 axes (num, channels, height, width), got \(s)")
        }
        return (0..<4).map { $0 < s.rank ? s[$0] : 1 }
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] { [Shape(try legacy4(inputs[0]))] }

    /// (rows, row length) of an input shape.
    private func rows(_ s: Shape) throws -> (rows: Int, dim: Int) {
        let d = try legacy4(s)
        let rows = acrossChannels ? d[0] : d[0] * d[1]
        return (rows, rows == 0 ? 0 : s.count / rows)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let (rows, dim) = try rows(inputs[0].shape)
        guard dim > 0 else { return }
        let x = inputs[0].data, y = outputs[0].data
        rowD.reserve(rows); rowRatio.reserve(rows)
        let dRow = rowD.pointer, ratio = rowRatio.pointer
        let inv = 1 / Float(dim)
        for r in 0..<rows {
            let off = r * dim
            let m = rowSum(x + off, dim) * inv
            for i in off..<(off + dim) { y[i] = x[i] - m }
            guard normalizeVariance else { continue }
            let s = (ewSumSquares(y + off, dim) * inv).squareRoot()
            let d = s + eps
            dRow[r] = d
            ratio[r] = s > 0 ? d / s : 1
            for i in off..<(off + dim) { y[i] /= d }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let (rows, dim) = try rows(pass.inputs[0].shape)
        guard dim > 0 else { return }
        let dy = pass.outputGrads[0].data, dx = dxT.data
        let inv = 1 / Float(dim)
        if !normalizeVariance {
            for r in 0..<rows {
                let off = r * dim
                let mg = rowSum(dy + off, dim) * inv
                for i in off..<(off + dim) { dx[i] = dy[i] - mg }
            }
            return
        }
        let y = pass.outputs[0].data, dRow = rowD.pointer, ratio = rowRatio.pointer
        for r in 0..<rows {
            let off = r * dim
            let mg = rowSum(dy + off, dim) * inv
            let mgy = ewDot(dy + off, y + off, dim) * inv * ratio[r]
            let d = dRow[r]
            for i in off..<(off + dim) { dx[i] = (dy[i] - mg - y[i] * mgy) / d }
        }
    }

    var backwardUses: BackwardUses { normalizeVariance ? .outputs : [] }
}
