import GraphIR
import Runtime

/// Split: copies its input to every output (what Caffe inserts where a blob
/// feeds several layers; also usable explicitly).
///   y_k = x for every output k
/// Backward: dx = sum_k dy_k.
final class SplitLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Split"]
    let outputCount: Int

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectAtLeastOutputs(1)
        outputCount = ctx.outputCount
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        Array(repeating: inputs[0], count: outputCount)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        for y in outputs { y.copy(from: inputs[0]) }
    }

    /// dx = dy_0 + dy_1 + ...
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dx = pass.inputGrads[0] else { return }
        dx.copy(from: pass.outputGrads[0])
        for dy in pass.outputGrads.dropFirst() { dx.add(dy) }
    }

    var backwardUses: BackwardUses { [] }
}
