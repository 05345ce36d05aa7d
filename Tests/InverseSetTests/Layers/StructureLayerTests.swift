import Foundation
import Testing
import GraphIR
import Layers
import Runtime
import TestSupport

/// Structure layers (Softmax, Concat, Slice, Split, Flatten, Reshape, Crop,
/// Tile, Reduction, ArgMax, Silence, Eltwise) and losses (EuclideanLoss,
/// SoftmaxWithLoss, Accuracy; SigmoidCrossEntropyLoss has its own file):
/// finite-difference gradient checks, forward
/// values against plain-loop references, Caffe's shape rules (ArgMax,
/// Reshape's batch rule), parameter validation, and the real-Caffe fixtures
/// of the group.
struct StructureLayerTests {
    // MARK: - Helpers

    /// Integer labels in 0 ..< classes (as floats).
    func labelTensor(_ shape: Shape, classes: Int, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t[i] = Float(Int(rng.next() % UInt64(classes))) }
        return t
    }

    func run(_ text: String, _ inputs: [Tensor], outputs: Int = 1) throws -> [Tensor] {
        try forwardLayer(text, inputs: inputs, outputs: outputs).outputs
    }

    /// Row-major strides of a shape.
    func strides(_ s: Shape) -> [Int] {
        var st = [Int](repeating: 1, count: s.rank)
        for d in stride(from: s.rank - 2, through: 0, by: -1) { st[d] = st[d + 1] * s[d + 1] }
        return st
    }

    /// Multi-index of flat index `i` in shape `s`.
    func unflatten(_ i: Int, _ s: Shape) -> [Int] {
        var r = i
        var idx = [Int](repeating: 0, count: s.rank)
        for d in stride(from: s.rank - 1, through: 0, by: -1) { idx[d] = r % s[d]; r /= s[d] }
        return idx
    }

    // MARK: - Softmax

    /// Plain softmax along `axis`, in Double.
    func softmaxReference(_ x: Tensor, axis: Int) -> [Float] {
        let s = x.shape, st = strides(s)
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let idx = unflatten(i, s)
            let base = i - idx[axis] * st[axis]
            var m = -Double.infinity
            for c in 0..<s[axis] { m = max(m, Double(x[base + c * st[axis]])) }
            var sum = 0.0
            for c in 0..<s[axis] { sum += exp(Double(x[base + c * st[axis]]) - m) }
            out[i] = Float(exp(Double(x[i]) - m) / sum)
        }
        return out
    }

    @Test func softmaxForwardMatchesLoop() throws {
        for (k, (shape, axis)) in [(Shape([3, 7]), 1), ([2, 4, 3, 2], 1), ([2, 3, 5], -1), ([4, 3, 2], 0)].enumerated() {
            let x = randomTensor(shape, seed: UInt64(10 + k))
            for i in 0..<x.count { x[i] *= 20 }   // large values: needs the max shift
            let y = try run(#"type: "Softmax" softmax_param { axis: \#(axis) }"#, [x])[0]
            expectClose(y, softmaxReference(x, axis: axis < 0 ? axis + shape.rank : axis), "softmax \(shape) axis \(axis)")
        }
    }

    @Test func softmaxGradients() throws {
        try expectGradients(#"type: "Softmax""#, [[2, 5]])
        try expectGradients(#"type: "Softmax""#, [[2, 3, 2, 2]], seed: 2)
        try expectGradients(#"type: "Softmax" softmax_param { axis: -1 }"#, [[2, 3, 4]], seed: 3)
    }

    // MARK: - Concat, Slice, Split

    @Test func concatForwardAndGradients() throws {
        let a = randomTensor([2, 3, 2], seed: 1), b = randomTensor([2, 1, 2], seed: 2), c = randomTensor([2, 2, 2], seed: 3)
        let y = try run(#"type: "Concat""#, [a, b, c])[0]
        #expect(y.shape == [2, 6, 2])
        var ref: [Float] = []
        for n in 0..<2 {
            for t in [a, b, c] {
                let block = t.count / 2
                ref += Array(t.array[n * block..<(n + 1) * block])
            }
        }
        expectClose(y, ref, "concat axis 1", tol: 0)
        let y0 = try run(#"type: "Concat" concat_param { axis: 0 }"#, [a, randomTensor([1, 3, 2], seed: 4)])[0]
        #expect(y0.shape == [3, 3, 2])
        #expect(Array(y0.array[0..<12]) == a.array)
        let yl = try run(#"type: "Concat" concat_param { concat_dim: 2 }"#, [a, randomTensor([2, 3, 1], seed: 5)])[0]
        #expect(yl.shape == [2, 3, 3])

        try expectGradients(#"type: "Concat""#, [[2, 3, 2], [2, 1, 2], [2, 2, 2]])
        try expectGradients(#"type: "Concat" concat_param { axis: -1 }"#, [[2, 3, 2], [2, 3, 3]], seed: 2)
        try expectGradients(#"type: "Concat" concat_param { concat_dim: 0 }"#, [[1, 4], [2, 4]], seed: 3)
    }

    @Test func sliceForwardAndGradients() throws {
        let x = randomTensor([2, 5, 3], seed: 7)
        let outs = try run(#"type: "Slice" slice_param { slice_point: 2 slice_point: 3 }"#, [x], outputs: 3)
        #expect(outs.map(\.shape) == [[2, 2, 3], [2, 1, 3], [2, 2, 3]])
        // Concat of the pieces gives back the input.
        let back = try run(#"type: "Concat""#, outs)[0]
        expectClose(back, x.array, "slice then concat", tol: 0)
        let eq = try run(#"type: "Slice" slice_param { axis: 2 }"#, [randomTensor([2, 2, 6], seed: 8)], outputs: 3)
        #expect(eq.map(\.shape) == [[2, 2, 2], [2, 2, 2], [2, 2, 2]])
        let legacy = try run(#"type: "Slice" slice_param { slice_dim: 0 }"#, [randomTensor([4, 3], seed: 9)], outputs: 2)
        #expect(legacy.map(\.shape) == [[2, 3], [2, 3]])

        try expectGradients(#"type: "Slice" slice_param { slice_point: 2 }"#, [[2, 5, 3]], outputs: 2)
        try expectGradients(#"type: "Slice" slice_param { axis: 2 }"#, [[2, 2, 6]], seed: 2, outputs: 3)
    }

    @Test func splitCopiesAndSumsGradients() throws {
        let x = randomTensor([2, 3], seed: 3)
        let outs = try run(#"type: "Split""#, [x], outputs: 3)
        for o in outs { #expect(o.array == x.array) }
        try expectGradients(#"type: "Split""#, [[2, 3, 2]], outputs: 3)
    }

    // MARK: - Flatten, Reshape

    @Test func flattenShapesAndGradients() throws {
        let x = randomTensor([2, 3, 4, 5], seed: 4)
        let y = try run(#"type: "Flatten""#, [x])[0]
        #expect(y.shape == [2, 60])
        #expect(y.array == x.array)
        #expect(try run(#"type: "Flatten" flatten_param { axis: 2 }"#, [x])[0].shape == [2, 3, 20])
        #expect(try run(#"type: "Flatten" flatten_param { axis: 1 end_axis: 2 }"#, [x])[0].shape == [2, 12, 5])
        #expect(try run(#"type: "Flatten" flatten_param { axis: 0 end_axis: -2 }"#, [x])[0].shape == [24, 5])
        try expectGradients(#"type: "Flatten""#, [[2, 3, 2]])
    }

    @Test func reshapeShapeRules() throws {
        let x = randomTensor([2, 3, 4], seed: 5)
        func shape(_ params: String, _ input: Tensor? = nil) throws -> Shape {
            try run(#"type: "Reshape" reshape_param { \#(params) }"#, [input ?? x])[0].shape
        }
        #expect(try shape("shape { dim: 0 dim: -1 }") == [2, 12])
        #expect(try shape("shape { dim: 0 dim: 0 dim: 2 dim: 2 }") == [2, 3, 2, 2])
        #expect(try shape("shape { dim: -1 dim: 4 }") == [6, 4])
        #expect(try shape("shape { dim: 6 dim: 2 } axis: 1") == [2, 6, 2])
        #expect(try shape("shape { dim: 2 dim: 2 } axis: -2") == [2, 3, 2, 2])
        #expect(try shape("shape { dim: 1 } axis: -1 num_axes: 0") == [2, 3, 4, 1])
        #expect(try shape("shape { dim: 1 } axis: 1 num_axes: 0") == [2, 1, 3, 4])
        #expect(try shape("shape { dim: -1 } axis: 1 num_axes: 2") == [2, 12])
        #expect(try shape("shape { } axis: 3 num_axes: 0") == [2, 3, 4])
        let y = try run(#"type: "Reshape" reshape_param { shape { dim: 0 dim: -1 } }"#, [x])[0]
        #expect(y.array == x.array)
        try expectGradients(#"type: "Reshape" reshape_param { shape { dim: 0 dim: 2 dim: -1 } }"#, [[2, 3, 4]])
    }

    /// A hard-coded batch (`dim: 1`) follows the actual batch when the declared
    /// dims no longer fit; dims that still fit are kept as Caffe keeps them.
    @Test func reshapeBatchRule() throws {
        // Declared batch 1: dim 1 follows the batch of 3.
        let net = try singleLayerNet(#"type: "Reshape" reshape_param { shape { dim: 1 dim: 4 dim: 2 dim: 2 } }"#,
                                     inputShapes: [[1, 16]])
        #expect(try net.shape("out") == [1, 4, 2, 2])
        let x = randomTensor([3, 16], seed: 6)
        try net.forward(["data": x])
        #expect(try net.shape("out") == [3, 4, 2, 2])
        #expect(try net.blob("out")!.array == x.array)
        // With a -1 the declared dims still fit: Caffe's answer is kept.
        let net2 = try singleLayerNet(#"type: "Reshape" reshape_param { shape { dim: 2 dim: -1 } }"#,
                                      inputShapes: [[2, 8]])
        try net2.forward(["data": randomTensor([4, 8], seed: 7)])
        #expect(try net2.shape("out") == [2, 16])
        // Not the declared batch: no rule, the mismatch is an error.
        let net3 = try singleLayerNet(#"type: "Reshape" reshape_param { shape { dim: 2 dim: 8 } }"#,
                                      inputShapes: [[1, 16]])
        expectError("layer 'test' (Reshape)") { try net3.forward(["data": randomTensor([3, 16], seed: 8)]) }
        // Axis other than 0: no rule.
        let net4 = try singleLayerNet(#"type: "Reshape" reshape_param { shape { dim: 1 dim: 16 } axis: 1 }"#,
                                      inputShapes: [[1, 16]])
        try net4.forward(["data": randomTensor([3, 16], seed: 9)])
        #expect(try net4.shape("out") == [3, 1, 16])
    }

    // MARK: - Crop, Tile

    @Test func cropForwardMatchesLoop() throws {
        let cases: [(Shape, Shape, String, [Int])] = [
            ([2, 3, 8, 9], [2, 3, 5, 5], "offset: 1 offset: 2", [0, 0, 1, 2]),
            ([2, 3, 6, 7], [1, 1, 4, 4], "offset: 2", [0, 0, 2, 2]),
            ([3, 4, 5, 6], [2, 2, 3, 3], "axis: 1 offset: 1 offset: 0 offset: 3", [0, 1, 0, 3]),
            ([3, 4, 5], [2, 2, 3], "axis: 0", [0, 0, 0]),
            ([2, 3, 4, 5], [9, 9, 2, 5], "axis: -2", [0, 0, 0, 0]),
        ]
        for (k, (xs, rs, params, offs)) in cases.enumerated() {
            let x = randomTensor(xs, seed: UInt64(20 + k)), ref = Tensor(shape: rs, repeating: 0)
            let y = try run(#"type: "Crop" crop_param { \#(params) }"#, [x, ref])[0]
            var outShape = xs
            let start: Int = {
                if params.contains("axis: 1") { return 1 }
                if params.contains("axis: 0") { return 0 }
                return 2
            }()
            for d in start..<xs.rank { outShape[d] = rs[d] }
            #expect(y.shape == outShape, "crop \(params)")
            let st = strides(xs)
            var expected = [Float](repeating: 0, count: outShape.count)
            for i in 0..<outShape.count {
                let idx = unflatten(i, outShape)
                var src = 0
                for d in 0..<xs.rank { src += (idx[d] + offs[d]) * st[d] }
                expected[i] = x[src]
            }
            expectClose(y, expected, "crop \(params)", tol: 0)
        }
    }

    @Test func cropGradients() throws {
        try expectGradients(#"type: "Crop" crop_param { offset: 1 offset: 2 }"#, [[2, 2, 5, 6], [2, 2, 3, 3]])
        try expectGradients(#"type: "Crop" crop_param { axis: 1 offset: 1 }"#, [[2, 3, 4], [2, 1, 2]], seed: 2)
        // The reference input gets an exact zero gradient.
        let net = try singleLayerNet(#"type: "Crop" crop_param { offset: 1 }"#, inputShapes: [[1, 2, 4, 4], [1, 2, 2, 2]])
        try net.forward(["data": randomTensor([1, 2, 4, 4], seed: 1), "data2": randomTensor([1, 2, 2, 2], seed: 2)])
        let out = try net.resolve("out")
        let g = try net.backward(seeds: [out: Tensor(shape: [1, 2, 2, 2], repeating: 1)], gradientsFor: net.graph.inputs)
        #expect(g[net.graph.inputs[1]]!.array.allSatisfy { $0 == 0 })
        #expect(g[net.graph.inputs[0]]!.array.reduce(0, +) == 8)
    }

    @Test func tileForwardAndGradients() throws {
        let x = randomTensor([2, 2, 3], seed: 11)
        let y = try run(#"type: "Tile" tile_param { tiles: 3 }"#, [x])[0]
        #expect(y.shape == [2, 6, 3])
        var ref: [Float] = []
        for n in 0..<2 { for _ in 0..<3 { ref += Array(x.array[n * 6..<(n + 1) * 6]) } }
        expectClose(y, ref, "tile axis 1", tol: 0)
        let y2 = try run(#"type: "Tile" tile_param { axis: -1 tiles: 2 }"#, [x])[0]
        #expect(y2.shape == [2, 2, 6])
        #expect(Array(y2.array[0..<6]) == [x[0], x[1], x[2], x[0], x[1], x[2]])
        try expectGradients(#"type: "Tile" tile_param { tiles: 3 }"#, [[2, 2, 3]])
        try expectGradients(#"type: "Tile" tile_param { axis: 0 tiles: 2 }"#, [[2, 3]], seed: 2)
    }

    // MARK: - Reduction

    @Test func reductionForwardMatchesLoop() throws {
        let x = randomTensor([2, 3, 4], seed: 12)
        for op in ["SUM", "ASUM", "SUMSQ", "MEAN"] {
            for axis in [0, 1, 2, -1] {
                let a = axis < 0 ? axis + 3 : axis
                let y = try run(#"type: "Reduction" reduction_param { operation: \#(op) axis: \#(axis) coeff: 0.5 }"#, [x])[0]
                #expect(y.shape == Shape(Array(x.shape.dims[..<a])))
                let num = x.shape.count(from: 0, to: a), dim = x.shape.count(from: a)
                var ref = [Float](repeating: 0, count: num)
                for n in 0..<num {
                    var s = 0.0
                    for j in 0..<dim {
                        let v = Double(x[n * dim + j])
                        switch op {
                        case "ASUM": s += abs(v)
                        case "SUMSQ": s += v * v
                        default: s += v
                        }
                    }
                    ref[n] = Float(0.5 * (op == "MEAN" ? s / Double(dim) : s))
                }
                expectClose(y, ref, "reduction \(op) axis \(axis)")
            }
        }
    }

    @Test func reductionGradients() throws {
        try expectGradients(#"type: "Reduction""#, [[2, 3]])
        try expectGradients(#"type: "Reduction" reduction_param { operation: MEAN axis: 1 coeff: 2 }"#, [[2, 3, 2]], seed: 2)
        try expectGradients(#"type: "Reduction" reduction_param { operation: SUMSQ axis: 1 }"#, [[2, 3, 4]], seed: 3)
        try expectGradients(#"type: "Reduction" reduction_param { operation: ASUM axis: -1 coeff: -1.5 }"#, [[3, 4]],
                            seed: 4, kink: 0, kinkRange: 0.02)
    }

    // MARK: - ArgMax

    @Test func argMaxShapesAndValues() throws {
        let x = randomTensor([3, 10], seed: 13)
        // Caffe pads the output to >= 3 axes: (N, 1 or 2, top_k).
        let y1 = try run(#"type: "ArgMax""#, [x])[0]
        #expect(y1.shape == [3, 1, 1])
        let y2 = try run(#"type: "ArgMax" argmax_param { out_max_val: true top_k: 2 }"#, [x])[0]
        #expect(y2.shape == [3, 2, 2])
        let x4 = randomTensor([2, 3, 2, 2], seed: 14)
        #expect(try run(#"type: "ArgMax" argmax_param { top_k: 3 }"#, [x4])[0].shape == [2, 1, 3, 1])
        #expect(try run(#"type: "ArgMax" argmax_param { out_max_val: true }"#, [x4])[0].shape == [2, 2, 1, 1])
        for n in 0..<3 {
            let row = Array(x.array[n * 10..<(n + 1) * 10])
            let order = row.indices.sorted { row[$0] > row[$1] }
            #expect(y1[n] == Float(order[0]))
            #expect(y2[n * 4 + 0] == Float(order[0]) && y2[n * 4 + 1] == Float(order[1]))
            #expect(y2[n * 4 + 2] == row[order[0]] && y2[n * 4 + 3] == row[order[1]])
        }
        // Along an axis: indices, or values with out_max_val.
        let ya = try run(#"type: "ArgMax" argmax_param { axis: 1 top_k: 2 }"#, [x4])[0]
        let yv = try run(#"type: "ArgMax" argmax_param { axis: 1 top_k: 2 out_max_val: true }"#, [x4])[0]
        #expect(ya.shape == [2, 2, 2, 2] && yv.shape == [2, 2, 2, 2])
        for n in 0..<2 {
            for p in 0..<4 {
                let vals = (0..<3).map { x4[(n * 3 + $0) * 4 + p] }
                let order = vals.indices.sorted { vals[$0] > vals[$1] }
                for j in 0..<2 {
                    #expect(ya[(n * 2 + j) * 4 + p] == Float(order[j]))
                    #expect(yv[(n * 2 + j) * 4 + p] == vals[order[j]])
                }
            }
        }
        // Ties: the larger index first (Caffe's std::greater on (value, index)).
        let tie = Tensor(shape: [1, 4], values: [1, 3, 3, 0])
        let yt = try run(#"type: "ArgMax" argmax_param { top_k: 3 }"#, [tie])[0]
        #expect(yt.array == [2, 1, 0])
        // A gradient asked through ArgMax is refused by name, not by some other error.
        expectError("layer 'test' (ArgMax)", "has no backward pass") {
            _ = try checkLayerGradients(#"type: "ArgMax""#, inputShapes: [[2, 3]])
        }
    }

    // MARK: - Silence

    @Test func silenceHasNoOutputsAndZeroGradients() throws {
        let net = try singleLayerNet(#"type: "Silence""#, inputShapes: [[2, 3], [4]], outputs: 0)
        try net.forward(["data": randomTensor([2, 3], seed: 1), "data2": randomTensor([4], seed: 2)])
        let layer = try #require(net.layers.last)
        let g0 = Tensor(shape: [2, 3], repeating: 7), g1 = Tensor(shape: [4], repeating: 7)
        try layer.backward(BackwardPass(inputs: [], outputs: [], outputGrads: [], inputGrads: [g0, g1],
                                        paramGrads: []), net.context)
        #expect(g0.array.allSatisfy { $0 == 0 } && g1.array.allSatisfy { $0 == 0 })
    }

    // MARK: - Eltwise

    @Test func eltwiseForwardMatchesLoop() throws {
        let a = randomTensor([2, 3, 4], seed: 15), b = randomTensor([2, 3, 4], seed: 16), c = randomTensor([2, 3, 4], seed: 17)
        let sum = try run(#"type: "Eltwise" eltwise_param { coeff: 0.5 coeff: -2 coeff: 3 }"#, [a, b, c])[0]
        expectClose(sum, (0..<a.count).map { 0.5 * a[$0] - 2 * b[$0] + 3 * c[$0] }, "eltwise sum")
        let plain = try run(#"type: "Eltwise""#, [a, b])[0]
        expectClose(plain, (0..<a.count).map { a[$0] + b[$0] }, "eltwise default sum")
        let prod = try run(#"type: "Eltwise" eltwise_param { operation: PROD }"#, [a, b, c])[0]
        expectClose(prod, (0..<a.count).map { a[$0] * b[$0] * c[$0] }, "eltwise prod")
        let mx = try run(#"type: "Eltwise" eltwise_param { operation: MAX }"#, [a, b, c])[0]
        expectClose(mx, (0..<a.count).map { max(a[$0], b[$0], c[$0]) }, "eltwise max", tol: 0)
    }

    @Test func eltwiseGradients() throws {
        try expectGradients(#"type: "Eltwise" eltwise_param { coeff: 0.5 coeff: -2 }"#, [[2, 3, 2], [2, 3, 2]])
        try expectGradients(#"type: "Eltwise" eltwise_param { operation: PROD }"#, [[2, 3], [2, 3], [2, 3]], seed: 2)
        try expectGradients(#"type: "Eltwise" eltwise_param { operation: PROD stable_prod_grad: false }"#,
                            [[2, 3], [2, 3]], seed: 3, positive: true)
        try expectGradients(#"type: "Eltwise" eltwise_param { operation: MAX }"#, [[2, 3, 2], [2, 3, 2], [2, 3, 2]], seed: 4)
    }

    /// MAX routes the gradient to one input; ties follow Caffe (between inputs
    /// 0 and 1 the later wins, from input 2 on an equal value does not take over).
    @Test func eltwiseMaxTies() throws {
        let net = try singleLayerNet(#"type: "Eltwise" eltwise_param { operation: MAX }"#, inputShapes: [[3], [3], [3]])
        let a = Tensor(shape: [3], values: [1, 2, 5]), b = Tensor(shape: [3], values: [1, 2, 4]), c = Tensor(shape: [3], values: [0, 2, 5])
        try net.forward(["data": a, "data2": b, "data3": c])
        let g = try net.backward(seeds: [try net.resolve("out"): Tensor(shape: [3], repeating: 1)], gradientsFor: net.graph.inputs)
        let ins = net.graph.inputs
        #expect(g[ins[0]]!.array == [0, 0, 1])
        #expect(g[ins[1]]!.array == [1, 1, 0])
        #expect(g[ins[2]]!.array == [0, 0, 0])
    }

    // MARK: - Losses

    @Test func euclideanLossValueAndGradients() throws {
        let a = randomTensor([3, 5], seed: 18), b = randomTensor([3, 5], seed: 19)
        let y = try run(#"type: "EuclideanLoss""#, [a, b])[0]
        #expect(y.shape == [])
        var s = 0.0
        for i in 0..<a.count { s += Double(a[i] - b[i]) * Double(a[i] - b[i]) }
        expectClose(y, [Float(s / 3 / 2)], "euclidean loss")
        try expectGradients(#"type: "EuclideanLoss""#, [[3, 5], [3, 5]])
        try expectGradients(#"type: "EuclideanLoss""#, [[2, 3, 2], [2, 6]], seed: 2)
    }

    /// Plain-loop SoftmaxWithLoss: (loss, prob).
    func softmaxLossReference(_ x: Tensor, _ labels: Tensor, axis: Int, ignore: Int?, normalization: String) -> Float {
        let prob = softmaxReference(x, axis: axis)
        let s = x.shape, outer = s.count(from: 0, to: axis), c = s[axis], inner = s.count(from: axis + 1)
        var loss = 0.0, valid = 0
        for o in 0..<outer {
            for i in 0..<inner {
                let l = Int(labels[o * inner + i])
                if l == ignore { continue }
                loss -= log(max(Double(prob[(o * c + l) * inner + i]), Double(Float.leastNormalMagnitude)))
                valid += 1
            }
        }
        return Float(loss / lossNormalizer(normalization, outer: outer, inner: inner, valid: valid))
    }

    @Test func softmaxWithLossValues() throws {
        let x = randomTensor([3, 4, 2, 2], seed: 21)
        let labels = labelTensor([3, 1, 2, 2], classes: 4, seed: 22)
        labels[1] = 2; labels[5] = 2   // make sure the ignored label occurs
        for norm in ["VALID", "FULL", "BATCH_SIZE", "NONE"] {
            let outs = try run(#"type: "SoftmaxWithLoss" loss_param { ignore_label: 2 normalization: \#(norm) }"#,
                               [x, labels], outputs: 2)
            #expect(outs[0].shape == [] && outs[1].shape == x.shape)
            expectClose(outs[0], [softmaxLossReference(x, labels, axis: 1, ignore: 2, normalization: norm)], "loss \(norm)")
            expectClose(outs[1], softmaxReference(x, axis: 1), "prob")
        }
        // Legacy normalize: false = BATCH_SIZE; default = VALID without ignoring.
        let legacy = try run(#"type: "SoftmaxWithLoss" loss_param { normalize: false }"#, [x, labels])[0]
        expectClose(legacy, [softmaxLossReference(x, labels, axis: 1, ignore: nil, normalization: "BATCH_SIZE")], "normalize false")
        let plain = try run(#"type: "SoftmaxWithLoss""#, [x, labels])[0]
        expectClose(plain, [softmaxLossReference(x, labels, axis: 1, ignore: nil, normalization: "VALID")], "default")
        // Softmax along another axis.
        let x2 = randomTensor([2, 3, 5], seed: 23), l2 = labelTensor([2, 3], classes: 5, seed: 24)
        let y2 = try run(#"type: "SoftmaxWithLoss" softmax_param { axis: 2 }"#, [x2, l2])[0]
        expectClose(y2, [softmaxLossReference(x2, l2, axis: 2, ignore: nil, normalization: "VALID")], "axis 2")
        // A label outside the classes is an error.
        let bad = Tensor(shape: [3, 1, 2, 2], repeating: 4)
        expectError("layer 'test' (SoftmaxWithLoss)", "label 4 at position 0 is outside the 4 classes") { _ = try run(#"type: "SoftmaxWithLoss""#, [x, bad]) }
    }

    @Test func softmaxWithLossGradients() throws {
        let x = randomTensor([3, 4, 2], seed: 25)
        let labels = labelTensor([3, 2], classes: 4, seed: 26)
        labels[0] = 1
        for params in ["", "loss_param { ignore_label: 1 }", "loss_param { normalization: FULL }",
                       "loss_param { normalization: NONE ignore_label: 3 }"] {
            try expectGradients(#"type: "SoftmaxWithLoss" \#(params)"#, [x.shape, labels.shape],
                                checkInputs: [0], inputs: [x.copy(), labels.copy()])
        }
        // With the probability output seeded too (its gradient flows through the softmax).
        try expectGradients(#"type: "SoftmaxWithLoss" loss_param { ignore_label: 1 }"#, [x.shape, labels.shape],
                            outputs: 2, checkInputs: [0], inputs: [x.copy(), labels.copy()])
        // The label gets an exact zero gradient.
        let net = try singleLayerNet(#"type: "SoftmaxWithLoss""#, inputShapes: [x.shape, labels.shape])
        try net.forward(["data": x, "data2": labels])
        let g = try net.backward(seeds: [try net.resolve("out"): Tensor(shape: [], repeating: 1)], gradientsFor: net.graph.inputs)
        #expect(g[net.graph.inputs[1]]!.array.allSatisfy { $0 == 0 })
    }

    @Test func accuracyValues() throws {
        let x = randomTensor([6, 5], seed: 27), labels = labelTensor([6], classes: 5, seed: 28)
        labels[2] = 3
        func reference(topK: Int, ignore: Int?) -> (Float, [Float]) {
            var correct = 0, counted = 0
            var perHit = [Float](repeating: 0, count: 5), perAll = [Float](repeating: 0, count: 5)
            for n in 0..<6 {
                let l = Int(labels[n])
                if l == ignore { continue }
                let row = (0..<5).map { x[n * 5 + $0] }
                let rank = row.filter { $0 > row[l] }.count
                perAll[l] += 1
                if rank < topK { correct += 1; perHit[l] += 1 }
                counted += 1
            }
            return (Float(correct) / Float(counted), (0..<5).map { perAll[$0] == 0 ? 0 : perHit[$0] / perAll[$0] })
        }
        for (topK, ignore) in [(1, nil), (2, nil), (3, 3)] as [(Int, Int?)] {
            let ig = ignore.map { "ignore_label: \($0)" } ?? ""
            let outs = try run(#"type: "Accuracy" accuracy_param { top_k: \#(topK) \#(ig) }"#, [x, labels], outputs: 2)
            let (acc, perClass) = reference(topK: topK, ignore: ignore)
            #expect(outs[0].shape == [] && outs[1].shape == [5])
            expectClose(outs[0], [acc], "accuracy top \(topK)")
            expectClose(outs[1], perClass, "per-class accuracy top \(topK)")
        }
        // Spatial labels along axis 1, and a tie counts against the true class.
        let t = Tensor(shape: [1, 3, 2], values: [1, 0, 1, 0, 0, 5])
        let tl = Tensor(shape: [1, 2], values: [0, 2])
        #expect(try run(#"type: "Accuracy""#, [t, tl])[0][0] == 0.5)
    }

    // MARK: - Every element written

    /// Forward into NaN-filled outputs and backward into NaN-filled input
    /// gradients must give what zero-filled ones give: the executor hands
    /// layers recycled buffers, so every element must be written.
    func expectOverwrites(_ text: String, _ inputs: [Tensor], outputs: Int = 1,
                          sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let net = try singleLayerNet(text, inputShapes: inputs.map(\.shape), outputs: outputs)
        let layer = try #require(net.layers.last)
        let outShapes = try layer.reshape(inputs.map(\.shape))
        func forward(_ fill: Float) throws -> [Tensor] {
            let outs = outShapes.map { Tensor(shape: $0, repeating: fill) }
            try layer.forward(inputs, outs, net.context)
            return outs
        }
        let clean = try forward(0), dirty = try forward(.nan)
        for (a, b) in zip(clean, dirty) {
            #expect(a.array == b.array, "\(text): forward leaves elements unwritten", sourceLocation: sourceLocation)
        }
        guard layer.hasBackward else { return }
        let dys = outShapes.enumerated().map { randomTensor($1, seed: UInt64(40 + $0)) }
        func backward(_ fill: Float) throws -> [Tensor] {
            let grads = inputs.map { Tensor(shape: $0.shape, repeating: fill) }
            try layer.backward(BackwardPass(inputs: inputs, outputs: clean, outputGrads: dys,
                                            inputGrads: grads, paramGrads: []), net.context)
            return grads
        }
        let g0 = try backward(0), g1 = try backward(.nan)
        for (k, (a, b)) in zip(g0, g1).enumerated() {
            #expect(a.array == b.array, "\(text): backward leaves elements of input gradient \(k) unwritten",
                    sourceLocation: sourceLocation)
        }
    }

    @Test func everyOutputAndGradientElementIsWritten() throws {
        let x = randomTensor([2, 3, 4], seed: 30), x2 = randomTensor([2, 3, 4], seed: 31)
        try expectOverwrites(#"type: "Softmax""#, [x])
        try expectOverwrites(#"type: "Concat""#, [x, randomTensor([2, 2, 4], seed: 32)])
        try expectOverwrites(#"type: "Slice" slice_param { slice_point: 1 }"#, [x], outputs: 2)
        try expectOverwrites(#"type: "Split""#, [x], outputs: 2)
        try expectOverwrites(#"type: "Flatten""#, [x])
        try expectOverwrites(#"type: "Reshape" reshape_param { shape { dim: -1 } }"#, [x])
        try expectOverwrites(#"type: "Crop" crop_param { axis: 1 offset: 1 }"#, [x, randomTensor([2, 1, 2], seed: 33)])
        try expectOverwrites(#"type: "Tile" tile_param { tiles: 2 }"#, [x])
        for op in ["SUM", "ASUM", "SUMSQ", "MEAN"] {
            try expectOverwrites(#"type: "Reduction" reduction_param { operation: \#(op) axis: 1 }"#, [x])
        }
        try expectOverwrites(#"type: "ArgMax" argmax_param { top_k: 2 out_max_val: true }"#, [x])
        try expectOverwrites(#"type: "ArgMax" argmax_param { axis: 2 top_k: 2 }"#, [x])
        try expectOverwrites(#"type: "Silence""#, [x, x2], outputs: 0)
        for op in ["SUM", "PROD", "MAX"] {
            try expectOverwrites(#"type: "Eltwise" eltwise_param { operation: \#(op) }"#, [x, x2, randomTensor([2, 3, 4], seed: 34)])
        }
        try expectOverwrites(#"type: "Eltwise" eltwise_param { operation: PROD stable_prod_grad: false }"#, [x, x2])
        try expectOverwrites(#"type: "EuclideanLoss""#, [x, x2])
        let labels = labelTensor([2, 4], classes: 3, seed: 35)
        labels[3] = 1
        try expectOverwrites(#"type: "SoftmaxWithLoss" loss_param { ignore_label: 1 }"#, [x, labels], outputs: 2)
        try expectOverwrites(#"type: "Accuracy" accuracy_param { top_k: 2 }"#, [x, labels], outputs: 2)
        let targets = Tensor(shape: x.shape, values: (0..<x.count).map { Float($0 % 3) / 2 })
        try expectOverwrites(#"type: "SigmoidCrossEntropyLoss" loss_param { ignore_label: 1 }"#, [x, targets])
    }

    // MARK: - Parameter validation

    @Test func invalidParametersAreRejected() throws {
        let x = Tensor(shape: [2, 3], repeating: 1), y = Tensor(shape: [2, 4], repeating: 1)
        let bad: [(String, [Tensor], Int)] = [
            (#"type: "Softmax" softmax_param { axis: 2 }"#, [x], 1),
            (#"type: "Concat""#, [x, Tensor(shape: [3, 3], repeating: 1)], 1),
            (#"type: "Concat""#, [x, Tensor(shape: [2, 3, 1], repeating: 1)], 1),
            (#"type: "Concat" concat_param { axis: 1 concat_dim: 1 }"#, [x, y], 1),
            (#"type: "Concat" concat_param { concat_dim: 2 }"#, [x, y], 1),
            (#"type: "Slice""#, [x], 2),
            (#"type: "Slice" slice_param { slice_point: 1 slice_point: 1 }"#, [x], 3),
            (#"type: "Slice" slice_param { slice_point: 3 }"#, [x], 2),
            (#"type: "Slice" slice_param { slice_point: 1 }"#, [x], 3),
            (#"type: "Flatten" flatten_param { axis: 1 end_axis: 0 }"#, [x], 1),
            (#"type: "Reshape" reshape_param { shape { dim: -1 dim: -1 } }"#, [x], 1),
            (#"type: "Reshape" reshape_param { shape { dim: 4 dim: -1 } }"#, [x], 1),
            (#"type: "Reshape" reshape_param { shape { dim: 5 } }"#, [x], 1),
            (#"type: "Reshape" reshape_param { shape { dim: 0 dim: 0 dim: 0 } }"#, [x], 1),
            (#"type: "Reshape" reshape_param { shape { dim: -2 dim: -3 } }"#, [x], 1),
            (#"type: "Reshape" reshape_param { shape { dim: 6 } axis: 3 }"#, [x], 1),
            (#"type: "Crop" crop_param { axis: 0 offset: 1 }"#, [x, x], 1),
            (#"type: "Crop" crop_param { axis: 0 offset: 0 offset: 0 offset: 0 }"#, [x, x], 1),
            (#"type: "Tile""#, [x], 1),
            (#"type: "Tile" tile_param { tiles: 0 }"#, [x], 1),
            (#"type: "Reduction" reduction_param { axis: 2 }"#, [x], 1),
            (#"type: "ArgMax" argmax_param { top_k: 7 }"#, [x], 1),
            (#"type: "ArgMax" argmax_param { top_k: 0 }"#, [x], 1),
            (#"type: "ArgMax" argmax_param { axis: 1 top_k: 4 }"#, [x], 1),
            (#"type: "Eltwise""#, [x, y], 1),
            (#"type: "Eltwise""#, [x], 1),
            (#"type: "Eltwise" eltwise_param { coeff: 1 }"#, [x, x], 1),
            (#"type: "Eltwise" eltwise_param { operation: MAX coeff: 1 coeff: 1 }"#, [x, x], 1),
            (#"type: "EuclideanLoss""#, [x, y], 1),
            (#"type: "SoftmaxWithLoss""#, [x, Tensor(shape: [3], repeating: 0)], 1),
            (#"type: "SoftmaxWithLoss""#, [x, Tensor(shape: [2, 3], repeating: 0)], 1),
            (#"type: "Accuracy" accuracy_param { top_k: 4 }"#, [x, Tensor(shape: [2], repeating: 0)], 1),
            (#"type: "Accuracy""#, [x, Tensor(shape: [2], repeating: 5)], 1),
        ]
        for (text, inputs, outs) in bad {
            // Refused by the layer, by name (not by a mistake in the test's text).
            expectError("layer 'test'") { _ = try forwardLayer(text, inputs: inputs, outputs: outs) }
        }
    }

    // MARK: - Real Caffe

    @Test("matches the real-Caffe fixtures of the group", arguments: [
        "softmax", "softmax_4d", "softmax_log", "concat_ch", "slice_ch", "flatten", "reshape", "crop", "tile",
        "reduction_sumsq", "euclidean_loss", "argmax_nobwd", "eltwise_max", "eltwise_sum_coeff", "eltwise_prod",
        "split_fanout", "sigmoid_ce_loss", "sigmoid_ce_loss_weight", "sigmoid_ce_loss_ignore_valid",
    ])
    func caffeFixture(_ name: String) throws {
        try CaffeFixtureTests().fixture(name)
    }
}
