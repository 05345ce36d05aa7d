#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// Log: y = log_base(shift + scale * x); `base: -1` (the default) means e.
///
/// Backward: dx = dy * scale / (ln(base) * (shift + scale * x)), from the input.
final class LogLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["Log"]
    let scale: Float, shift: Float
    /// 1 / ln(base).
    let baseScale: Float

    init(_ ctx: LayerContext) throws {
        let p = ctx.param("log_param")
        let base: Float
        (base, scale, shift) = try ctx.reading {
            (try p.float("base", default: -1), try p.float("scale", default: 1), try p.float("shift", default: 0))
        }
        if base != -1 && !(base > 0) {
            throw ctx.error("log_param.base must be strictly positive, or -1 for e; got \(base)")
        }
        let logBase: Float = base == -1 ? 1 : logf(base)
        baseScale = 1 / logBase
        guard logBase.isFinite, baseScale.isFinite else {
            throw ctx.error("log_param.base \(base) gives log(base) = \(logBase), which cannot be divided by; use a positive base other than 1")
        }
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data, a = scale, b = shift, k = baseScale
        for i in 0..<inputs[0].count { y[i] = logf(b + a * x[i]) * k }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data
        let a = scale, b = shift, num = scale * baseScale
        for i in 0..<dxT.count { dx[i] = dy[i] * num / (b + a * x[i]) }
    }

    var backwardUses: BackwardUses { .inputs }
}
