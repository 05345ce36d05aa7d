#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// Sigmoid: y = 1 / (1 + exp(-x)).
///
/// Backward: dx = dy * y * (1 - y), from the output (so in place is fine).
final class SigmoidLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["Sigmoid"]

    init(_ ctx: LayerContext) throws {
        _ = try ctx.reading { try ctx.param("sigmoid_param").enumName("engine", default: "DEFAULT") }
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data
        for i in 0..<inputs[0].count { y[i] = 1 / (1 + expf(-x[i])) }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let y = pass.outputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data
        for i in 0..<dxT.count {
            let s = y[i]
            dx[i] = dy[i] * s * (1 - s)
        }
    }

    var backwardUses: BackwardUses { .outputs }
}
