import Foundation
import Testing
import GraphIR
import Layers
import Runtime
import TestSupport

/// SigmoidCrossEntropyLoss: values against a plain double-precision loop of
/// the textbook formula for every normalization and Caffe's defaults, large
/// scores, ignore_label (with Caffe's truncation of the target), finite-
/// difference gradients of the scores, the loss weight, no gradient to the
/// targets, the refusals, and the real-Caffe fixtures.
/// Caffe's loss normalizer for a `loss_param.normalization` name, at least 1,
/// for the plain-loop references of the loss layers.
func lossNormalizer(_ mode: String, outer: Int, inner: Int, valid: Int) -> Double {
    let z: Int
    switch mode {
    case "FULL": z = outer * inner
    case "VALID": z = valid
    case "BATCH_SIZE": z = outer
    case "NONE": z = 1
    default: preconditionFailure("no normalization mode \(mode)")
    }
    return Double(max(1, z))
}

struct SigmoidCrossEntropyLossTests {
    /// Targets in [0, 1]: hard 0/1 labels and soft values, in turn.
    func targets(_ shape: Shape, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let t = Tensor(shape: shape)
        for i in 0..<t.count {
            let soft = rng.uniform()
            t[i] = i % 3 == 2 ? soft : Float(i % 3)
        }
        return t
    }

    /// -1/Z * sum over kept elements of [t log σ(x) + (1 - t) log(1 - σ(x))],
    /// in Double, straight from the definition (fine for moderate |x|).
    func reference(_ x: Tensor, _ t: Tensor, ignore: Int? = nil, normalization: String = "BATCH_SIZE") -> Float {
        let outer = x.shape[0], inner = x.count / outer
        var loss = 0.0, valid = 0
        for i in 0..<x.count {
            if let ig = ignore, Int(t[i]) == ig { continue }
            let s = 1 / (1 + exp(-Double(x[i]))), ti = Double(t[i])
            loss -= ti * log(s) + (1 - ti) * log(1 - s)
            valid += 1
        }
        return Float(loss / lossNormalizer(normalization, outer: outer, inner: inner, valid: valid))
    }

    /// dL/dx for an output gradient `dL`, from the definition.
    func referenceGradient(_ x: Tensor, _ t: Tensor, dL: Float, ignore: Int? = nil, normalization: String = "BATCH_SIZE") -> [Float] {
        let outer = x.shape[0]
        let kept = (0..<x.count).filter { i in ignore.map { Int(t[i]) != $0 } ?? true }
        let z = lossNormalizer(normalization, outer: outer, inner: x.count / outer, valid: kept.count)
        var g = [Float](repeating: 0, count: x.count)
        for i in kept { g[i] = Float(Double(dL) / z * (1 / (1 + exp(-Double(x[i]))) - Double(t[i]))) }
        return g
    }

