import Foundation
import Testing
import CaffeImport
import GraphIR
import Runtime
import TestSupport

/// The solver on small nets with known gradients: update rules against
/// Caffe's formulas, clipping, iter_size, lr_mult/decay_mult, freezing,
/// shared parameters, snapshots and resumption, test nets, configuration errors.
struct SolverTests {
    // MARK: - Update rules

    static let a: [Double] = [0.5, -1, 2, -0.25]
    static let b = 0.3
    static let p0 = 0.7

    /// One TestQuadratic layer: L = a.p + b/2 |p|^2, p starts at 0.7.
    static func quadraticNet(param: String = "") -> String {
        """
        layer { name: "q" type: "TestQuadratic" top: "loss" \(param)
                quadratic_param { \(a.map { "a: \($0)" }.joined(separator: " ")) b: \(b)
                                  weight_filler { type: "constant" value: \(p0) } } }
        """
    }

    /// The parameters after `steps` updates, computed in double precision
    /// from Caffe's update rules (lr fixed; lrMult/decayMult as given).
    static func reference(_ method: String, steps: Int, lr: Double, momentum: Double = 0, momentum2: Double = 0.999,
                          delta: Double = 1e-8, rmsDecay: Double = 0.99, weightDecay: Double = 0, l1: Bool = false,
                          clip: Double = -1, lrMult: Double = 1, decayMult: Double = 1) -> [Double] {
        var p = [Double](repeating: p0, count: a.count)
        var h = [Double](repeating: 0, count: a.count), h2 = h
        for it in 0..<steps {
            var g = (0..<a.count).map { a[$0] + b * p[$0] }
            if clip >= 0 {
                let norm = g.map { $0 * $0 }.reduce(0, +).squareRoot()
                if norm > clip { g = g.map { $0 * clip / norm } }
            }
            let wd = weightDecay * decayMult, rate = lr * lrMult
            for i in g.indices { g[i] += wd * (l1 ? (p[i] > 0 ? 1 : (p[i] < 0 ? -1 : 0)) : p[i]) }
            for i in g.indices {
                let step: Double
                switch method {
                case "SGD":
                    h[i] = rate * g[i] + momentum * h[i]; step = h[i]
                case "Nesterov":
                    let old = h[i]
                    h[i] = rate * g[i] + momentum * old
                    step = (1 + momentum) * h[i] - momentum * old
                case "AdaGrad":
                    h[i] += g[i] * g[i]; step = rate * g[i] / (h[i].squareRoot() + delta)
                case "RMSProp":
                    h[i] = (1 - rmsDecay) * g[i] * g[i] + rmsDecay * h[i]
                    step = rate * g[i] / (h[i].squareRoot() + delta)
                case "AdaDelta":
                    h[i] = (1 - momentum) * g[i] * g[i] + momentum * h[i]
                    let dx = g[i] * ((h2[i] + delta) / (h[i] + delta)).squareRoot()
                    h2[i] = (1 - momentum) * dx * dx + momentum * h2[i]
                    step = rate * dx
                case "Adam":
                    let t = Double(it + 1)
                    h[i] = momentum * h[i] + (1 - momentum) * g[i]
                    h2[i] = momentum2 * h2[i] + (1 - momentum2) * g[i] * g[i]
                    let correction = (1 - pow(momentum2, t)).squareRoot() / (1 - pow(momentum, t))
                    step = rate * correction * h[i] / (h2[i].squareRoot() + delta)
                default: fatalError("unknown method in test")
                }
                p[i] -= step
            }
        }
        return p
    }

    func train(_ net: String, _ solver: String, steps: Int) throws -> Solver {
        let s = try Solver(config: try TrainingSupport.config(solver), trainGraph: try TrainingSupport.graph(net),
                           registry: try TrainingSupport.registry(), seed: 1)
        s.log = { _ in }
        try s.step(steps)
        return s
    }

