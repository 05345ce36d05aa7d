#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// The probabilities when no second output holds them; softmax's own work
/// buffer is scratch 0.
private extension ScratchBuffer {
    static let softmaxProbabilities = ScratchBuffer(1)
}

/// SoftmaxWithLoss: the multinomial logistic loss of the softmax of the
/// scores (input 0) against integer labels stored as floats (input 1).
///
/// Viewing the scores as (outer, C, inner) around `softmax_param.axis`
/// (default 1) and the labels as (outer, inner):
///   p = softmax over C of x
///   L = -1/Z * sum over (o, i) not ignored of log(max(p[o, label(o,i), i], FLT_MIN))
/// Z from `loss_param.normalization` (Caffe's rule, at least 1): VALID =
/// number of non-ignored labels (the default), FULL = outer * inner,
/// BATCH_SIZE = outer, NONE = 1; legacy `normalize: false` = BATCH_SIZE.
/// A label equal to `loss_param.ignore_label` contributes nothing.
/// Outputs: the scalar loss (shape []) and optionally the probabilities p
/// (shape of x).
///
/// Backward, with dL the loss's output gradient (the loss weight):
///   dx[o, c, i] = dL / Z * (p[o, c, i] - [c == label(o, i)])    (0 where ignored)
/// The label input gets no gradient (zeros when asked for). When a gradient
/// dp arrives on the probability output it is also carried back through the
/// softmax (dx += p * (dp - <dp, p>)); Caffe ignores it, which differs only
/// when that output is itself differentiated (it has loss weight 0 in Caffe).
final class SoftmaxWithLossLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["SoftmaxWithLoss"]
    let axisParam: Int
    let loss: LossParameters
    let tops: Int
    private var geometry = AxisGeometry()

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(2)
        try ctx.expectOutputs(1...2)
        let p = ctx.param("softmax_param")
        axisParam = try ctx.reading { try p.int("axis", default: 1) }
        loss = try lossParameters(ctx)
        tops = ctx.outputCount
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0], labels = inputs[1]
        guard x.rank >= 1, labels.rank >= 1, x[0] == labels[0] else {
            throw error("the scores \(x) and labels \(labels) must have the same first (batch) dimension")
        }
        let axis = try structureAxis(axisParam, of: x, field: "softmax_param.axis", error: { self.error($0) })
        let g = AxisGeometry(x, axis: axis)
        guard g.outer * g.inner == labels.count else {
            throw error("needs one label per prediction: scores \(x) with softmax axis \(axis) make \(g.outer * g.inner) predictions, but the labels \(labels) hold \(labels.count)")
        }
        geometry = g
        return tops == 2 ? [Shape([]), x] : [Shape([])]
    }

    /// The label at prediction (o, i), checked; nil when ignored.
    @inline(__always)
    private func label(_ labels: UnsafePointer<Float>, _ index: Int) throws -> Int? {
        let raw = labels[index]
        guard let l = labelValue(raw) else {
            throw error("label \(raw) at position \(index) is not an integer class index")
        }
        if let ig = loss.ignoreLabel, l == ig { return nil }
        guard l >= 0, l < geometry.channels else {
            throw error("label \(l) at position \(index) is outside the \(geometry.channels) classes (0 ..< \(geometry.channels))")
        }
        return l
    }

    private func normalizer(valid: Int) -> Float {
        loss.normalizer(outer: geometry.outer, inner: geometry.inner, valid: valid)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let g = geometry, c = g.channels, inner = g.inner
        let prob = outputs.count > 1 ? outputs[1].data : ctx.scratch(inputs[0].count, .softmaxProbabilities)
        softmaxForward(inputs[0].data, prob, g, work: ctx.scratch(2 * inner))
        let labels = inputs[1].data
        var total: Double = 0
        var valid = 0
        for o in 0..<g.outer {
            for i in 0..<inner {
                guard let l = try label(labels, o * inner + i) else { continue }
                total -= Double(logf(max(prob[(o * c + l) * inner + i], Float.leastNormalMagnitude)))
                valid += 1
            }
        }
        outputs[0][0] = Float(total) / normalizer(valid: valid)
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        pass.inputGrads[1]?.zero()
        guard let dxT = pass.inputGrads[0] else { return }
        let g = geometry, c = g.channels, inner = g.inner
        let dx = dxT.data, labels = pass.inputs[1].data
        // p, recomputed from the scores (kept for the dp term when there is a second output).
        let prob = ctx.scratch(dxT.count, .softmaxProbabilities)
        softmaxForward(pass.inputs[0].data, prob, g, work: ctx.scratch(2 * inner))
        dx.update(from: prob, count: dxT.count)
        var valid = 0
        for o in 0..<g.outer {
            for i in 0..<inner {
                if let l = try label(labels, o * inner + i) {
                    dx[(o * c + l) * inner + i] -= 1
                    valid += 1
                } else {
                    for k in 0..<c { dx[(o * c + k) * inner + i] = 0 }
                }
            }
        }
        let scale = pass.outputGrads[0][0] / normalizer(valid: valid)
        for i in 0..<dxT.count { dx[i] *= scale }
        if pass.outputGrads.count > 1 {
            softmaxBackward(y: prob, dy: pass.outputGrads[1].data, dx: dx, g, accumulate: true,
                            work: ctx.scratch(inner))
        }
    }

    var backwardUses: BackwardUses { .inputs }
    var isLoss: Bool { true }
}
