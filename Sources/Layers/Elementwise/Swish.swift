#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// Swish: y = x * sigmoid(beta * x).
///
/// Backward: with s = sigmoid(beta * x),
///   dx = dy * (s + beta * x * s * (1 - s))
/// which equals Caffe's dy * (beta * y + s * (1 - beta * y)); s is
/// recomputed from the input, so only the input is kept.
final class SwishLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["Swish"]
    let beta: Float

    init(_ ctx: LayerContext) throws {
        beta = try ctx.reading { try ctx.param("swish_param").float("beta", default: 1) }
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data, b = beta
        for i in 0..<inputs[0].count {
            let v = x[i]
            y[i] = v / (1 + expf(-b * v))
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data, b = beta
        for i in 0..<dxT.count {
            let v = x[i]
            let s = 1 / (1 + expf(-b * v))
            dx[i] = dy[i] * (s + b * v * s * (1 - s))
        }
    }

    var backwardUses: BackwardUses { .inputs }
}
