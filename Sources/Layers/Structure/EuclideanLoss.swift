import GraphIR
import Runtime

/// EuclideanLoss: half the mean (over the batch) squared distance of two
/// inputs of the same per-item size. The output is a scalar (shape []).
///
///   L = 1 / (2N) * sum_i (a_i - b_i)^2,   N = a.dims[0]
/// Backward, scaled by the output gradient dy = dL (the loss weight):
///   da = dy / N * (a - b),   db = -da
final class EuclideanLossLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["EuclideanLoss"]

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(2)
        try ctx.expectOutputs(1)
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let a = inputs[0], b = inputs[1]
        guard a.rank >= 1, b.rank >= 1, a[0] == b[0] else {
            throw error("the two inputs must have the same first (batch) dimension: \(a) vs \(b)")
        }
        guard a.count(from: 1) == b.count(from: 1) else {
            throw error("the two inputs must have the same number of values per item: \(a) vs \(b)")
        }
        return [Shape([])]
    }

    private func batch(_ t: Tensor) -> Float { Float(max(t.shape.dims.first ?? 1, 1)) }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let a = inputs[0].data, b = inputs[1].data, n = inputs[0].count
        var s: Float = 0
        for i in 0..<n {
            let d = a[i] - b[i]
            s += d * d
        }
        outputs[0][0] = s / batch(inputs[0]) / 2
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let a = pass.inputs[0].data, b = pass.inputs[1].data, n = pass.inputs[0].count
        let alpha = pass.outputGrads[0][0] / batch(pass.inputs[0])
        for (k, g) in pass.inputGrads.enumerated() {
            guard let dx = g?.data else { continue }
            let s = k == 0 ? alpha : -alpha
            for i in 0..<n { dx[i] = s * (a[i] - b[i]) }
        }
    }

    var backwardUses: BackwardUses { .inputs }
    var isLoss: Bool { true }
}
