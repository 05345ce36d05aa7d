#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// Exp: y = base^(shift + scale * x); `base: -1` (the default) means e.
/// Computed as y = outer * exp(inner * x) with inner = ln(base) * scale and
/// outer = base^shift.
///
/// Backward: dx = dy * y * inner, from the output.
final class ExpLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["Exp"]
    let innerScale: Float, outerScale: Float

    init(_ ctx: LayerContext) throws {
        let p = ctx.param("exp_param")
        let (base, scale, shift) = try ctx.reading {
            (try p.float("base", default: -1), try p.float("scale", default: 1), try p.float("shift", default: 0))
        }
        if base != -1 && !(base > 0) {
            throw ctx.error("exp_param.base must be strictly positive, or -1 for e; got \(base)")
        }
        let logBase: Float = base == -1 ? 1 : logf(base)
        guard logBase.isFinite else {
            throw ctx.error("exp_param.base \(base) gives log(base) = \(logBase); use a finite positive base")
        }
        innerScale = logBase * scale
        outerScale = shift == 0 ? 1 : (base == -1 ? expf(shift) : powf(base, shift))
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data, a = innerScale, c = outerScale
        for i in 0..<inputs[0].count { y[i] = c * expf(a * x[i]) }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let y = pass.outputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data, a = innerScale
        for i in 0..<dxT.count { dx[i] = dy[i] * y[i] * a }
    }

    var backwardUses: BackwardUses { .outputs }
}
