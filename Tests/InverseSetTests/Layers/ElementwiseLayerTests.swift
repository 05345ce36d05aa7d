import Foundation
import Testing
import GraphIR
import Layers
import Runtime
import TestSupport

/// Element-wise and per-channel layers: finite-difference gradient checks of
/// every layer (inputs and parameters), forward values against plain-loop
/// references, Caffe's special cases (BatchNorm statistics, Dropout masks,
/// Scale/Bias broadcasting), parameter validation, and the real-Caffe
/// fixtures of the group.
struct ElementwiseLayerTests {
    // MARK: - Helpers

    func maxRelError(_ a: Tensor, _ b: [Float]) -> Double { relativeError(a.array, b) }

    func feeds(_ net: Net, _ inputs: [Tensor]) -> [String: Tensor] {
        var d: [String: Tensor] = [:]
        for (n, t) in zip(net.inputNames, inputs) { d[n] = t }
        return d
    }

    /// Central-difference check on a net built by the caller (for parameter
    /// values or phases that checkLayerGradients does not choose): J = sum(w * out).
    func finiteDifferenceFailures(_ net: Net, inputs: [Tensor], checkParams: Bool, seed: UInt64 = 5,
                                  step: Float = 1e-2, threshold: Double = 1e-3) throws -> [String] {
        let f = feeds(net, inputs)
        let out = try net.resolve("out")
        try net.forward(f)
        var rng = SplitMix64(seed: seed)
        let w = Tensor(shape: net.tensor(out)!.shape)
        for i in 0..<w.count { w[i] = rng.gaussian() }
        func objective() throws -> Double {
            try net.forward(f)
            let o = net.tensor(out)!
            var j = 0.0
            for i in 0..<o.count { j += Double(o[i]) * Double(w[i]) }
            return j
        }
        net.zeroParamGrads()
        let ins = net.graph.inputs
        let grads = try net.backward(seeds: [out: w], gradientsFor: ins, paramGrads: checkParams)
        var failures: [String] = []
        func compare(_ what: String, _ x: Tensor, _ g: Tensor) throws {
            for i in 0..<x.count {
                let v = x[i]
                x[i] = v + step; let plus = try objective()
                x[i] = v - step; let minus = try objective()
                x[i] = v
                let numeric = (plus - minus) / (2 * Double(step)), analytic = Double(g[i])
                if abs(numeric - analytic) > threshold * max(1, abs(numeric), abs(analytic)) {
                    failures.append("\(what)[\(i)]: analytic \(analytic), numeric \(numeric)")
                }
            }
        }
        for (k, id) in ins.enumerated() { try compare("input \(k)", inputs[k], grads[id]!) }
        if checkParams {
            for (j, p) in net.layers.last!.parameters.enumerated() { try compare("param \(j)", p, net.paramGrads.last![j]) }
        }
        return failures
    }

    // MARK: - Gradient checks of the neurons

