import GraphIR
import Runtime

/// Scale: y = x * s (+ b), with s broadcast over x as Caffe does.
///
/// s is the learned blob 0 (one input; shape x.dims[axis ..< axis +
/// num_axes], num_axes -1 = to the end, default filler constant 1) or the
/// second input (any shape matching x from `axis`; a scalar scales all).
/// With `bias_term: true` a learned bias b of the same shape is added; it is
/// the next parameter blob (index 1 with a learned s, 0 with two inputs) and
/// uses `bias_filler` (default constant 0).
///
/// Viewing x as (outer, D, inner) with D = s.count:
///   y[o, d, i] = x[o, d, i] * s[d] + b[d]
/// Backward:
///   dx[o, d, i] = dy[o, d, i] * s[d]
///   ds[d] = sum over o, i of dy * x    (accumulated for blob 0, written for input 1)
///   db[d] += sum over o, i of dy
final class ScaleLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Scale"]
    let axis: Int
    let biasTerm: Bool
    /// Shape of the learned scale (nil when the scale is the second input).
    let scaleShape: Shape?
    let biasShape: Shape?
    let scaleFiller: ParamMessage
    let biasFiller: ParamMessage

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1...2)
        try ctx.expectOutputs(1)
        let p = ctx.param("scale_param")
        let numAxes: Int
        (axis, numAxes, biasTerm) = try ctx.reading {
            (try p.int("axis", default: 1), try p.int("num_axes", default: 1), try p.bool("bias_term", default: false))
        }
        if p.has("filler") {
            scaleFiller = p.message("filler")
        } else {
            var f = ParamMessage()   // identity by default
            f.set("type", .string("constant"))
            f.set("value", .double(1))
            scaleFiller = f
        }
        biasFiller = p.message("bias_filler")   // empty: constant 0
        let x = ctx.inputShapes[0]
        let err = { (m: String) -> Error in ctx.error(m) }
        if ctx.inputShapes.count == 1 {
            let s = try broadcastParamShape(x: x, axis: axis, numAxes: numAxes, what: "scale", error: err)
            scaleShape = s
            biasShape = biasTerm ? s : nil
        } else {
            scaleShape = nil
            // Caffe's inner Bias layer takes num_axes from the second input.
            biasShape = biasTerm
                ? try broadcastParamShape(x: x, axis: axis, numAxes: ctx.inputShapes[1].rank, what: "bias", error: err)
                : nil
        }
        super.init(base: ctx)
    }

    var parameterShapes: [Shape] { [scaleShape, biasShape].compactMap { $0 } }
    var parameterFillers: [ParamMessage?] {
        (scaleShape == nil ? [] : [scaleFiller]) + (biasShape == nil ? [] : [biasFiller])
    }
    /// Index of the bias among the parameter blobs.
    private var biasIndex: Int { scaleShape == nil ? 0 : 1 }

    private func geometry(_ x: Shape, _ scale: Shape) throws -> BroadcastGeometry {
        let g = try broadcastGeometry(x: x, operand: scale, axis: axis, what: "scale", error: { self.error($0) })
        if let b = biasShape {
            _ = try broadcastGeometry(x: x, operand: b, axis: axis, what: "bias", error: { self.error($0) })
        }
        return g
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        _ = try geometry(inputs[0], broadcastOperandShape(inputs, learned: scaleShape, what: "scale", error: { self.error($0) }))
        return [inputs[0]]
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let sT = inputs.count > 1 ? inputs[1] : parameters[0]
        let g = try geometry(inputs[0].shape, sT.shape)
        let x = inputs[0].data, y = outputs[0].data, s = sT.data
        let b: UnsafeMutablePointer<Float>? = biasShape == nil ? nil : parameters[biasIndex].data
        g.forEachRow { off, d in
            let f = s[d], add = b?[d] ?? 0
            for i in off..<(off + g.inner) { y[i] = x[i] * f + add }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let twoInputs = pass.inputs.count > 1
        let sT = twoInputs ? pass.inputs[1] : parameters[0]
        let g = try geometry(pass.inputs[0].shape, sT.shape)
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, s = sT.data
        if biasShape != nil, let dbT = pass.paramGrads[biasIndex] {
            denseAccumulateBiasGrad(dy, outer: g.outer, channels: g.dim, inner: g.inner, dbT.data)
        }
        // ds: accumulate into the parameter gradient, overwrite the input's.
        let dsT: Tensor? = twoInputs ? pass.inputGrads[1] : pass.paramGrads[0]
        if let dsT {
            let ds = dsT.data
            if twoInputs { dsT.zero() }
            g.forEachRow { off, d in ds[d] += ewDot(dy + off, x + off, g.inner) }
        }
        if let dxT = pass.inputGrads[0] {
            let dx = dxT.data
            g.forEachRow { off, d in
                let f = s[d]
                for i in off..<(off + g.inner) { dx[i] = dy[i] * f }
            }
        }
    }

    var backwardUses: BackwardUses { .inputs }
}