    static let methods: [(String, String, [String: Double])] = [
        ("SGD", "momentum: 0.9", ["momentum": 0.9]),
        ("Nesterov", "momentum: 0.9", ["momentum": 0.9]),
        ("AdaGrad", "delta: 1e-6", ["delta": 1e-6]),
        ("RMSProp", "rms_decay: 0.9 delta: 1e-6", ["rmsDecay": 0.9, "delta": 1e-6]),
        ("AdaDelta", "momentum: 0.95 delta: 1e-6", ["momentum": 0.95, "delta": 1e-6]),
        ("Adam", "momentum: 0.9 momentum2: 0.999 delta: 1e-8", ["momentum": 0.9, "momentum2": 0.999, "delta": 1e-8]),
    ]

    @Test("update rule matches Caffe's formula", arguments: 0..<6)
    func updateRule(_ k: Int) throws {
        let (name, fields, values) = Self.methods[k]
        let lr = name == "AdaDelta" ? 1.0 : 0.05
        for (decay, l1) in [(0.0, false), (0.01, false), (0.02, true)] {
            let s = try train(Self.quadraticNet(),
                              "type: \"\(name)\" base_lr: \(lr) lr_policy: \"fixed\" \(fields) weight_decay: \(decay) regularization_type: \"\(l1 ? "L1" : "L2")\"",
                              steps: 15)
            let ref = Self.reference(name, steps: 15, lr: lr, momentum: values["momentum"] ?? 0,
                                     momentum2: values["momentum2"] ?? 0.999, delta: values["delta"] ?? 1e-8,
                                     rmsDecay: values["rmsDecay"] ?? 0.99, weightDecay: decay, l1: l1)
            expectClose(s.learnable[0].tensor.array, ref, "\(name) decay \(decay) \(l1 ? "L1" : "L2")")
            #expect(s.history.count == s.learnable.count * (name == "Adam" || name == "AdaDelta" ? 2 : 1))
        }
    }

    @Test func legacySolverTypeEnum() throws {
        let s = try train(Self.quadraticNet(), "solver_type: NESTEROV base_lr: 0.05 lr_policy: \"fixed\" momentum: 0.9", steps: 10)
        #expect(s.config.method == .nesterov)
        expectClose(s.learnable[0].tensor.array, Self.reference("Nesterov", steps: 10, lr: 0.05, momentum: 0.9), "legacy enum")
    }

    @Test func lrMultAndDecayMult() throws {
        let s = try train(Self.quadraticNet(param: "param { lr_mult: 2.5 decay_mult: 0.5 }"),
                          "type: \"SGD\" base_lr: 0.02 lr_policy: \"fixed\" momentum: 0.5 weight_decay: 0.1", steps: 12)
        let ref = Self.reference("SGD", steps: 12, lr: 0.02, momentum: 0.5, weightDecay: 0.1, lrMult: 2.5, decayMult: 0.5)
        expectClose(s.learnable[0].tensor.array, ref, "lr_mult 2.5 decay_mult 0.5")
    }

    @Test func clipGradientsScalesToTheGlobalNorm() throws {
        // Clipping fires when |g| > 0.4 and shrinks g to norm 0.4 (before weight decay, as Caffe).
        let s = try train(Self.quadraticNet(), "type: \"Adam\" base_lr: 0.05 lr_policy: \"fixed\" momentum: 0.9 clip_gradients: 0.4 weight_decay: 0.01", steps: 15)
        expectClose(s.learnable[0].tensor.array,
                    Self.reference("Adam", steps: 15, lr: 0.05, momentum: 0.9, weightDecay: 0.01, clip: 0.4), "clip")
        // Two blobs share one global norm: SGD, lr 1, one step -> each moves by g * c / |(g1, g2)|.
        let two = """
        layer { name: "q1" type: "TestQuadratic" top: "l1" quadratic_param { a: 3 a: 0 weight_filler { type: "constant" value: 0 } } }
        layer { name: "q2" type: "TestQuadratic" top: "l2" quadratic_param { a: 0 a: 4 weight_filler { type: "constant" value: 0 } } }
        """
        let t = try train(two, "type: \"SGD\" base_lr: 1 lr_policy: \"fixed\" clip_gradients: 1", steps: 1)
        expectClose(t.learnable[0].tensor.array, [-0.6, 0], "q1", tol: 1e-6)
        expectClose(t.learnable[1].tensor.array, [0, -0.8], "q2", tol: 1e-6)
        // Not clipped when the norm is below the limit.
        let u = try train(two, "type: \"SGD\" base_lr: 0.1 lr_policy: \"fixed\" clip_gradients: 6", steps: 1)
        expectClose(u.learnable[0].tensor.array + u.learnable[1].tensor.array, [-0.3, 0, 0, -0.4], "unclipped", tol: 1e-6)
    }

