import GraphIR
import Runtime

/// Reshape: gives the data a new shape without changing them (row-major).
///
/// `reshape_param.shape` lists the new dims for the input axes
/// `axis ..< axis + num_axes` (defaults 0 and -1 = all; a negative `axis`
/// counts from the end, -1 meaning "after the last axis"). In the new dims
/// `0` copies the input dim at the same position and one `-1` is inferred
/// so the element count is unchanged (Caffe's rules).
///
/// Batch-size rule (an InverseSet extension): Caffe nets such as PPGN's fc6
/// generator hard-code the batch in a Reshape (`dim: 1` / `dim: 10`). When
/// the replaced range starts at axis 0 and the first new dim is an explicit
/// number equal to 1 or to the batch the net was declared with (the first dim
/// of this layer's input at set-up), that dim follows the actual batch when
/// it differs AND the declared dims would not fit the new element count. Nets whose dims still fit are reshaped exactly as Caffe
/// would.
///
/// Forward and backward are plain copies (`ShapeOnlyLayer`).
final class ReshapeLayer: LayerBase, BuiltinLayer, ShapeOnlyLayer {
    static let typeNames = ["Reshape"]
    let dims: [Int]
    let axisParam: Int
    let numAxes: Int
    /// The batch (first input dim) at set-up, for the batch-size rule.
    let declaredBatch: Int?

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("reshape_param")
        (dims, axisParam, numAxes) = try ctx.reading {
            (try p.message("shape").ints("dim"), try p.int("axis", default: 0), try p.int("num_axes", default: -1))
        }
        if let bad = dims.first(where: { $0 < -1 }) {
            throw ctx.error("reshape_param.shape has the dim \(bad); dims must be positive, 0 (copy the input dim) or -1 (infer)")
        }
        if dims.filter({ $0 == -1 }).count > 1 {
            throw ctx.error("reshape_param.shape \(dims) has more than one -1; at most one dim can be inferred")
        }
        guard numAxes >= -1 else {
            throw ctx.error("reshape_param.num_axes must be >= 0, or -1 for all axes; got \(numAxes)")
        }
        declaredBatch = ctx.inputShapes.first?.dims.first
        super.init(base: ctx)
    }

    /// Caffe's shape rule applied with the new dims `newDims`, or the error it would report.
    private func infer(_ x: Shape, start: Int, end: Int, newDims: [Int]) -> Result<Shape, RuntimeError> {
        var top = Array(x.dims[..<start]) + newDims + Array(x.dims[end...])
        var inferred: Int? = nil
        var explicitCount = x.count(from: 0, to: start) * x.count(from: end)
        for (i, d) in newDims.enumerated() {
            switch d {
            case 0:
                guard start + i < x.rank else {
                    return .failure(error("reshape_param.shape has a 0 at position \(i), but input \(x) has no axis \(start + i) to copy"))
                }
                top[start + i] = x[start + i]
                explicitCount *= x[start + i]
            case -1: inferred = i
            default: explicitCount *= d
            }
        }
        if let i = inferred {
            guard explicitCount > 0, x.count % explicitCount == 0 else {
                return .failure(error("input \(x) has \(x.count) elements, which the given dims \(newDims) (product \(explicitCount) with the kept axes) do not divide; no -1 dim fits"))
            }
            top[start + i] = x.count / explicitCount
        }
        let s = Shape(top)
        guard s.count == x.count else {
            return .failure(error("the new shape \(s) has \(s.count) elements, but input \(x) has \(x.count); the reshape_param.shape dims \(newDims) do not fit this input"))
        }
        return .success(s)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0]
        let start = axisParam >= 0 ? axisParam : x.rank + axisParam + 1
        guard start >= 0, start <= x.rank else {
            throw error("reshape_param.axis \(axisParam) is out of range for input \(x) (\(x.rank) axes)")
        }
        let end = numAxes == -1 ? x.rank : start + numAxes
        guard end <= x.rank else {
            throw error("reshape_param axis \(start) + num_axes \(numAxes) goes past the \(x.rank) axes of input \(x)")
        }
        switch infer(x, start: start, end: end, newDims: dims) {
        case .success(let s): return [s]
        case .failure(let e):
            // Batch-size rule: a hard-coded batch follows the actual batch.
            if start == 0, let declared = declaredBatch, let first = dims.first, first > 0, first == declared || first == 1,
               let batch = x.dims.first, batch != first {
                var adjusted = dims
                adjusted[0] = batch
                if case .success(let s) = infer(x, start: start, end: end, newDims: adjusted) { return [s] }
            }
            throw e
        }
    }
}
