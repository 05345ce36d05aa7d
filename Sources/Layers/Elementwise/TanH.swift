#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// TanH: y = tanh(x).
///
/// Backward: dx = dy * (1 - y^2), from the output (so in place is fine).
final class TanHLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["TanH"]

    init(_ ctx: LayerContext) throws {
        _ = try ctx.reading { try ctx.param("tanh_param").enumName("engine", default: "DEFAULT") }
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data
        for i in 0..<inputs[0].count { y[i] = tanhf(x[i]) }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let y = pass.outputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data
        for i in 0..<dxT.count {
            let t = y[i]
            dx[i] = dy[i] * (1 - t * t)
        }
    }

    var backwardUses: BackwardUses { .outputs }
}