    @Test func iterSizeAccumulatesAndAverages() throws {
        // The same gradient in every pass: iter_size 3 must equal iter_size 1.
        let one = try train(Self.quadraticNet(), "type: \"SGD\" base_lr: 0.05 lr_policy: \"fixed\" momentum: 0.9", steps: 8)
        let three = try train(Self.quadraticNet(), "type: \"SGD\" base_lr: 0.05 lr_policy: \"fixed\" momentum: 0.9 iter_size: 3", steps: 8)
        expectClose(three.learnable[0].tensor.array, one.learnable[0].tensor.array.map(Double.init), "iter_size 3", tol: 1e-6)
        // Two half batches with iter_size 2 = one batch of both halves (the loss divides by N).
        let net = """
        layer { name: "in" type: "Input" top: "x" top: "t" input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
        layer { name: "fc" type: "TestLinear" bottom: "x" top: "y" linear_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }
        layer { name: "loss" type: "TestSquareLoss" bottom: "y" bottom: "t" top: "loss" }
        """
        let solver = "type: \"SGD\" base_lr: 0.1 lr_policy: \"fixed\" momentum: 0.9 weight_decay: 0.01"
        let halves = try Solver(config: try TrainingSupport.config(solver + " iter_size: 2"), trainGraph: try TrainingSupport.graph(net),
                                registry: try TrainingSupport.registry(), seed: 3)
        halves.log = { _ in }
        halves.feeder = TrainingSupport.regressionFeeder(iterSize: 2)
        let whole = try Solver(config: try TrainingSupport.config(solver), trainGraph: try TrainingSupport.graph(net),
                               registry: try TrainingSupport.registry(), seed: 3)
        whole.log = { _ in }
        whole.feeder = { req in
            let (x1, t1) = TrainingSupport.regressionBatch(req.iteration * 2), (x2, t2) = TrainingSupport.regressionBatch(req.iteration * 2 + 1)
            return ["x": Tensor(shape: [8, 3], values: x1.array + x2.array), "t": Tensor(shape: [8, 2], values: t1.array + t2.array)]
        }
        var lh: [Float] = [], lw: [Float] = []
        halves.onIteration = { lh.append($0.loss) }
        whole.onIteration = { lw.append($0.loss) }
        try halves.step(10)
        try whole.step(10)
        expectClose(lh, lw.map(Double.init), "losses", tol: 1e-5)
        for k in 0..<2 {
            expectClose(halves.learnable[k].tensor.array, whole.learnable[k].tensor.array.map(Double.init), "blob \(k)", tol: 1e-5)
        }
    }

    // MARK: - Freezing, sharing, loss weights

