import GraphIR
import Runtime

/// Silence: consumes its inputs (so Caffe does not report them as net
/// outputs) and produces nothing. Backward writes zero gradients.
final class SilenceLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Silence"]

    init(_ ctx: LayerContext) throws {
        try ctx.expectAtLeastInputs(1)
        try ctx.expectOutputs(0)
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] { [] }
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {}

    /// dx_k = 0.
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        for case let dx? in pass.inputGrads { dx.zero() }
    }

    var backwardUses: BackwardUses { [] }
}
