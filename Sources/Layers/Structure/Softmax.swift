import GraphIR
import Runtime

/// Softmax over one axis (`softmax_param.axis`, default 1, negative counts
/// from the end), numerically stable (the maximum is subtracted first).
///
/// Viewing x as (outer, C, inner) around the axis:
///   y[o, c, i] = exp(x[o, c, i] - max_c x[o, :, i]) / sum_c' exp(x[o, c', i] - max)
/// Backward (from the outputs only):
///   dx[o, c, i] = y[o, c, i] * (dy[o, c, i] - sum_c' dy[o, c', i] * y[o, c', i])
final class SoftmaxLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Softmax"]
    let axisParam: Int
    private var geometry = AxisGeometry()

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("softmax_param")
        axisParam = try ctx.reading { try p.int("axis", default: 1) }
        _ = try ctx.reading { try p.enumName("engine", default: "DEFAULT") }   // CPU only: any engine runs the same code
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let axis = try structureAxis(axisParam, of: inputs[0], field: "softmax_param.axis", error: { self.error($0) })
        geometry = AxisGeometry(inputs[0], axis: axis)
        return [inputs[0]]
    }

    /// x, y: any shape; softmax along the axis.
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let g = geometry
        softmaxForward(inputs[0].data, outputs[0].data, g, work: ctx.scratch(2 * g.inner))
    }

    /// dx = y * (dy - <dy, y>_channels).
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dx = pass.inputGrads[0] else { return }
        let g = geometry
        softmaxBackward(y: pass.outputs[0].data, dy: pass.outputGrads[0].data, dx: dx.data, g,
                        accumulate: false, work: ctx.scratch(g.inner))
    }

    var backwardUses: BackwardUses { .outputs }
}
