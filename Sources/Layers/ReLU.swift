import GraphIR
import Runtime

/// ReLU: y = x if x > 0, else negative_slope * x (leaky when the slope is set).
///
/// Backward: dx = dy where x > 0, else negative_slope * dy. The mask is read
/// from the input, so the layer works in place too (x > 0 <=> y > 0 for
/// slope >= 0).
final class ReLULayer: LayerBase, BuiltinLayer {
    static let typeNames = ["ReLU"]
    let slope: Float

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        slope = try ctx.reading { try ctx.param("relu_param").float("negative_slope", default: 0) }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] { [inputs[0]] }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data, s = slope
        for i in 0..<inputs[0].count {
            let v = x[i]
            y[i] = v > 0 ? v : v * s
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data, s = slope
        for i in 0..<dxT.count { dx[i] = x[i] > 0 ? dy[i] : dy[i] * s }
    }

    var backwardUses: BackwardUses { .inputs }
}
