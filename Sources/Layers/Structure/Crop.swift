import GraphIR
import Runtime

/// Crop: cuts the first input to the shape of the second from `axis` on
/// (`crop_param.axis`, default 2, negative counts from the end). Axes before
/// `axis` are kept whole. `offset` gives where the window starts: none = 0,
/// one value for every cropped axis, or one per cropped axis.
///
///   y[i_0, ..., i_{R-1}] = x[i_0 + off_0, ..., i_{R-1} + off_{R-1}]
///   (off_d = 0 for d < axis; y's dims d >= axis are the second input's)
/// Backward: dx = dy placed at the offsets, zero elsewhere. The second
/// input only lends its shape: its gradient (when asked for) is zeros, as in
/// Caffe.
final class CropLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Crop"]
    let axisParam: Int
    let offsetsParam: [Int]
    /// Current geometry: output shape, per-axis offsets and the input's strides.
    private var outShape = Shape([]), offsets: [Int] = [], inStrides: [Int] = []

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(2)
        try ctx.expectOutputs(1)
        let p = ctx.param("crop_param")
        (axisParam, offsetsParam) = try ctx.reading { (try p.int("axis", default: 2), try p.ints("offset")) }
        if let bad = offsetsParam.first(where: { $0 < 0 }) {
            throw ctx.error("crop_param.offset \(bad) is negative; offsets must be >= 0")
        }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0], ref = inputs[1]
        let axis = try structureAxis(axisParam, of: x, field: "crop_param.axis", error: { self.error($0) })
        if offsetsParam.count > 1 && axis + offsetsParam.count != x.rank {
            throw error("crop_param gives \(offsetsParam.count) offsets, but input \(x) has \(x.rank - axis) axes from axis \(axis); give one offset, or one per cropped axis")
        }
        guard ref.rank >= x.rank else {
            throw error("the reference input \(ref) has fewer axes than the input to crop \(x)")
        }
        var out = x
        var offs = [Int](repeating: 0, count: x.rank)
        for d in axis..<x.rank {
            let off = offsetsParam.isEmpty ? 0 : (offsetsParam.count == 1 ? offsetsParam[0] : offsetsParam[d - axis])
            guard x[d] - off >= ref[d] else {
                throw error("the crop of axis \(d) (size \(ref[d]) at offset \(off)) does not fit in input \(x) of size \(x[d]) there")
            }
            out[d] = ref[d]
            offs[d] = off
        }
        var strides = [Int](repeating: 1, count: x.rank)
        for d in stride(from: x.rank - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * x[d + 1] }
        outShape = out; offsets = offs; inStrides = strides
        return [out]
    }

    /// Calls `body(inputOffset, outputOffset)` for each contiguous row (last
    /// axis) of the output, walking the output's leading axes like an odometer.
    @inline(__always)
    private func forEachRow(_ body: (Int, Int) -> Void) {
        let r = outShape.rank
        guard r > 0, outShape.count > 0 else { return }
        let rowLength = outShape[r - 1]
        var src = 0
        for d in 0..<r { src += offsets[d] * inStrides[d] }
        let rows = outShape.count / rowLength
        var index = [Int](repeating: 0, count: r)   // one small array per call, not per element
        for row in 0..<rows {
            body(src, row * rowLength)
            // Advance the odometer over axes r-2 ... 0.
            var d = r - 2
            while d >= 0 {
                index[d] += 1
                src += inStrides[d]
                if index[d] < outShape[d] { break }
                src -= outShape[d] * inStrides[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data, n = outShape.rank > 0 ? outShape[outShape.rank - 1] : 0
        forEachRow { src, dst in (y + dst).update(from: x + src, count: n) }
    }

    /// dx = 0, then the rows of dy copied back to their place; d(ref) = 0.
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        pass.inputGrads[1]?.zero()
        guard let dxT = pass.inputGrads[0] else { return }
        dxT.zero()
        let dx = dxT.data, dy = pass.outputGrads[0].data, n = outShape.rank > 0 ? outShape[outShape.rank - 1] : 0
        forEachRow { src, dst in (dx + src).update(from: dy + dst, count: n) }
    }

    var backwardUses: BackwardUses { [] }
}
