import GraphIR
import Runtime

/// ArgMax: the indices (and optionally values) of the `top_k` largest
/// entries (`argmax_param`: out_max_val default false, top_k default 1,
/// axis optional). Forward only, as in Caffe.
///
/// Without `axis`, each item n of the batch is flattened (dim = count(1)) and
/// the output has shape (N, 1, top_k) padded with 1s to the input's rank
/// (at least 3 axes):
///   y[n, 0, j] = index of the j-th largest x[n, :]
///   with out_max_val the second channel holds the values:
///   y[n, 1, j] = the j-th largest value      (shape (N, 2, top_k, ...))
/// With `axis`, the maximum runs along that axis and the output is the input
/// shape with dims[axis] = top_k, holding the indices, or the values when
/// out_max_val is set.
///
/// Ties are ordered as Caffe's partial sort of (value, index) pairs with
/// `std::greater` orders them: the larger index first.
final class ArgMaxLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["ArgMax"]
    let outMaxVal: Bool
    let topK: Int
    let axisParam: Int?
    /// Current geometry: (outer, dim, inner) around the reduced axis.
    private var geometry = AxisGeometry()

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("argmax_param")
        (outMaxVal, topK, axisParam) = try ctx.reading {
            (try p.bool("out_max_val", default: false), try p.int("top_k", default: 1),
             p.has("axis") ? try p.int("axis", default: 0) : nil)
        }
        guard topK >= 1 else { throw ctx.error("argmax_param.top_k must be at least 1; got \(topK)") }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0]
        if let a = axisParam {
            let axis = try structureAxis(a, of: x, field: "argmax_param.axis", error: { self.error($0) })
            guard topK <= x[axis] else {
                throw error("argmax_param.top_k (\(topK)) is larger than axis \(axis) of input \(x) (\(x[axis]))")
            }
            geometry = AxisGeometry(x, axis: axis)
            var out = x
            out[axis] = topK
            return [out]
        }
        guard x.rank >= 1 else { throw error("needs an input with a batch axis; got a scalar") }
        let dim = x.count(from: 1)
        guard topK <= dim else {
            throw error("argmax_param.top_k (\(topK)) is larger than the \(dim) values per item of input \(x)")
        }
        var g = AxisGeometry()
        g.outer = x[0]; g.channels = dim; g.inner = 1
        geometry = g
        var out = [Int](repeating: 1, count: max(3, x.rank))
        out[0] = x[0]
        out[2] = topK
        if outMaxVal { out[1] = 2 }
        return [Shape(out)]
    }

    /// For each (o, i): k passes over the `dim` values, each picking the
    /// largest (value, index) pair below the previous pick.
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data
        let g = geometry, dim = g.channels, inner = g.inner, k = topK
        for o in 0..<g.outer {
            for i in 0..<inner {
                let base = x + o * dim * inner + i
                var prevValue = Float.infinity, prevIndex = Int.max
                for j in 0..<k {
                    var bestValue = -Float.infinity, bestIndex = -1
                    for c in 0..<dim {
                        let v = base[c * inner]
                        // Strictly below the previous pick in (value, index) order...
                        guard v < prevValue || (v == prevValue && c < prevIndex) else { continue }
                        // ...and the largest such pair.
                        if bestIndex < 0 || v > bestValue || (v == bestValue && c > bestIndex) {
                            bestValue = v; bestIndex = c
                        }
                    }
                    if bestIndex < 0 { bestIndex = 0; bestValue = base[0] }   // only NaNs left
                    prevValue = bestValue; prevIndex = bestIndex
                    if axisParam != nil {
                        y[(o * k + j) * inner + i] = outMaxVal ? bestValue : Float(bestIndex)
                    } else if outMaxVal {
                        y[2 * o * k + j] = Float(bestIndex)
                        y[2 * o * k + k + j] = bestValue
                    } else {
                        y[o * k + j] = Float(bestIndex)
                    }
                }
            }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        throw error("has no backward pass (Caffe defines none)")
    }
    var hasBackward: Bool { false }
}
