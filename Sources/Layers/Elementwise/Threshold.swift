import GraphIR
import Runtime

/// Threshold: y = 1 if x > threshold, else 0. Forward only (Caffe has no
/// backward for it; its gradient is zero almost everywhere).
final class ThresholdLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["Threshold"]
    let threshold: Float

    init(_ ctx: LayerContext) throws {
        threshold = try ctx.reading { try ctx.param("threshold_param").float("threshold", default: 0) }
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data, t = threshold
        for i in 0..<inputs[0].count { y[i] = x[i] > t ? 1 : 0 }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        throw error("has no backward pass (its output is a step function of the input)")
    }

    var hasBackward: Bool { false }
    var backwardUses: BackwardUses { [] }
}
