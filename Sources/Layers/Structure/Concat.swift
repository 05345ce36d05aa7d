import GraphIR
import Runtime

/// Concat: joins its inputs along one axis (`concat_param.axis`, default 1,
/// negative counts from the end; or the legacy `concat_dim`, which must be
/// non-negative). All other dims must agree.
///
/// Viewing input k as (outer, C_k, inner) and the output as
/// (outer, sum_k C_k, inner):
///   y[o, off_k + c, i] = x_k[o, c, i],   off_k = C_0 + ... + C_{k-1}
/// Backward is the matching slice: dx_k[o, c, i] = dy[o, off_k + c, i].
final class ConcatLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Concat"]
    let axisParam: Int
    /// The legacy `concat_dim`, when given (it wins over the default axis).
    let concatDim: Int?
    /// Current geometry: axis, outer count, inner size, size of each input on the axis.
    private var outer = 1, inner = 1, sizes: [Int] = []

    init(_ ctx: LayerContext) throws {
        try ctx.expectAtLeastInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("concat_param")
        (axisParam, concatDim) = try ctx.reading {
            (try p.int("axis", default: 1), p.has("concat_dim") ? try p.int("concat_dim", default: 1) : nil)
        }
        if p.has("axis") && concatDim != nil {
            throw ctx.error("concat_param sets both axis and the legacy concat_dim; give only one (axis)")
        }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let first = inputs[0]
        let axis = try legacyDimOrAxis(concatDim, legacyField: "concat_dim", axis: axisParam, axisField: "concat_param.axis",
                                       of: first, subject: "inputs", error: { self.error($0) })
        var out = first
        for (k, s) in inputs.enumerated().dropFirst() {
            guard s.rank == first.rank else {
                throw error("all inputs must have the same number of axes: input 0 is \(first), input \(k) is \(s)")
            }
            for j in 0..<s.rank where j != axis && s[j] != first[j] {
                throw error("all inputs must have the same shape except along the concat axis \(axis): input 0 is \(first), input \(k) is \(s) (differs at axis \(j))")
            }
            out[axis] += s[axis]
        }
        outer = first.count(from: 0, to: axis)
        inner = first.count(from: axis + 1)
        sizes = inputs.map { $0[axis] }
        return [out]
    }

    /// Per input k and outer index o: one block copy of C_k * inner floats.
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let total = sizes.reduce(0, +), y = outputs[0].data
        var offset = 0
        for (k, x) in inputs.enumerated() {
            let block = sizes[k] * inner
            copyBlocks(count: outer, block: block, from: x.data, srcStride: block,
                       to: y + offset * inner, dstStride: total * inner)
            offset += sizes[k]
        }
    }

    /// dx_k = the k-th slab of dy along the axis.
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let total = sizes.reduce(0, +), dy = pass.outputGrads[0].data
        var offset = 0
        for (k, dx) in pass.inputGrads.enumerated() {
            let block = sizes[k] * inner
            if let dx {
                copyBlocks(count: outer, block: block, from: dy + offset * inner, srcStride: total * inner,
                           to: dx.data, dstStride: block)
            }
            offset += sizes[k]
        }
    }

    var backwardUses: BackwardUses { [] }
}
