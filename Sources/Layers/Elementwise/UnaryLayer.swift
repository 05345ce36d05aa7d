import GraphIR
import Runtime

/// The skeleton of the layers that map each element on its own (Sigmoid,
/// TanH, AbsVal, ELU, ...): one input, one output of the input's shape. A
/// subclass reads its parameters, then calls `super.init(unary:)`, and
/// writes only its forward and backward loops.
class UnaryLayer: LayerBase {
    init(unary ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] { [inputs[0]] }
}
