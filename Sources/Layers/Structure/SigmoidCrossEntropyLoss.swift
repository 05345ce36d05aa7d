#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// SigmoidCrossEntropyLoss: the cross-entropy of independent Bernoulli
/// predictions σ(x) (scores, input 0) against targets t in [0, 1] (input 1,
/// any shape with the same count and the same first dimension), as BVLC
/// Caffe 1.0 defines it.
///
/// Per element, in the form that never overflows (log1p of a number in (0, 1]):
///   ℓ(x, t) = -[t log σ(x) + (1 - t) log(1 - σ(x))]
///           = max(x, 0) - x t + log(1 + exp(-|x|))
///   L = 1/Z * sum over the elements not ignored of ℓ
/// Viewing the scores as (outer, inner) = (x.dims[0], the rest), Z comes from
/// `loss_param` (at least 1): BATCH_SIZE = outer when neither `normalization`
/// nor `normalize` is set (Caffe's default for this layer, unlike
/// SoftmaxWithLoss's VALID), FULL = outer * inner, VALID = number of elements
/// not ignored, NONE = 1; legacy `normalize: true` = VALID, `false` =
/// BATCH_SIZE. With `loss_param.ignore_label` set, an element whose target
/// truncates to that integer (`static_cast<int>`, so 0.7 counts as 0)
/// contributes nothing. Targets are not checked to lie in [0, 1]; Caffe does
/// not either. The output is the scalar loss (shape []).
///
/// Backward, with dL the loss's output gradient (the loss weight, 1 unless
/// `loss_weight` says otherwise):
///   dx = dL / Z * (σ(x) - t)      (0 where ignored)
/// The targets get no gradient. Caffe aborts when they need one; here a
/// `propagate_down: true` on the targets is refused when the net is built,
/// and a target gradient asked for otherwise is zeros: when the targets are
/// a net input whose gradient is requested (as Caffe's `force_backward`
/// would, which skips a loss layer's second input), and also when they are
/// computed from learned values, where Caffe would abort.
final class SigmoidCrossEntropyLossLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["SigmoidCrossEntropyLoss"]
    let loss: LossParameters

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(2)
        try ctx.expectOutputs(1)
        loss = try lossParameters(ctx, unset: .batchSize)
        let down = ctx.node.propagateDown
        if down.count > 1, down[1] {
            throw ctx.error("cannot back-propagate to its targets (the second bottom), but propagate_down asks for it; set the second propagate_down to false (`propagate_down: true propagate_down: false`) or drop the propagate_down lines")
        }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0], t = inputs[1]
        guard x.rank >= 1, t.rank >= 1, x[0] == t[0] else {
            throw error("the scores \(x) and targets \(t) must have the same first (batch) dimension; give one target per score")
        }
        guard x.count == t.count else {
            throw error("needs one target per score: the scores \(x) hold \(x.count) values but the targets \(t) hold \(t.count)")
        }
        return [Shape([])]
    }

    /// Z for these scores, `valid` elements not ignored.
    private func normalizer(_ x: Tensor, valid: Int) -> Float {
        let outer = x.shape[0]
        return loss.normalizer(outer: outer, inner: outer == 0 ? 0 : x.count / outer, valid: valid)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, t = inputs[1].data
        var total: Double = 0
        var valid = 0
        for i in 0..<inputs[0].count where !loss.ignores(t[i]) {
            let v = x[i]
            total += Double(max(v, 0) - v * t[i] + log1pf(expf(-abs(v))))
            valid += 1
        }
        outputs[0][0] = Float(total) / normalizer(inputs[0], valid: valid)
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        pass.inputGrads[1]?.zero()
        guard let dxT = pass.inputGrads[0] else { return }
        let x = pass.inputs[0].data, t = pass.inputs[1].data, dx = dxT.data
        var valid = 0
        for i in 0..<dxT.count {
            if loss.ignores(t[i]) {
                dx[i] = 0
            } else {
                // σ(x) without overflow: exp of a non-positive number only.
                let e = expf(-abs(x[i]))
                let s = x[i] >= 0 ? 1 / (1 + e) : e / (1 + e)
                dx[i] = s - t[i]
                valid += 1
            }
        }
        let scale = pass.outputGrads[0][0] / normalizer(pass.inputs[0], valid: valid)
        for i in 0..<dxT.count { dx[i] *= scale }
    }

    var backwardUses: BackwardUses { .inputs }
    var isLoss: Bool { true }
}