    @Test func lrMultZeroFreezesALayer() throws {
        let net = """
        layer { name: "in" type: "Input" top: "x" top: "t" input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
        layer { name: "fc1" type: "TestLinear" bottom: "x" top: "h" param { lr_mult: 0 } param { lr_mult: 0 }
                linear_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.2 } } }
        layer { name: "fc2" type: "TestLinear" bottom: "h" top: "y" linear_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }
        layer { name: "loss" type: "TestSquareLoss" bottom: "y" bottom: "t" top: "loss" }
        """
        for type in ["SGD", "Adam", "AdaDelta"] {
            let s = try Solver(config: try TrainingSupport.config("type: \"\(type)\" base_lr: 0.05 lr_policy: \"fixed\" momentum: 0.9 weight_decay: 0.05 max_iter: 30"),
                               trainGraph: try TrainingSupport.graph(net), registry: try TrainingSupport.registry(), seed: 5)
            s.log = { _ in }
            s.feeder = TrainingSupport.regressionFeeder()
            let before = s.learnable.map { $0.tensor.array }
            try s.step(30)
            #expect(s.learnable[0].tensor.array == before[0], "\(type): frozen weights moved")
            #expect(s.learnable[1].tensor.array == before[1], "\(type): frozen bias moved")
            #expect(s.learnable[2].tensor.array != before[2], "\(type): the trained layer did not move")
        }
    }

    @Test func sharedParametersAreOneLearnableBlob() throws {
        let net = """
        layer { name: "q1" type: "TestQuadratic" top: "l1" param { name: "w" } quadratic_param { a: 1 a: 2 weight_filler { type: "constant" value: 0 } } }
        layer { name: "q2" type: "TestQuadratic" top: "l2" param { name: "w" } quadratic_param { a: 3 a: -1 weight_filler { type: "constant" value: 0 } } }
        """
        let s = try train(net, "type: \"SGD\" base_lr: 0.1 lr_policy: \"fixed\"", steps: 1)
        #expect(s.learnable.count == 1)
        expectClose(s.learnable[0].tensor.array, [-0.4, -0.1], "summed gradient", tol: 1e-6)
        // Different lr_mult on the sharers is refused.
        let bad = net.replacingOccurrences(of: "param { name: \"w\" } quadratic_param { a: 3", with: "param { name: \"w\" lr_mult: 2 } quadratic_param { a: 3")
        expectError("sets lr_mult 2", "give every sharer the same values") { _ = try train(bad, "type: \"SGD\" base_lr: 0.1 lr_policy: \"fixed\"", steps: 1) }
    }

    @Test func lossWeightsScaleLossAndGradient() throws {
        let weighted = Self.quadraticNet(param: "loss_weight: 2")
        let s = try train(weighted, "type: \"SGD\" base_lr: 0.05 lr_policy: \"fixed\"", steps: 1)
        // Gradient doubled: one SGD step of lr 0.05 with g = 2 (a + b p0).
        expectClose(s.learnable[0].tensor.array, Self.a.map { Self.p0 - 0.05 * 2 * ($0 + Self.b * Self.p0) }, "weighted step", tol: 1e-6)
        var loss: Float = 0
        let t = try Solver(config: try TrainingSupport.config("type: \"SGD\" base_lr: 0 lr_policy: \"fixed\""),
                           trainGraph: try TrainingSupport.graph(weighted), registry: try TrainingSupport.registry(), seed: 1)
        t.log = { _ in }
        t.onIteration = { loss = $0.loss }
        try t.step(1)
        let ref = Self.a.map { $0 * Self.p0 + 0.5 * Self.b * Self.p0 * Self.p0 }.reduce(0, +) * 2
        #expect(abs(Double(loss) - ref) < 1e-5)
        // loss_weight: 0 on the only loss leaves nothing to train.
        #expect(throws: SolverError.self) { _ = try train(Self.quadraticNet(param: "loss_weight: 0"), "type: \"SGD\" base_lr: 0.05 lr_policy: \"fixed\"", steps: 1) }
    }

    // MARK: - Snapshots

