import GraphIR
import Runtime

/// Dropout with ratio p.
///
/// TRAIN: each element is kept with probability 1 - p (a Bernoulli mask
/// drawn from the execution context's generator) and the kept ones are
/// scaled by 1 / (1 - p): y = x * m * scale. TEST: y = x.
/// With `scale_train: false` (a field of some Caffe forks; BVLC always
/// scales in training) TRAIN computes y = x * m and TEST y = x * (1 - p).
///
/// The mask (already multiplied by the scale) is kept from the last TRAIN
/// forward for the backward pass: dx = dy * m * scale; in TEST dx = dy (times
/// 1 - p without scale_train). The phase is the execution context's at
/// forward time.
final class DropoutLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["Dropout"]
    let ratio: Float
    let scaleTrain: Bool
    /// Per-element factor m * scale of the last TRAIN forward.
    private let mask = Storage(capacity: 1)
    private var maskCount = 0
    /// Phase of the last forward (decides what backward does).
    private var lastPhase: Phase

    init(_ ctx: LayerContext) throws {
        let p = ctx.param("dropout_param")
        (ratio, scaleTrain) = try ctx.reading {
            (try p.float("dropout_ratio", default: 0.5), try p.bool("scale_train", default: true))
        }
        guard ratio >= 0, ratio < 1 else {
            throw ctx.error("dropout_param.dropout_ratio must be in [0, 1), got \(ratio)")
        }
        lastPhase = ctx.phase
        try super.init(unary: ctx)
    }

    /// Factor applied to the kept elements in TRAIN, and to all in TEST.
    private var trainScale: Float { scaleTrain ? 1 / (1 - ratio) : 1 }
    private var testScale: Float { scaleTrain ? 1 : 1 - ratio }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let n = inputs[0].count, x = inputs[0].data, y = outputs[0].data
        lastPhase = ctx.phase
        if ctx.phase == .train {
            mask.reserve(n)
            maskCount = n
            let m = mask.pointer, keep = 1 - ratio, s = trainScale
            var rng = ctx.rng
            for i in 0..<n { m[i] = rng.uniform() < keep ? s : 0 }
            ctx.rng = rng
            for i in 0..<n { y[i] = x[i] * m[i] }
        } else {
            let s = testScale
            for i in 0..<n { y[i] = x[i] * s }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let n = dxT.count, dy = pass.outputGrads[0].data, dx = dxT.data
        if lastPhase == .train {
            guard maskCount == n else {
                throw error("backward for \(n) elements but the last training forward masked \(maskCount); run forward on this batch first")
            }
            let m = mask.pointer
            for i in 0..<n { dx[i] = dy[i] * m[i] }
        } else {
            let s = testScale
            for i in 0..<n { dx[i] = dy[i] * s }
        }
    }

    var backwardUses: BackwardUses { [] }
}
