import GraphIR
import Runtime

/// Input: declares net inputs and their shapes (`input_param { shape {...} }`).
/// The executor feeds its tops directly; the layer only reports shapes.
final class InputLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Input"]
    let declared: [Shape]

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(0)
        let p = ctx.param("input_param")
        let shapes = try ctx.reading { try p.messages("shape").map { Shape(try $0.ints("dim")) } }
        // One shape for all tops, or one per top (Caffe's rule).
        guard shapes.count == 1 || shapes.count == ctx.outputCount else {
            throw ctx.error("input_param gives \(shapes.count) shapes for \(ctx.outputCount) tops; give one shape, or one per top")
        }
        declared = (0..<ctx.outputCount).map { shapes.count == 1 ? shapes[0] : shapes[$0] }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] { declared }
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {}
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {}
    var hasBackward: Bool { false }
}
