#if canImport(Glibc)
import Glibc
#endif
import GraphIR
import Runtime

/// Power: y = (shift + scale * x)^power.
///
/// Caffe's special cases: when power * scale == 0 the output ignores x
/// (y = 1 if power == 0, else shift^power) and the gradient is 0.
///
/// Backward: dx = dy * power * scale * (shift + scale * x)^(power - 1);
/// power == 1 gives dx = dy * scale, power == 2 gives
/// dx = dy * 2 * scale * (shift + scale * x). Computed from the input only
/// (Caffe's y / (shift + scale * x) form is 0/0 where the base is 0).
final class PowerLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["Power"]
    let power: Float, scale: Float, shift: Float
    /// d y / d x factor outside the power: power * scale.
    let diffScale: Float

    init(_ ctx: LayerContext) throws {
        let p = ctx.param("power_param")
        (power, scale, shift) = try ctx.reading {
            (try p.float("power", default: 1), try p.float("scale", default: 1), try p.float("shift", default: 0))
        }
        diffScale = power * scale
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let n = inputs[0].count, x = inputs[0].data, y = outputs[0].data
        let (p, a, b) = (power, scale, shift)
        if diffScale == 0 {
            y.update(repeating: p == 0 ? 1 : powf(b, p), count: n)
            return
        }
        if p == 1 {
            for i in 0..<n { y[i] = b + a * x[i] }
        } else if p == 2 {
            for i in 0..<n { let u = b + a * x[i]; y[i] = u * u }
        } else {
            for i in 0..<n { y[i] = powf(b + a * x[i], p) }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let n = dxT.count, x = pass.inputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data
        let (p, a, b, d) = (power, scale, shift, diffScale)
        if d == 0 {
            dxT.zero()
        } else if p == 1 {
            for i in 0..<n { dx[i] = dy[i] * d }
        } else if p == 2 {
            for i in 0..<n { dx[i] = dy[i] * d * (b + a * x[i]) }
        } else {
            for i in 0..<n { dx[i] = dy[i] * d * powf(b + a * x[i], p - 1) }
        }
    }

    var backwardUses: BackwardUses { .inputs }
}