    static let regressionNet = """
        name: "Regression"
        layer { name: "in" type: "Input" top: "x" top: "t" input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
        layer { name: "fc1" type: "TestLinear" bottom: "x" top: "h" linear_param { num_output: 4 weight_filler { type: "gaussian" std: 0.5 } } }
        layer { name: "fc2" type: "TestLinear" bottom: "h" top: "y" linear_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }
        layer { name: "loss" type: "TestSquareLoss" bottom: "y" bottom: "t" top: "loss" }
        """

    @Test("snapshot and resume continue with the same losses", arguments: [
        "type: \"SGD\" base_lr: 0.05 momentum: 0.9 lr_policy: \"step\" gamma: 0.5 stepsize: 3 weight_decay: 0.01",
        "type: \"Adam\" base_lr: 0.02 momentum: 0.9 momentum2: 0.99 lr_policy: \"multistep\" gamma: 0.5 stepvalue: 2 stepvalue: 6",
        "type: \"Nesterov\" base_lr: 0.03 momentum: 0.8 lr_policy: \"inv\" gamma: 0.1 power: 0.75 iter_size: 2",
    ])
    func snapshotResume(_ solverText: String) throws {
        let dir = try temporaryDirectory("snapshot")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = solverText + " max_iter: 10 snapshot: 4 snapshot_prefix: \"\(dir)/run\""
        let iterSize = solverText.contains("iter_size: 2") ? 2 : 1
        func make(seed: UInt64) throws -> Solver {
            let s = try Solver(config: try TrainingSupport.config(text), trainGraph: try TrainingSupport.graph(Self.regressionNet),
                               registry: try TrainingSupport.registry(), seed: seed)
            s.log = { _ in }
            s.feeder = TrainingSupport.regressionFeeder(iterSize: iterSize)
            return s
        }
        // Uninterrupted run.
        let full = try make(seed: 7)
        var reference: [Float] = []
        full.onIteration = { reference.append($0.loss) }
        try full.step(10)
        // 4 iterations, snapshot at 4.
        let first = try make(seed: 7)
        first.snapshotWriter = TrainingSupport.writer()
        try first.step(4)
        let statePath = dir + "/run_iter_4.solverstate", modelPath = dir + "/run_iter_4.caffemodel"
        #expect(FileManager.default.fileExists(atPath: statePath) && FileManager.default.fileExists(atPath: modelPath))
        let state = try CaffeModel.readSolverState(statePath)
        #expect(state.iter == 4)
        #expect(state.learnedNet == modelPath)
        #expect(state.history.count == first.history.count)
        if solverText.contains("\"step\"") { #expect(state.currentStep == 1) }
        if solverText.contains("multistep") { #expect(state.currentStep == 1) }
        // A new solver with other initial weights, restored from the files.
        let resumed = try make(seed: 99)
        let weights = try TrainingSupport.graph(Self.regressionNet, weights: state.learnedNet)
        try resumed.restore(state, weights: weights, file: statePath)
        #expect(resumed.iter == 4)
        var after: [Float] = []
        resumed.onIteration = { after.append($0.loss) }
        try resumed.step(6)
        #expect(after.count == 6)
        expectClose(after, reference[4...].map(Double.init), "continued losses", tol: 1e-6)
        for k in full.learnable.indices {
            expectClose(resumed.learnable[k].tensor.array, full.learnable[k].tensor.array.map(Double.init), "final blob \(k)", tol: 1e-6)
        }
    }

    @Test func restoreRefusesAForeignState() throws {
        let s = try Solver(config: try TrainingSupport.config("type: \"Adam\" base_lr: 0.01 lr_policy: \"fixed\""),
                           trainGraph: try TrainingSupport.graph(Self.regressionNet), registry: try TrainingSupport.registry(), seed: 1)
        let sgdLike = SolverState(iter: 3, currentStep: 0, learnedNet: "", history: s.learnable.map { WeightBlob(shape: $0.tensor.shape) })
        do {
            try s.restore(sgdLike, weights: nil, file: "x.solverstate")
            Issue.record("an SGD-sized history must not restore into Adam")
        } catch {
            #expect("\(error)".contains("x.solverstate") && "\(error)".contains("history"))
        }
    }

    @Test func solveSnapshotsAtTheEnd() throws {
        let dir = try temporaryDirectory("solve")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try Solver(config: try TrainingSupport.config("type: \"SGD\" base_lr: 0.05 lr_policy: \"fixed\" max_iter: 7 snapshot: 5 display: 2 snapshot_prefix: \"\(dir)/m\""),
                           trainGraph: try TrainingSupport.graph(Self.regressionNet), registry: try TrainingSupport.registry(), seed: 1)
        var lines: [String] = []
        s.log = { lines.append($0) }
        s.feeder = TrainingSupport.regressionFeeder()
        s.snapshotWriter = TrainingSupport.writer()
        try s.solve()
        #expect(s.iter == 7)
        for f in ["m_iter_5.caffemodel", "m_iter_5.solverstate", "m_iter_7.caffemodel", "m_iter_7.solverstate"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f)")
        }
        // Progress: iteration, speed, ETA, loss and lr on the display lines.
        let progress = lines.filter { $0.hasPrefix("Iteration ") && $0.contains("lr =") }
        #expect(progress.count == 4, "\(lines)")   // 0, 2, 4, 6
        #expect(progress.dropFirst().allSatisfy { $0.contains("it/s") && $0.contains("ETA") && $0.contains("loss =") }, "\(progress)")
        #expect(lines.contains { $0.contains("Train net output #0: loss =") })
        #expect(lines.last == "Optimization Done.")
        // The written caffemodel loads back as the trained weights.
        let g = try TrainingSupport.graph(Self.regressionNet, weights: dir + "/m_iter_7.caffemodel")
        #expect(g.node(named: "fc1")?.weights.first?.data == s.learnable[0].tensor.array)
    }

    @Test func requestStopSnapshotsAndEndsEarly() throws {
        let dir = try temporaryDirectory("stop")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try Solver(config: try TrainingSupport.config("type: \"SGD\" base_lr: 0.05 lr_policy: \"fixed\" max_iter: 100 snapshot_prefix: \"\(dir)/m\""),
                           trainGraph: try TrainingSupport.graph(Self.regressionNet), registry: try TrainingSupport.registry(), seed: 1)
        s.log = { _ in }
        s.feeder = TrainingSupport.regressionFeeder()
        s.snapshotWriter = TrainingSupport.writer()
        s.onIteration = { if $0.iteration == 2 { s.requestStop() } }
        try s.solve()
        #expect(s.iter == 3)
        #expect(FileManager.default.fileExists(atPath: dir + "/m_iter_3.solverstate"))
    }

    // MARK: - Test nets

    @Test func testNetsShareParametersAndAverageOutputs() throws {
        let net = Self.regressionNet + """

            layer { name: "extra" type: "TestSquareLoss" bottom: "y" bottom: "t" top: "extra" loss_weight: 0.5 include { phase: TEST } }
            """
        let cfg = try TrainingSupport.config("type: \"SGD\" base_lr: 0.05 lr_policy: \"fixed\" max_iter: 6 test_iter: 3 test_interval: 3 test_initialization: false test_compute_loss: true")
        let s = try Solver(config: cfg, trainGraph: try TrainingSupport.graph(net), testGraphs: [try TrainingSupport.graph(net, phase: "TEST")],
                           registry: try TrainingSupport.registry(), seed: 1)
        var lines: [String] = []
        s.log = { lines.append($0) }
        s.feeder = TrainingSupport.regressionFeeder()
        #expect(s.testNets[0].layers[1].parameters[0] === s.net.layers[1].parameters[0])
        #expect(s.testNets[0].layers[2].parameters[1] === s.net.layers[2].parameters[1])
        try s.solve()
        #expect(lines.filter { $0.contains("Testing net (#0)") }.count == 2, "\(lines)")   // iterations 3 and 6
        let scores = s.lastTestScores[0]
        #expect(scores.map(\.name) == ["loss", "extra"])
        #expect(scores[0].lossWeight == 1 && scores[1].lossWeight == 0.5)
        // The mean over the test batches, with the final weights.
        let check = try Net(graph: try TrainingSupport.graph(Self.regressionNet, phase: "TEST"), registry: try TrainingSupport.registry())
        try check.shareParameters(from: s.net)
        var mean: Float = 0
        for k in 0..<3 {
            let (x, t) = TrainingSupport.regressionBatch(10_000 + k)
            try check.forward(["x": x, "t": t])
            mean += try #require(try check.blob("loss"))[0] / 3
        }
        #expect(abs(scores[0].value - mean) < 1e-5)
        #expect(lines.contains { $0.hasPrefix("Test loss: ") })
        #expect(lines.contains { $0.contains("Test net output #1: extra =") && $0.contains("(* 0.5 =") })
    }

    // MARK: - Configuration

    @Test func configurationErrors() throws {
        func message(_ text: String) -> String {
            do { _ = try TrainingSupport.config(text); return "" } catch { return "\(error)" }
        }
        let base = "base_lr: 0.1 lr_policy: \"fixed\" "
        #expect(message(base + "type: \"SGD\" solver_type: SGD").contains("both set"))
        #expect(message(base + "type: \"Adagrad\" momentum: 0.9").contains("momentum"))
        #expect(message(base + "type: \"RMSProp\" rms_decay: 1.5").contains("rms_decay"))
        #expect(message(base + "type: \"LBFGS\"").contains("'LBFGS' is not a solver type"))
        #expect(message(base + "iter_size: 0").contains("iter_size"))
        #expect(message(base + "snapshot: 10").contains("snapshot_prefix"))
        #expect(message(base + "test_iter: 10").contains("test_interval"))
        #expect(message(base + "snapshot_format: HDF5").contains("HDF5"))
        #expect(message(base + "regularization_type: \"L3\"").contains("L3"))
        #expect(message(base + "type: \"adam\"") == "")   // type names are matched without case
        #expect(try TrainingSupport.config(base).method == .sgd)
        #expect(try TrainingSupport.config(base + "solver_type: ADADELTA").method == .adaDelta)
    }

    @Test func trainingErrors() throws {
        // No loss at all.
        let noLoss = """
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 4 dim: 3 } } }
        layer { name: "fc" type: "TestLinear" bottom: "x" top: "y" }
        """
        expectError("has no loss") {
            _ = try Solver(config: try TrainingSupport.config("base_lr: 0.1 lr_policy: \"fixed\""),
                           trainGraph: try TrainingSupport.graph(noLoss), registry: try TrainingSupport.registry())
        }
        // Input layers without a feeder.
        let s = try Solver(config: try TrainingSupport.config("base_lr: 0.1 lr_policy: \"fixed\""),
                           trainGraph: try TrainingSupport.graph(Self.regressionNet), registry: try TrainingSupport.registry())
        s.log = { _ in }
        do { try s.step(1); Issue.record("must need a feeder") } catch { #expect("\(error)".contains("Input")) }
        // Divergence stops training with advice.
        do {
            _ = try train(Self.quadraticNet(), "type: \"SGD\" base_lr: 1e20 lr_policy: \"fixed\"", steps: 5)
            Issue.record("a diverging loss must stop training")
        } catch {
            #expect("\(error)".contains("diverged"))
        }
        // test_iter count must match the test nets.
        expectError("test_iter", "gives 2 value(s) for 1 test net(s)") {
            _ = try Solver(config: try TrainingSupport.config("base_lr: 0.1 lr_policy: \"fixed\" test_iter: 1 test_iter: 2 test_interval: 5"),
                           trainGraph: try TrainingSupport.graph(Self.quadraticNet()), testGraphs: [try TrainingSupport.graph(Self.quadraticNet())],
                           registry: try TrainingSupport.registry())
        }
    }
}
