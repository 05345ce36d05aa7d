import GraphIR
import Runtime

/// Slice: cuts its input along one axis (`slice_param.axis`, default 1,
/// negative counts from the end; or the legacy `slice_dim`) into one piece per
/// output. `slice_point` lists the N-1 cut positions (strictly increasing,
/// inside the axis); without them the axis is split into N equal pieces
/// (its size must divide by N).
///
/// Viewing x as (outer, C, inner) and output k as (outer, C_k, inner):
///   y_k[o, c, i] = x[o, off_k + c, i]
/// Backward: dx[o, off_k + c, i] = dy_k[o, c, i] (the pieces tile the axis,
/// so every element of dx is written).
final class SliceLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Slice"]
    let axisParam: Int
    let sliceDim: Int?
    let slicePoints: [Int]
    let outputCount: Int
    private var outer = 1, inner = 1, sizes: [Int] = []

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectAtLeastOutputs(1)
        let p = ctx.param("slice_param")
        (axisParam, sliceDim, slicePoints) = try ctx.reading {
            (try p.int("axis", default: 1), p.has("slice_dim") ? try p.int("slice_dim", default: 1) : nil,
             try p.ints("slice_point"))
        }
        if p.has("axis") && sliceDim != nil {
            throw ctx.error("slice_param sets both axis and the legacy slice_dim; give only one (axis)")
        }
        outputCount = ctx.outputCount
        if !slicePoints.isEmpty && slicePoints.count != outputCount - 1 {
            throw ctx.error("slice_param has \(slicePoints.count) slice_point values for \(outputCount) tops; give one fewer point than tops (or none for equal pieces)")
        }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0]
        let axis = try legacyDimOrAxis(sliceDim, legacyField: "slice_dim", axis: axisParam, axisField: "slice_param.axis",
                                       of: x, subject: "an input", error: { self.error($0) })
        let c = x[axis]
        var pieces: [Int] = []
        if slicePoints.isEmpty {
            guard c % outputCount == 0 else {
                throw error("cannot split axis \(axis) of size \(c) (input \(x)) into \(outputCount) equal pieces; give slice_point values")
            }
            pieces = Array(repeating: c / outputCount, count: outputCount)
        } else {
            guard outputCount <= c else {
                throw error("cannot cut axis \(axis) of size \(c) (input \(x)) into \(outputCount) non-empty pieces")
            }
            var prev = 0
            for pt in slicePoints {
                guard pt > prev else {
                    throw error("slice_point values must be strictly increasing and positive; got \(slicePoints)")
                }
                pieces.append(pt - prev)
                prev = pt
            }
            guard prev < c else {
                throw error("slice_point \(prev) is not inside axis \(axis) of size \(c) (input \(x)); every point must be < \(c)")
            }
            pieces.append(c - prev)
        }
        outer = x.count(from: 0, to: axis)
        inner = x.count(from: axis + 1)
        sizes = pieces
        return pieces.map { var s = x; s[axis] = $0; return s }
    }

    /// Per output k and outer index o: one block copy of C_k * inner floats.
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let total = sizes.reduce(0, +), x = inputs[0].data
        var offset = 0
        for (k, y) in outputs.enumerated() {
            let block = sizes[k] * inner
            copyBlocks(count: outer, block: block, from: x + offset * inner, srcStride: total * inner,
                       to: y.data, dstStride: block)
            offset += sizes[k]
        }
    }

    /// dx = the output gradients put back side by side along the axis.
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dx = pass.inputGrads[0] else { return }
        let total = sizes.reduce(0, +)
        var offset = 0
        for (k, dy) in pass.outputGrads.enumerated() {
            let block = sizes[k] * inner
            copyBlocks(count: outer, block: block, from: dy.data, srcStride: block,
                       to: dx.data + offset * inner, dstStride: total * inner)
            offset += sizes[k]
        }
    }

    var backwardUses: BackwardUses { [] }
}
