import GraphIR
import Runtime

/// Reduction: reduces all axes from `axis` on (`reduction_param.axis`,
/// default 0, negative counts from the end) with `operation` (SUM, ASUM,
/// SUMSQ or MEAN, default SUM), times `coeff` (default 1). The output has the
/// input dims before `axis` (a scalar for axis 0).
///
/// Viewing x as (num, dim), dim = count(axis):
///   SUM:   y[n] = coeff * sum_j x[n, j]
///   ASUM:  y[n] = coeff * sum_j |x[n, j]|
///   SUMSQ: y[n] = coeff * sum_j x[n, j]^2
///   MEAN:  y[n] = coeff / dim * sum_j x[n, j]
/// Backward:
///   SUM / MEAN: dx[n, j] = c * dy[n]           (c = coeff, or coeff / dim)
///   ASUM:       dx[n, j] = coeff * dy[n] * sign(x[n, j])   (sign(0) = 0)
///   SUMSQ:      dx[n, j] = 2 * coeff * dy[n] * x[n, j]
final class ReductionLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Reduction"]
    enum Operation: String { case sum = "SUM", asum = "ASUM", sumsq = "SUMSQ", mean = "MEAN" }
    let operation: Operation
    let axisParam: Int
    let coeff: Float
    private var num = 1, dim = 1

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("reduction_param")
        let op: String
        (op, axisParam, coeff) = try ctx.reading {
            (try p.enumName("operation", default: "SUM"), try p.int("axis", default: 0), try p.float("coeff", default: 1))
        }
        guard let o = Operation(rawValue: op) else {
            throw ctx.error("reduction_param.operation \(op) is unknown; use SUM, ASUM, SUMSQ or MEAN")
        }
        operation = o
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0]
        let axis = try structureAxis(axisParam, of: x, field: "reduction_param.axis", error: { self.error($0) })
        num = x.count(from: 0, to: axis)
        dim = x.count(from: axis)
        return [Shape(Array(x.dims[..<axis]))]
    }

    /// The factor applied to the reduced value (MEAN divides by dim).
    private var scale: Float { operation == .mean ? coeff / Float(max(dim, 1)) : coeff }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data, n = dim, c = scale
        for r in 0..<num {
            let row = x + r * n
            var s: Float = 0
            switch operation {
            case .sum, .mean: s = rowSum(row, n)
            case .asum: for j in 0..<n { s += abs(row[j]) }
            case .sumsq: for j in 0..<n { s += row[j] * row[j] }
            }
            y[r] = c * s
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let dx = dxT.data, dy = pass.outputGrads[0].data, n = dim, c = scale
        switch operation {
        case .sum, .mean:
            for r in 0..<num { (dx + r * n).update(repeating: c * dy[r], count: n) }
        case .asum:
            let x = pass.inputs[0].data
            for r in 0..<num {
                let g = c * dy[r]
                for j in 0..<n {
                    let v = x[r * n + j]
                    dx[r * n + j] = v > 0 ? g : (v < 0 ? -g : 0)
                }
            }
        case .sumsq:
            let x = pass.inputs[0].data
            for r in 0..<num {
                let g = 2 * c * dy[r]
                for j in 0..<n { dx[r * n + j] = g * x[r * n + j] }
            }
        }
    }

    var backwardUses: BackwardUses { operation == .sum || operation == .mean ? [] : .inputs }
}
