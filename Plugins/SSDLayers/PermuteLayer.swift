import GraphIR
import Runtime

/// Permute (SSD fork): reorders the axes of a blob, like numpy's `transpose`.
///
///     layer { type: "Permute" bottom: "conv4_3_norm_mbox_loc" top: "..._perm"
///             permute_param { order: 0 order: 2 order: 3 order: 1 } }   # NCHW -> NHWC
///
/// Shapes: input of rank k; output rank k with `out.shape[a] = in.shape[order[a]]`.
///
/// Math: `out[i_0, ..., i_{k-1}] = in[j]` where `j_{order[a]} = i_a`, a bijection
/// between the elements, so backward scatters `dy` back: `dx[j] = dy[i]`.
///
/// `order` (repeated) lists the input axis that goes to each output axis. As in
/// the fork, it may be shorter than the rank: the axes it leaves out follow in
/// their original order (`order: 1` on a 4-d blob means 1, 0, 2, 3). Each entry
/// must be below the rank, and no axis may appear twice. An identity order
/// copies the data (the fork shares the buffer instead; the values are the same).
final class PermuteLayer: LayerBase, Layer {
    /// The full order, one input axis per output axis.
    let order: [Int]

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let given = try ctx.reading { try ctx.param("permute_param").ints("order") }
        order = try PermuteLayer.completeOrder(given, rank: ctx.inputShapes[0].rank, ctx: ctx)
        super.init(base: ctx)
    }

    /// The fork's LayerSetUp: validate the given axes, then append the missing ones.
    static func completeOrder(_ given: [Int], rank: Int, ctx: LayerContext) throws -> [Int] {
        var order: [Int] = []
        for axis in given {
            guard axis >= 0, axis < rank else {
                throw ctx.error("permute_param.order: axis \(axis) is out of range for a \(rank)-axis input (axes are 0...\(rank - 1))")
            }
            guard !order.contains(axis) else {
                throw ctx.error("permute_param.order: axis \(axis) appears twice; each axis may be listed once")
            }
            order.append(axis)
        }
        for axis in 0..<rank where !order.contains(axis) { order.append(axis) }
        return order
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        guard inputs[0].rank == order.count else {
            throw error("permute_param.order was set up for a \(order.count)-axis input, but the input now has shape \(inputs[0])")
        }
        return [Shape(order.map { inputs[0][$0] })]
    }

    /// Row-major strides of `shape`.
    private static func strides(_ shape: Shape) -> [Int] {
        var s = [Int](repeating: 1, count: shape.rank)
        var acc = 1
        for a in stride(from: shape.rank - 1, through: 0, by: -1) { s[a] = acc; acc *= shape[a] }
        return s
    }

    /// Calls `body(i, j)` for every output index i (in order) and its input index j.
    private func forEachPair(inputShape: Shape, _ body: (Int, Int) -> Void) {
        let outShape = Shape(order.map { inputShape[$0] })
        let count = outShape.count
        guard count > 0 else { return }
        let inStrides = PermuteLayer.strides(inputShape)
        // Input stride of each output axis; walk the output with an odometer.
        let step = order.map { inStrides[$0] }
        let k = order.count
        var idx = [Int](repeating: 0, count: k)
        var j = 0
        for i in 0..<count {
            body(i, j)
            var a = k - 1
            while a >= 0 {
                idx[a] += 1
                j += step[a]
                if idx[a] < outShape[a] { break }
                j -= step[a] * idx[a]
                idx[a] = 0
                a -= 1
            }
        }
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data
        forEachPair(inputShape: inputs[0].shape) { i, j in y[i] = x[j] }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let dy = pass.outputGrads[0].data, dx = dxT.data
        forEachPair(inputShape: dxT.shape) { i, j in dx[j] = dy[i] }
    }

    var backwardUses: BackwardUses { [] }
}