    @Test func reluGradients() throws {
        try expectGradients(#"type: "ReLU""#, [[2, 3, 4, 5]], kink: 0, kinkRange: 0.02)
        try expectGradients(#"type: "ReLU" relu_param { negative_slope: 0.3 }"#, [[3, 7]], seed: 2, kink: 0, kinkRange: 0.02)
    }

    /// The vectorised ReLU (eight lanes, a scalar tail, threads on large
    /// blobs) gives exactly the scalar select `x > 0 ? x : s x` and its
    /// backward `x > 0 ? dy : s dy`, bit for bit, on NaN, -0, +-inf and
    /// denormals, wherever they fall (vector body or tail, any thread).
    @Test(arguments: [Float(0), 0.3])
    func reluIsTheScalarSelectOnSpecialValues(_ slope: Float) throws {
        let special: [Float] = [.nan, -0.0, 0.0, -.infinity, .infinity, -.leastNonzeroMagnitude, .leastNonzeroMagnitude,
                                -1.5, 2.5, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, -.nan]
        func same(_ a: Float, _ b: Float) -> Bool { a.isNaN ? b.isNaN : a.bitPattern == b.bitPattern }
        // 20,003 values: split between threads, with a scalar tail of three.
        let n = 20_003
        let x = Tensor(shape: [1, n], values: (0..<n).map { special[($0 * 7) % special.count] })
        let dy = Tensor(shape: [1, n], values: (0..<n).map { [Float(1.25), -0.0, -3, .nan, .infinity][$0 % 5] })
        let net = try singleLayerNet(#"type: "ReLU" relu_param { negative_slope: \#(slope) }"#, inputShapes: [[1, n]])
        try net.forward(["data": x])
        let out = try net.resolve("out")
        let y = try #require(net.tensor(out)).array
        let grads = try net.backward(seeds: [out: dy], gradientsFor: net.graph.inputs, paramGrads: false)
        let dx = try #require(grads[net.graph.inputs[0]]).array
        var wrong: [String] = []
        for i in 0..<n {
            let v = x[i], g = dy[i]
            if !same(y[i], v > 0 ? v : v * slope) { wrong.append("y[\(i)] = \(y[i]) for x = \(v)") }
            if !same(dx[i], v > 0 ? g : g * slope) { wrong.append("dx[\(i)] = \(dx[i]) for x = \(v), dy = \(g)") }
        }
        #expect(wrong.isEmpty, "slope \(slope): \(wrong.prefix(5)) (\(wrong.count) differ)")
    }

    @Test func preluGradients() throws {
        try expectGradients(#"type: "PReLU""#, [[2, 3, 4, 5]], kink: 0, kinkRange: 0.02)
        try expectGradients(#"type: "PReLU" prelu_param { channel_shared: true }"#, [[2, 4, 3, 3]], seed: 3, kink: 0, kinkRange: 0.02)
        try expectGradients(#"type: "PReLU""#, [[4, 6]], seed: 4, kink: 0, kinkRange: 0.02)
        try expectGradients(#"type: "PReLU""#, [[2, 3, 2, 2, 2]], seed: 5, kink: 0, kinkRange: 0.02)
    }

    @Test func smoothNeuronGradients() throws {
        try expectGradients(#"type: "ELU" elu_param { alpha: 0.7 }"#, [[2, 3, 4, 5]], kink: 0, kinkRange: 0.02)
        try expectGradients(#"type: "ELU""#, [[5, 6]], seed: 2, kink: 0, kinkRange: 0.02)
        try expectGradients(#"type: "Sigmoid""#, [[2, 3, 4, 5]])
        try expectGradients(#"type: "TanH""#, [[2, 3, 4, 5]])
        try expectGradients(#"type: "AbsVal""#, [[2, 3, 4, 5]], kink: 0, kinkRange: 0.02)
        try expectGradients(#"type: "BNLL""#, [[2, 3, 4, 5]])
        try expectGradients(#"type: "Swish""#, [[2, 3, 4, 5]])
        try expectGradients(#"type: "Swish" swish_param { beta: 1.7 }"#, [[3, 8]], seed: 2)
        try expectGradients(#"type: "Clip" clip_param { min: -0.6 max: 0.6 }"#, [[2, 3, 4, 5]], kink: 0.6, kinkRange: 0.02)
    }

    @Test func powerExpLogGradients() throws {
        try expectGradients(#"type: "Power" power_param { power: 2 scale: 0.5 shift: 3 }"#, [[2, 3, 4, 5]])
        try expectGradients(#"type: "Power" power_param { power: 0.5 scale: 1.5 }"#, [[2, 3, 4]], positive: true)
        try expectGradients(#"type: "Power" power_param { power: -1.5 scale: 2 shift: 0.5 }"#, [[3, 5]], positive: true)
        try expectGradients(#"type: "Power" power_param { power: 1 scale: -2 shift: 1 }"#, [[3, 5]])
        try expectGradients(#"type: "Power" power_param { power: 3 }"#, [[3, 5]], seed: 4)
        try expectGradients(#"type: "Power" power_param { power: 2 scale: 0 shift: 3 }"#, [[3, 5]])
        try expectGradients(#"type: "Exp" exp_param { base: -1 scale: 0.5 shift: 0.1 }"#, [[2, 3, 4, 5]])
        try expectGradients(#"type: "Exp" exp_param { base: 2 scale: -0.7 shift: 1.5 }"#, [[3, 5]], seed: 2)
        try expectGradients(#"type: "Log""#, [[2, 3, 4, 5]], positive: true)
        try expectGradients(#"type: "Log" log_param { base: 10 scale: 2 shift: 0.5 }"#, [[3, 5]], seed: 2, positive: true)
    }

    // MARK: - Forward values of the neurons

    @Test func neuronForwardValues() throws {
        let x = Tensor(shape: [1, 7], values: [-3, -1, -0.25, 0, 0.3, 1, 4])
        func run(_ text: String) throws -> [Float] { try forwardLayer(text, inputs: [x]).outputs[0].array }
        func expectClose(_ a: [Float], _ b: [Double], _ what: String) { TestSupport.expectClose(a, b, what, tol: 1e-6) }
        let xs = x.array.map(Double.init)
        expectClose(try run(#"type: "ELU" elu_param { alpha: 0.7 }"#), xs.map { $0 > 0 ? $0 : 0.7 * (exp($0) - 1) }, "ELU")
        expectClose(try run(#"type: "Sigmoid""#), xs.map { 1 / (1 + exp(-$0)) }, "Sigmoid")
        expectClose(try run(#"type: "TanH""#), xs.map { tanh($0) }, "TanH")
        expectClose(try run(#"type: "AbsVal""#), xs.map { abs($0) }, "AbsVal")
        expectClose(try run(#"type: "BNLL""#), xs.map { log(1 + exp($0)) }, "BNLL")
        expectClose(try run(#"type: "Power" power_param { power: 2 scale: 0.5 shift: 3 }"#), xs.map { pow(3 + 0.5 * $0, 2) }, "Power")
        expectClose(try run(#"type: "Power" power_param { power: 0 scale: 2 }"#), xs.map { _ in 1 }, "Power^0")
        expectClose(try run(#"type: "Power" power_param { power: 3 scale: 0 shift: 2 }"#), xs.map { _ in 8 }, "Power scale 0")
        expectClose(try run(#"type: "Exp" exp_param { base: -1 scale: 0.5 shift: 0.1 }"#), xs.map { exp(0.1 + 0.5 * $0) }, "Exp")
        expectClose(try run(#"type: "Exp" exp_param { base: 2 scale: 3 shift: -1 }"#), xs.map { pow(2, -1 + 3 * $0) }, "Exp base 2")
        expectClose(try run(#"type: "Log" log_param { base: 10 scale: 0.5 shift: 2 }"#), xs.map { log10(2 + 0.5 * $0) }, "Log base 10")
        expectClose(try run(#"type: "Clip" clip_param { min: -1 max: 0.5 }"#), xs.map { max(-1, min($0, 0.5)) }, "Clip")
        expectClose(try run(#"type: "Swish" swish_param { beta: 2 }"#), xs.map { $0 / (1 + exp(-2 * $0)) }, "Swish")
        expectClose(try run(#"type: "Threshold" threshold_param { threshold: 0.2 }"#), xs.map { $0 > 0.2 ? 1 : 0 }, "Threshold")
        expectClose(try run(#"type: "Threshold""#), xs.map { $0 > 0 ? 1 : 0 }, "Threshold 0")
        // BNLL is stable for large |x|.
        let big = Tensor(shape: [3], values: [-100, 60, 100])
        let y = try forwardLayer(#"type: "BNLL""#, inputs: [big]).outputs[0].array
        #expect(y.allSatisfy { $0.isFinite } && abs(y[2] - 100) < 1e-4 && y[0] >= 0 && y[0] < 1e-30)
    }

    @Test func preluForwardMatchesLoop() throws {
        for (k, shape) in [Shape([2, 3, 4, 5]), [3, 2, 7], [4, 5], [2, 3, 2, 1, 3]].enumerated() {
            for shared in [false, true] {
                let x = randomTensor(shape, seed: UInt64(10 + k))
                let text = #"type: "PReLU" prelu_param { channel_shared: \#(shared) }"#
                let (outs, params) = try forwardLayer(text, inputs: [x], seed: UInt64(k))
                let a = params[0]
                #expect(a.shape == (shared ? Shape([]) : Shape([shape[1]])))
                var ref = [Float](repeating: 0, count: x.count)
                let inner = shape.count(from: 2)
                for n in 0..<shape[0] {
                    for c in 0..<shape[1] {
                        for i in 0..<inner {
                            let idx = (n * shape[1] + c) * inner + i
                            let v = x[idx], s = shared ? a[0] : a[c]
                            ref[idx] = v > 0 ? v : s * v
                        }
                    }
                }
                #expect(maxRelError(outs[0], ref) < 1e-6, "PReLU \(shape) shared \(shared)")
            }
        }
    }

    @Test func preluDefaultFillerIsQuarter() throws {
        // The layer text names no filler, so the test net keeps the layer's own:
        // "filler" in a comment makes singleLayerNet skip its random weights.
        let x = randomTensor([2, 3, 2, 2], seed: 1)
        let (_, params) = try forwardLayer("type: \"PReLU\" # default filler\n", inputs: [x])
        #expect(params[0].array == [0.25, 0.25, 0.25])
        let (_, p2) = try forwardLayer(#"type: "PReLU" prelu_param { filler { type: "constant" value: 0.1 } }"#, inputs: [x])
        #expect(p2[0].array == [0.1, 0.1, 0.1])
    }

    // MARK: - Threshold and Dropout

    @Test func thresholdHasNoBackward() throws {
        let net = try singleLayerNet(#"type: "Threshold" threshold_param { threshold: 0.2 }"#, inputShapes: [[2, 3]])
        #expect(net.layers.last!.hasBackward == false)
        expectError("layer 'test' (Threshold)", "has no backward pass") {
            _ = try net.plan(seeds: [try net.resolve("out")], gradientsFor: net.graph.inputs)
        }
    }

    @Test func dropoutTestPhaseIsIdentity() throws {
        try expectGradients(#"type: "Dropout" dropout_param { dropout_ratio: 0.5 }"#, [[2, 3, 4, 5]])
        let x = randomTensor([2, 3, 4], seed: 3)
        let y = try forwardLayer(#"type: "Dropout" dropout_param { dropout_ratio: 0.3 }"#, inputs: [x]).outputs[0]
        #expect(y.array == x.array)
    }

    @Test func dropoutTrainMasksAndScales() throws {
        let p: Float = 0.3
        let net = try singleLayerNet(#"type: "Dropout" dropout_param { dropout_ratio: 0.3 }"#,
                                     inputShapes: [[4, 50, 50]], phase: .train, seed: 9)
        let x = randomTensor([4, 50, 50], seed: 4, offset: 3)   // no zeros in x
        try net.forward(feeds(net, [x]))
        let out = try net.resolve("out")
        let y = net.tensor(out)!.copy()
        var kept = 0, badScale = 0
        for i in 0..<x.count where y[i] != 0 {
            kept += 1
            if abs(y[i] - x[i] / (1 - p)) > 1e-5 * abs(y[i]) { badScale += 1 }
        }
        #expect(badScale == 0, "kept values are scaled by 1/(1-p)")
        let frac = Double(kept) / Double(x.count)
        #expect(abs(frac - 0.7) < 0.02, "kept fraction \(frac)")
        // Backward uses the same mask: dx = dy * mask / (1 - p).
        let dy = randomTensor([4, 50, 50], seed: 5)
        let g = try net.backward(seeds: [out: dy], gradientsFor: net.graph.inputs)[net.graph.inputs[0]]!
        var badGrad = 0
        for i in 0..<x.count {
            let want: Float = y[i] == 0 ? 0 : dy[i] / (1 - p)
            if abs(g[i] - want) > 1e-5 * max(1, abs(want)) { badGrad += 1 }
        }
        #expect(badGrad == 0, "dx = dy * mask / (1 - p)")
        // A new forward draws a new mask.
        try net.forward(feeds(net, [x]))
        #expect(net.tensor(out)!.array != y.array)
    }

    // MARK: - BatchNorm

    /// Naive BatchNorm: (x - mean_c) / sqrt(var_c + eps), over N and spatial positions.
    func batchNormReference(_ x: Tensor, mean: [Float], variance: [Float], eps: Float) -> [Float] {
        let s = x.shape, C = s.rank == 1 ? 1 : s[1], S = s.count / (s[0] * C)
        var y = [Float](repeating: 0, count: x.count)
        for n in 0..<s[0] { for c in 0..<C { for i in 0..<S {
            let idx = (n * C + c) * S + i
            y[idx] = (x[idx] - mean[c]) / (variance[c] + eps).squareRoot()
        } } }
        return y
    }

    /// Per-channel batch mean and biased variance, in Double.
    func batchStats(_ x: Tensor) -> (mean: [Float], variance: [Float]) {
        let s = x.shape, C = s.rank == 1 ? 1 : s[1], S = s.count / (s[0] * C)
        var m = [Double](repeating: 0, count: C), v = [Double](repeating: 0, count: C)
        for n in 0..<s[0] { for c in 0..<C { for i in 0..<S { m[c] += Double(x[(n * C + c) * S + i]) } } }
        let M = Double(s[0] * S)
        for c in 0..<C { m[c] /= M }
        for n in 0..<s[0] { for c in 0..<C { for i in 0..<S {
            let d = Double(x[(n * C + c) * S + i]) - m[c]; v[c] += d * d
        } } }
        return (m.map { Float($0) }, v.map { Float($0 / M) })
    }

    /// BatchNorm's blobs are statistics (the layer contract's
    /// `statisticParameters`): lr_mult forced to 0, a non-zero one refused.
    @Test func batchNormStatisticsAreNotLearnable() throws {
        let net = try singleLayerNet(#"type: "BatchNorm" param { lr_mult: 0 }"#, inputShapes: [[2, 3, 2, 2]])
        #expect(net.paramSpecs.last?.map(\.lrMult) == [0, 0, 0])
        #expect(net.paramSpecs.last?.map(\.decayMult) == [0, 0, 0])
        expectError("layer 'test' (BatchNorm)", "param 1 sets lr_mult 1", "running statistics") {
            _ = try singleLayerNet(#"type: "BatchNorm" param { lr_mult: 0 } param { lr_mult: 1 }"#, inputShapes: [[2, 3, 2, 2]])
        }
    }

    @Test func batchNormGlobalStatsForwardAndGradient() throws {
        for (k, shape) in [Shape([2, 3, 4, 5]), [3, 4], [2, 2, 3, 2, 2]].enumerated() {
            let C = shape[1]
            let net = try singleLayerNet(#"type: "BatchNorm" batch_norm_param { use_global_stats: true eps: 1e-3 }"#,
                                         inputShapes: [shape])
            let params = net.layers.last!.parameters
            var rng = SplitMix64(seed: UInt64(20 + k))
            for c in 0..<C { params[0][c] = 4 * rng.gaussian(); params[1][c] = 0.5 + 6 * rng.uniform() }
            params[2][0] = 2
            let x = randomTensor(shape, seed: UInt64(k))
            try net.forward(feeds(net, [x]))
            let ref = batchNormReference(x, mean: params[0].array.map { $0 / 2 }, variance: params[1].array.map { $0 / 2 }, eps: 1e-3)
            #expect(maxRelError(try net.blob("out")!, ref) < 1e-5, "BatchNorm global \(shape)")
            // Statistics are not updated in global mode.
            #expect(params[2][0] == 2)
            let failures = try finiteDifferenceFailures(net, inputs: [x], checkParams: false)
            #expect(failures.isEmpty, "BatchNorm global \(shape): \(failures.prefix(3))")
            // Parameter gradients stay exactly zero.
            net.zeroParamGrads()
            _ = try net.backward(seeds: [try net.resolve("out"): randomTensor(shape, seed: 7)], gradientsFor: [], paramGrads: true)
            #expect(net.paramGrads.last!.allSatisfy { $0.array.allSatisfy { $0 == 0 } })
        }
    }

    @Test func batchNormZeroScaleFactorMeansZeroStatistics() throws {
        let net = try singleLayerNet(#"type: "BatchNorm" batch_norm_param { use_global_stats: true }"#, inputShapes: [[2, 3]])
        let params = net.layers.last!.parameters
        for j in 0..<2 { params[j].fill(5) }
        params[2][0] = 0
        let x = randomTensor([2, 3], seed: 1)
        try net.forward(feeds(net, [x]))
        // mean = var = 0: y = x / sqrt(eps).
        #expect(maxRelError(try net.blob("out")!, x.array.map { $0 / (1e-5 as Float).squareRoot() }) < 1e-6)
    }

    @Test func batchNormBatchStatsGradients() throws {
        // use_global_stats: false in a TEST net: batch statistics.
        try expectGradients(#"type: "BatchNorm" batch_norm_param { use_global_stats: false }"#, [[3, 2, 3, 2]])
        try expectGradients(#"type: "BatchNorm" batch_norm_param { use_global_stats: false eps: 0.01 }"#, [[5, 3]], seed: 2)
        try expectGradients(#"type: "BatchNorm" batch_norm_param { use_global_stats: false }"#, [[6]], seed: 3)
        // The TRAIN phase defaults to batch statistics.
        let x = randomTensor([3, 2, 2, 2], seed: 8)
        let net = try singleLayerNet(#"type: "BatchNorm""#, inputShapes: [[3, 2, 2, 2]], phase: .train)
        let failures = try finiteDifferenceFailures(net, inputs: [x], checkParams: false)
        #expect(failures.isEmpty, "BatchNorm TRAIN: \(failures.prefix(3))")
    }

    @Test func batchNormTrainUpdatesRunningStatistics() throws {
        let shape: Shape = [4, 3, 2, 5]
        let net = try singleLayerNet(#"type: "BatchNorm" batch_norm_param { moving_average_fraction: 0.9 eps: 1e-4 }"#,
                                     inputShapes: [shape], phase: .train)
        let params = net.layers.last!.parameters
        #expect(params.map(\.shape) == [Shape([3]), Shape([3]), Shape([1])])
        for p in params { p.zero() }
        let x1 = randomTensor(shape, seed: 1, offset: 2), x2 = randomTensor(shape, seed: 2, offset: -1)
        try net.forward(feeds(net, [x1]))
        let (m1, v1) = batchStats(x1)
        #expect(maxRelError(try net.blob("out")!, batchNormReference(x1, mean: m1, variance: v1, eps: 1e-4)) < 1e-5)
        try net.forward(feeds(net, [x2]))
        let (m2, v2) = batchStats(x2)
        #expect(maxRelError(try net.blob("out")!, batchNormReference(x2, mean: m2, variance: v2, eps: 1e-4)) < 1e-5)
        let M: Float = 40, corr = M / (M - 1)
        #expect(abs(params[2][0] - (0.9 * 1 + 1)) < 1e-6)
        let wantMean = (0..<3).map { m2[$0] + 0.9 * m1[$0] }
        let wantVar = (0..<3).map { corr * v2[$0] + 0.9 * corr * v1[$0] }
        #expect(relativeError(params[0].array, wantMean) < 1e-5)
        #expect(relativeError(params[1].array, wantVar) < 1e-5)
        // A TEST net with these statistics normalises by mean / factor and var / factor.
        let test = try singleLayerNet(#"type: "BatchNorm""#, inputShapes: [shape], phase: .test)
        for (d, s) in zip(test.layers.last!.parameters, params) { d.copy(from: s) }
        try test.forward(feeds(test, [x2]))
        let f = params[2][0]
        let ref = batchNormReference(x2, mean: wantMean.map { $0 / f }, variance: wantVar.map { $0 / f }, eps: 1e-5)
        #expect(maxRelError(try test.blob("out")!, ref) < 1e-5)
    }

    @Test func batchNormRejectsChannelChange() throws {
        let net = try singleLayerNet(#"type: "BatchNorm""#, inputShapes: [[2, 3, 4]])
        expectError("layer 'test' (BatchNorm)", "has 4 channels but the layer (and its statistics) has 3") {
            try net.forward(["data": Tensor(shape: [2, 4, 4])])
        }
    }

    // MARK: - Scale and Bias

    /// y[o, d, i] = x * s[d] + b[d] with x viewed as (outer, s.count, inner).
    func broadcastReference(_ x: Tensor, axis: Int, operandShape: Shape, scale: [Float]?, bias: [Float]?) -> [Float] {
        let a = operandShape.rank == 0 ? 0 : (axis < 0 ? axis + x.shape.rank : axis)
        let outer = x.shape.count(from: 0, to: a), D = operandShape.count
        let inner = x.shape.count(from: a + operandShape.rank)
        var y = [Float](repeating: 0, count: x.count)
        for o in 0..<outer { for d in 0..<D { for i in 0..<inner {
            let idx = (o * D + d) * inner + i
            y[idx] = x[idx] * (scale?[d] ?? 1) + (bias?[d] ?? 0)
        } } }
        return y
    }

    @Test func scaleGradients() throws {
        try expectGradients(#"type: "Scale" scale_param { bias_term: true }"#, [[2, 3, 4, 5]])
        try expectGradients(#"type: "Scale""#, [[2, 3, 4]], seed: 2)
        try expectGradients(#"type: "Scale" scale_param { axis: 1 num_axes: 2 bias_term: true }"#, [[2, 3, 4, 2]], seed: 3)
        try expectGradients(#"type: "Scale" scale_param { axis: -1 num_axes: -1 }"#, [[2, 3, 4]], seed: 4)
        try expectGradients(#"type: "Scale" scale_param { num_axes: 0 bias_term: true }"#, [[2, 3, 4]], seed: 5)
        try expectGradients(#"type: "Scale" scale_param { axis: 0 num_axes: -1 }"#, [[2, 3]], seed: 6)
        // Scale from a second input (gradient to both), with and without a bias.
        try expectGradients(#"type: "Scale""#, [[2, 3, 4, 5], [3]], seed: 7)
        try expectGradients(#"type: "Scale" scale_param { bias_term: true }"#, [[2, 3, 4, 5], [3, 4]], seed: 8)
        try expectGradients(#"type: "Scale" scale_param { axis: 0 }"#, [[2, 3, 4], [2]], seed: 9)
        try expectGradients(#"type: "Scale""#, [[2, 3, 4], []], seed: 10)
    }

    @Test func scaleForwardMatchesLoop() throws {
        let cases: [(String, Shape, Int, Int)] = [   // text args, input shape, axis, num_axes
            ("", [2, 3, 4, 5], 1, 1), ("axis: 2", [2, 3, 4, 5], 2, 1), ("axis: 1 num_axes: 2", [3, 2, 4, 2], 1, 2),
            ("axis: -2 num_axes: -1", [2, 3, 4, 5], 2, -1), ("num_axes: 0", [2, 5, 3], 1, 0), ("axis: 0", [4, 3], 0, 1),
        ]
        for (k, (args, shape, axis, numAxes)) in cases.enumerated() {
            let x = randomTensor(shape, seed: UInt64(30 + k))
            let (outs, params) = try forwardLayer(#"type: "Scale" scale_param { \#(args) bias_term: true }"#, inputs: [x], seed: UInt64(k))
            let a = axis < 0 ? axis + shape.rank : axis
            let pShape = Shape(Array(shape.dims[a..<(numAxes == -1 ? shape.rank : a + numAxes)]))
            #expect(params.map(\.shape) == [pShape, pShape], "Scale \(args): parameter shapes")
            let ref = broadcastReference(x, axis: a, operandShape: pShape, scale: params[0].array, bias: params[1].array)
            #expect(maxRelError(outs[0], ref) < 1e-6, "Scale \(args) on \(shape)")
            // Two inputs: the second is the scale.
            let s = randomTensor(pShape, seed: UInt64(40 + k))
            let (o2, p2) = try forwardLayer(#"type: "Scale" scale_param { axis: \#(a) }"#, inputs: [x, s])
            #expect(p2.isEmpty)
            #expect(maxRelError(o2[0], broadcastReference(x, axis: a, operandShape: pShape, scale: s.array, bias: nil)) < 1e-6)
        }
    }

    @Test func scaleDefaultFillersAndParameterOrder() throws {
        let x = randomTensor([2, 3, 2], seed: 1)
        // "filler" in a comment keeps the layer's own fillers: scale 1, bias 0.
        let (outs, params) = try forwardLayer("type: \"Scale\" scale_param { bias_term: true } # default filler\n", inputs: [x])
        #expect(params[0].array == [1, 1, 1] && params[1].array == [0, 0, 0])
        #expect(outs[0].array == x.array)
        let (_, p2) = try forwardLayer(#"type: "Scale" scale_param { bias_term: true filler { type: "constant" value: 3 } bias_filler { type: "constant" value: -2 } }"#, inputs: [x])
        #expect(p2[0].array == [3, 3, 3] && p2[1].array == [-2, -2, -2])
        // Two inputs with a bias: the bias is blob 0, shaped like input 2.
        let s = randomTensor([3, 2], seed: 2)
        let (o3, p3) = try forwardLayer(#"type: "Scale" scale_param { bias_term: true bias_filler { type: "constant" value: 0.5 } }"#, inputs: [x, s])
        #expect(p3.map(\.shape) == [Shape([3, 2])])
        #expect(maxRelError(o3[0], broadcastReference(x, axis: 1, operandShape: [3, 2], scale: s.array, bias: p3[0].array)) < 1e-6)
    }

    @Test func biasGradientsAndForward() throws {
        try expectGradients(#"type: "Bias""#, [[2, 3, 4, 5]])
        try expectGradients(#"type: "Bias" bias_param { axis: 2 num_axes: 2 }"#, [[2, 3, 4, 2]], seed: 2)
        try expectGradients(#"type: "Bias" bias_param { num_axes: 0 }"#, [[2, 3]], seed: 3)
        try expectGradients(#"type: "Bias""#, [[2, 3, 4], [3, 4]], seed: 4)
        try expectGradients(#"type: "Bias" bias_param { axis: 0 }"#, [[2, 3, 4], [2]], seed: 5)
        for (k, (args, shape, axis, numAxes)) in [("", Shape([2, 3, 4]), 1, 1), ("axis: -1", [2, 3, 4], 2, 1),
                                                   ("axis: 0 num_axes: -1", [3, 2], 0, -1)].enumerated() {
            let x = randomTensor(shape, seed: UInt64(50 + k))
            let (outs, params) = try forwardLayer(#"type: "Bias" bias_param { \#(args) }"#, inputs: [x])
            let pShape = Shape(Array(shape.dims[axis..<(numAxes == -1 ? shape.rank : axis + numAxes)]))
            #expect(params.map(\.shape) == [pShape])
            #expect(maxRelError(outs[0], broadcastReference(x, axis: axis, operandShape: pShape, scale: nil, bias: params[0].array)) < 1e-6)
        }
        let (_, p) = try forwardLayer("type: \"Bias\" # default filler\n", inputs: [randomTensor([2, 3], seed: 1)])
        #expect(p[0].array == [0, 0, 0])
    }

    @Test func scaleAndBiasAccumulateParameterGradients() throws {
        for text in [#"type: "Scale" scale_param { bias_term: true }"#, #"type: "Bias""#] {
            let net = try singleLayerNet(text, inputShapes: [[2, 3, 4]])
            let x = randomTensor([2, 3, 4], seed: 1), dy = randomTensor([2, 3, 4], seed: 2)
            try net.forward(feeds(net, [x]))
            let out = try net.resolve("out")
            net.zeroParamGrads()
            _ = try net.backward(seeds: [out: dy], gradientsFor: [], paramGrads: true)
            let once = net.paramGrads.last!.map(\.array)
            _ = try net.backward(seeds: [out: dy], gradientsFor: [], paramGrads: true)
            for (g, o) in zip(net.paramGrads.last!, once) {
                #expect(relativeError(g.array, o.map { 2 * $0 }) < 1e-6, "\(text): gradients accumulate")
            }
        }
    }

    // MARK: - MVN

    /// Naive MVN in Double over rows of the legacy 4-d view.
    func mvnReference(_ x: Tensor, across: Bool, normalize: Bool, eps: Double) -> [Float] {
        let d = (0..<4).map { $0 < x.shape.rank ? x.shape[$0] : 1 }
        let rows = across ? d[0] : d[0] * d[1], n = x.count / rows
        var y = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            var m = 0.0
            for i in 0..<n { m += Double(x[r * n + i]) }
            m /= Double(n)
            var v = 0.0
            for i in 0..<n { let u = Double(x[r * n + i]) - m; v += u * u }
            v /= Double(n)
            for i in 0..<n {
                let u = Double(x[r * n + i]) - m
                y[r * n + i] = Float(normalize ? u / (v.squareRoot() + eps) : u)
            }
        }
        return y
    }

    @Test func mvnForwardMatchesLoop() throws {
        for (k, shape) in [Shape([2, 3, 4, 5]), [3, 2, 7], [4, 6], [2, 3, 1, 1]].enumerated() {
            for across in [false, true] {
                for normalize in [true, false] {
                    let x = randomTensor(shape, seed: UInt64(60 + k), offset: 1.5)
                    let text = #"type: "MVN" mvn_param { across_channels: \#(across) normalize_variance: \#(normalize) }"#
                    let y = try forwardLayer(text, inputs: [x]).outputs[0]
                    // Caffe's output is the legacy 4-d shape.
                    #expect(y.shape == Shape((0..<4).map { $0 < shape.rank ? shape[$0] : 1 }))
                    let ref = mvnReference(x, across: across, normalize: normalize, eps: 1e-9)
                    #expect(maxRelError(y, ref) < 1e-5, "MVN \(shape) across \(across) normalize \(normalize)")
                }
            }
        }
        expectError("layer 'test' (MVN)", "at most 4 axes") { _ = try forwardLayer(#"type: "MVN""#, inputs: [Tensor(shape: [1, 2, 2, 2, 2])]) }
    }

    @Test func mvnGradients() throws {
        try expectGradients(#"type: "MVN""#, [[2, 3, 4, 5]])
        try expectGradients(#"type: "MVN" mvn_param { across_channels: true }"#, [[2, 3, 2, 3]], seed: 2)
        try expectGradients(#"type: "MVN" mvn_param { normalize_variance: false }"#, [[2, 3, 4]], seed: 3)
        try expectGradients(#"type: "MVN" mvn_param { eps: 0.3 }"#, [[2, 2, 5]], seed: 4)
        try expectGradients(#"type: "MVN" mvn_param { across_channels: true normalize_variance: false }"#, [[3, 5]], seed: 5)
    }

    // MARK: - Parameter validation

    @Test func invalidParametersAreRejected() throws {
        let x = Tensor(shape: [2, 3], repeating: 1)
        let bad: [(String, [Tensor])] = [
            (#"type: "Exp" exp_param { base: -2 }"#, [x]),
            (#"type: "Exp" exp_param { base: 0 }"#, [x]),
            (#"type: "Log" log_param { base: 1 }"#, [x]),
            (#"type: "Log" log_param { base: -0.5 }"#, [x]),
            (#"type: "Clip" clip_param { min: 0 }"#, [x]),
            (#"type: "Dropout" dropout_param { dropout_ratio: 1 }"#, [x]),
            (#"type: "Dropout" dropout_param { dropout_ratio: -0.1 }"#, [x]),
            (#"type: "PReLU""#, [Tensor(shape: [4], repeating: 1)]),
            (#"type: "Scale" scale_param { axis: 2 }"#, [x]),
            (#"type: "Scale" scale_param { num_axes: 3 }"#, [x]),
            (#"type: "Scale" scale_param { num_axes: -2 }"#, [x]),
            (#"type: "Scale""#, [x, Tensor(shape: [2], repeating: 1)]),
            (#"type: "Bias""#, [x, Tensor(shape: [3, 2], repeating: 1)]),
            (#"type: "Bias" bias_param { axis: -3 }"#, [x]),
            (#"type: "ReLU""#, [x, x]),
        ]
        for (text, inputs) in bad {
            // Refused while the layer is built, by name (not by a mistake in the test's text).
            expectError("layer 'test'") { _ = try forwardLayer(text, inputs: inputs) }
        }
    }

    // MARK: - Real Caffe

    @Test("matches the real-Caffe fixtures of the group", arguments: [
        "relu", "relu_leaky03", "prelu", "prelu_shared", "elu", "sigmoid", "tanh", "absval", "bnll",
        "power", "exp", "dropout_test", "batchnorm_global", "scale_bias", "bias", "mvn", "threshold_nobwd",
    ])
    func caffeFixture(_ name: String) throws {
        try CaffeFixtureTests().fixture(name)
    }
}
