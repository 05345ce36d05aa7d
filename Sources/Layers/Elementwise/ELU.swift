#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// ELU: y = x if x > 0, else alpha * (exp(x) - 1).
///
/// Backward: dx = dy if x > 0, else dy * alpha * exp(x) (which is Caffe's
/// dy * (y + alpha), computed from the input so only the input is kept).
final class ELULayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["ELU"]
    let alpha: Float

    init(_ ctx: LayerContext) throws {
        alpha = try ctx.reading { try ctx.param("elu_param").float("alpha", default: 1) }
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data, a = alpha
        for i in 0..<inputs[0].count {
            let v = x[i]
            y[i] = max(v, 0) + a * (expf(min(v, 0)) - 1)
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data, a = alpha
        for i in 0..<dxT.count {
            let v = x[i]
            dx[i] = v > 0 ? dy[i] : dy[i] * a * expf(v)
        }
    }

    var backwardUses: BackwardUses { .inputs }
}
