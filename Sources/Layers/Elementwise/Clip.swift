import GraphIR
import Runtime

/// Clip: y = max(min, min(x, max)); `clip_param { min max }` are required.
///
/// Backward: dx = dy where min <= x <= max (both ends included, as in
/// Caffe), else 0.
final class ClipLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["Clip"]
    let lo: Float, hi: Float

    init(_ ctx: LayerContext) throws {
        let p = ctx.param("clip_param")
        // Required in caffe.proto (a schema would otherwise supply 0).
        for f in ["min", "max"] where !p.has(f) {
            throw ctx.error("clip_param.\(f) is required: give clip_param { min: ... max: ... }")
        }
        (lo, hi) = try ctx.reading { (try p.float("min"), try p.float("max")) }
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data, lo = lo, hi = hi
        for i in 0..<inputs[0].count { y[i] = max(lo, min(x[i], hi)) }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data, lo = lo, hi = hi
        for i in 0..<dxT.count {
            let v = x[i]
            dx[i] = (v >= lo && v <= hi) ? dy[i] : 0
        }
    }

    var backwardUses: BackwardUses { .inputs }
}
