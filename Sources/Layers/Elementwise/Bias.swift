import GraphIR
import Runtime

/// Bias: y = x + b, with b broadcast over x as Caffe does.
///
/// b is the learned blob 0 (one input; shape x.dims[axis ..< axis +
/// num_axes], num_axes -1 = to the end, `filler` default constant 0) or the
/// second input (any shape matching x from `axis`; a scalar adds to all).
///
/// Viewing x as (outer, D, inner) with D = b.count:
///   y[o, d, i] = x[o, d, i] + b[d]
/// Backward:
///   dx = dy
///   db[d] = sum over o, i of dy    (accumulated for blob 0, written for input 1)
final class BiasLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Bias"]
    let axis: Int
    /// Shape of the learned bias (nil when the bias is the second input).
    let biasShape: Shape?
    let filler: ParamMessage

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1...2)
        try ctx.expectOutputs(1)
        let p = ctx.param("bias_param")
        let numAxes: Int
        (axis, numAxes) = try ctx.reading { (try p.int("axis", default: 1), try p.int("num_axes", default: 1)) }
        filler = p.message("filler")   // empty: constant 0
        if ctx.inputShapes.count == 1 {
            biasShape = try broadcastParamShape(x: ctx.inputShapes[0], axis: axis, numAxes: numAxes, what: "bias",
                                                error: { ctx.error($0) })
        } else {
            biasShape = nil
        }
        super.init(base: ctx)
    }

    var parameterShapes: [Shape] { biasShape.map { [$0] } ?? [] }
    var parameterFillers: [ParamMessage?] { biasShape == nil ? [] : [filler] }

    private func geometry(_ x: Shape, _ b: Shape) throws -> BroadcastGeometry {
        try broadcastGeometry(x: x, operand: b, axis: axis, what: "bias", error: { self.error($0) })
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        _ = try geometry(inputs[0], broadcastOperandShape(inputs, learned: biasShape, what: "bias", error: { self.error($0) }))
        return [inputs[0]]
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let bT = inputs.count > 1 ? inputs[1] : parameters[0]
        let g = try geometry(inputs[0].shape, bT.shape)
        let x = inputs[0].data, y = outputs[0].data, b = bT.data
        g.forEachRow { off, d in
            let add = b[d]
            for i in off..<(off + g.inner) { y[i] = x[i] + add }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let twoInputs = pass.inputs.count > 1
        let bShape = twoInputs ? pass.inputs[1].shape : parameters[0].shape
        let g = try geometry(pass.inputs[0].shape, bShape)
        let dy = pass.outputGrads[0].data
        if let dxT = pass.inputGrads[0] { dxT.data.update(from: dy, count: dxT.count) }
        let dbT: Tensor? = twoInputs ? pass.inputGrads[1] : pass.paramGrads[0]
        if let dbT {
            if twoInputs { dbT.zero() }
            denseAccumulateBiasGrad(dy, outer: g.outer, channels: g.dim, inner: g.inner, dbT.data)
        }
    }

    var backwardUses: BackwardUses { [] }
}
