#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// BNLL (binomial normal log likelihood, softplus): y = log(1 + exp(x)),
/// computed stably as x + log(1 + exp(-x)) for x > 0.
///
/// Backward: dx = dy * e / (1 + e) with e = exp(min(x, 50)) (Caffe's clamp).
final class BNLLLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["BNLL"]
    /// Caffe's kBNLL_THRESHOLD: exp is clamped here in the backward pass.
    static let threshold: Float = 50

    init(_ ctx: LayerContext) throws {
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data
        for i in 0..<inputs[0].count {
            let v = x[i]
            y[i] = v > 0 ? v + log1pf(expf(-v)) : log1pf(expf(v))
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data
        let t = Self.threshold
        for i in 0..<dxT.count {
            let e = expf(min(x[i], t))
            dx[i] = dy[i] * e / (e + 1)
        }
    }

    var backwardUses: BackwardUses { .inputs }
}
