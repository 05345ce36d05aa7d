import GraphIR
import Runtime

/// A layer that gives its one input a new shape and leaves the elements as
/// they are (row-major order): Flatten and Reshape. Each writes its own
/// `reshape`; forward and backward are the plain copies below.
protocol ShapeOnlyLayer: Layer {}

extension ShapeOnlyLayer {
    /// y = x (same elements, the output's shape).
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        outputs[0].data.update(from: inputs[0].data, count: inputs[0].count)
    }

    /// dx = dy (same elements, the input's shape).
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dx = pass.inputGrads[0] else { return }
        dx.data.update(from: pass.outputGrads[0].data, count: dx.count)
    }

    /// A copy needs neither the input nor the output to go backward.
    var backwardUses: BackwardUses { [] }
}