    func loss(_ text: String, _ x: Tensor, _ t: Tensor) throws -> Tensor {
        try forwardLayer(#"type: "SigmoidCrossEntropyLoss" \#(text)"#, inputs: [x, t]).outputs[0]
    }

    @Test func valuesForEveryNormalization() throws {
        let x = randomTensor([3, 2, 4], seed: 51), t = targets([3, 8], seed: 52)
        t[4] = -1; t[9] = -1   // the ignored label occurs
        let y = try loss("", x, t)
        #expect(y.shape == [])
        // Caffe's default for this layer is BATCH_SIZE (SoftmaxWithLoss's is VALID); no label is ignored.
        expectClose(y, [reference(x, t)], "default")
        for norm in ["VALID", "FULL", "BATCH_SIZE", "NONE"] {
            expectClose(try loss("loss_param { ignore_label: -1 normalization: \(norm) }", x, t),
                        [reference(x, t, ignore: -1, normalization: norm)], "ignore -1, \(norm)")
            expectClose(try loss("loss_param { normalization: \(norm) }", x, t),
                        [reference(x, t, normalization: norm)], "\(norm)")
        }
        // Legacy normalize: true = VALID, false = BATCH_SIZE; normalization wins over it.
        expectClose(try loss("loss_param { normalize: true ignore_label: -1 }", x, t),
                    [reference(x, t, ignore: -1, normalization: "VALID")], "normalize true")
        expectClose(try loss("loss_param { normalize: false }", x, t), [reference(x, t)], "normalize false")
        expectClose(try loss("loss_param { normalize: false normalization: FULL }", x, t),
                    [reference(x, t, normalization: "FULL")], "normalization over normalize")
        // Caffe compares static_cast<int>(target): with ignore_label 0 a soft 0.7 is ignored too.
        let soft = Tensor(shape: [2, 2], values: [0.7, 0, 1, 0.3])
        let sx = Tensor(shape: [2, 2], values: [0.5, -1, 2, 1])
        let kept = Tensor(shape: [1, 1], values: [2]), keptT = Tensor(shape: [1, 1], values: [1])
        expectClose(try loss("loss_param { ignore_label: 0 normalization: NONE }", sx, soft),
                    [reference(kept, keptT, normalization: "NONE")], "truncated targets")
        // Every element ignored: the normalizer is at least 1, the loss 0.
        let all = Tensor(shape: [2, 2], repeating: -1)
        #expect(try loss("loss_param { ignore_label: -1 normalization: VALID }", sx, all)[0] == 0)
    }

    @Test func largeScoresStayFinite() throws {
        // log σ(x) and log(1 - σ(x)) overflow or lose everything when computed
        // directly; the stable form gives the exact |x| for a wrong sign.
        let x = Tensor(shape: [1, 4], values: [100, -100, 1e4, -1e4])
        let t = Tensor(shape: [1, 4], values: [0, 1, 1, 0])
        let y = try loss("loss_param { normalization: NONE }", x, t)
        expectClose(y, [200], "two wrong, two right")
        let net = try singleLayerNet(#"type: "SigmoidCrossEntropyLoss""#, inputShapes: [x.shape, t.shape])
        try net.forward(["data": x, "data2": t])
        let g = try net.backward(seeds: [try net.resolve("out"): Tensor(shape: [], repeating: 1)],
                                 gradientsFor: [net.graph.inputs[0]])
        expectClose(try #require(g[net.graph.inputs[0]]), [1, -1, 0, 0], "saturated gradients")
    }

    @Test func scoreGradients() throws {
        let x = randomTensor([2, 3, 4], seed: 53), t = targets([2, 12], seed: 54)
        t[1] = 2; t[7] = 2   // ignored below
        for params in ["", "loss_param { normalization: VALID }", "loss_param { normalization: FULL }",
                       "loss_param { normalization: NONE }", "loss_param { normalize: true }",
                       "loss_param { ignore_label: 2 }", "loss_param { ignore_label: 2 normalization: VALID }",
                       "loss_param { ignore_label: 2 normalization: FULL }",
                       "loss_param { ignore_label: 2 normalization: NONE }"] {
            try expectGradients(#"type: "SigmoidCrossEntropyLoss" \#(params)"#, [x.shape, t.shape],
                                checkInputs: [0], inputs: [x.copy(), t.copy()])
        }
    }

    @Test func lossWeightScalesTheGradientAndTargetsGetNone() throws {
        let x = randomTensor([3, 5], seed: 55), t = targets([3, 5], seed: 56)
        t[2] = -1
        for (weight, params) in [(nil, ""), (2.5, "loss_weight: 2.5 loss_param { ignore_label: -1 normalization: VALID }")] as [(Float?, String)] {
            let net = try singleLayerNet(#"type: "SigmoidCrossEntropyLoss" \#(params)"#, inputShapes: [x.shape, t.shape])
            // A loss layer: weight 1 unless loss_weight says otherwise.
            let terms = try net.lossTerms()
            #expect(terms.count == 1 && terms[0].weight == (weight ?? 1))
            try net.forward(["data": x, "data2": t])
            let dL = terms[0].weight
            let g = try net.backward(seeds: [terms[0].value: Tensor(shape: [], repeating: dL)], gradientsFor: net.graph.inputs)
            let ignore: Int? = weight == nil ? nil : -1, norm = weight == nil ? "BATCH_SIZE" : "VALID"
            expectClose(try #require(g[net.graph.inputs[0]]), referenceGradient(x, t, dL: dL, ignore: ignore, normalization: norm),
                        "scores, weight \(dL)")
            // The targets, asked for as a net input, get exact zeros (as under Caffe's force_backward).
            #expect(try #require(g[net.graph.inputs[1]]).array.allSatisfy { $0 == 0 })
        }
    }

    @Test func refusals() throws {
        let x = Tensor(shape: [2, 3], repeating: 0.5)
        // Counts differ.
        expectError("layer 'test' (SigmoidCrossEntropyLoss)", "needs one target per score", "hold 6 values", "hold 4") {
            _ = try loss("", x, Tensor(shape: [2, 2], repeating: 1))
        }
        // Same count, different first dimension (Caffe's LossLayer check).
        expectError("layer 'test'", "same first (batch) dimension") {
            _ = try loss("", x, Tensor(shape: [3, 2], repeating: 1))
        }
        // A gradient to the targets is asked for explicitly.
        expectError("layer 'test'", "cannot back-propagate to its targets", "propagate_down") {
            _ = try loss("propagate_down: true propagate_down: true", x, x)
        }
        // ... while false for the targets (or for both) is fine.
        _ = try loss("propagate_down: true propagate_down: false", x, x)
        // An unknown mode is refused by the prototxt reader, with its position.
        expectError("<test>:", "'MEAN' is not a value of 'normalization'") {
            _ = try loss("loss_param { normalization: MEAN }", x, x)
        }
        expectError("layer 'test'", "takes 2 input blob(s)") {
            _ = try forwardLayer(#"type: "SigmoidCrossEntropyLoss""#, inputs: [x])
        }
    }
}
