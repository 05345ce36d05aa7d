import Foundation
import Testing
import CaffeImport
import GraphIR
import Layers
import Runtime
import TestSupport

/// Adversarial training (AdversarialTrainer, `train --discriminator`): the
/// balancing rule, the solver's pieces, the outside gradient on the
/// generator's image, a tiny generator and discriminator whose losses move
/// the right way, and an exact resume.
struct AdversarialTrainingTests {
    // MARK: - The balancing rule

    @Test func balanceRuleFollowsDeepSiM() throws {
        var b = AdversarialBalance()
        // r = (real + generated) / generated-as-real.
        #expect(b.update(real: 0.3, fake: 0.3, fakeForGenerator: 1) == 0.6)
        #expect(b.trainDiscriminator && b.trainGenerator)
        b.update(real: 0.02, fake: 0.03, fakeForGenerator: 1)          // r = 0.05 < 0.1: D far ahead
        #expect(!b.trainDiscriminator && b.trainGenerator)
        b.update(real: 0.1, fake: 0.1, fakeForGenerator: 1)            // 0.2: not yet above 0.5
        #expect(!b.trainDiscriminator && b.trainGenerator)
        b.update(real: 0.4, fake: 0.4, fakeForGenerator: 1)            // 0.8 > 0.5: both train
        #expect(b.trainDiscriminator && b.trainGenerator)
        b.update(real: 6, fake: 6, fakeForGenerator: 1)                // 12 > 10: G far ahead
        #expect(b.trainDiscriminator && !b.trainGenerator)
        b.update(real: 2, fake: 2, fakeForGenerator: 1)                // 4: G stays paused
        #expect(b.trainDiscriminator && !b.trainGenerator)
        b.update(real: 0.01, fake: 0.01, fakeForGenerator: 1)          // D far ahead again: G trains, D pauses
        #expect(!b.trainDiscriminator && b.trainGenerator)
        b.update(real: 0.1, fake: 0.1, fakeForGenerator: 0)            // r = inf: D resumes, G pauses
        #expect(b.trainDiscriminator && !b.trainGenerator)

        var off = try AdversarialBalance(parsing: "off")
        for (r, f, g) in [(0.0, 0.0, 1.0), (10.0, 10.0, 0.1), (0.5, 0.5, 1.0)] as [(Float, Float, Float)] {
            off.update(real: r, fake: f, fakeForGenerator: g)
            #expect(off.trainDiscriminator && off.trainGenerator)
        }
        let custom = try AdversarialBalance(parsing: "0.2:1:5")
        #expect(custom.pauseDiscriminatorBelow == 0.2 && custom.resumeDiscriminatorAbove == 1 && custom.pauseGeneratorAbove == 5)
        for bad in ["0.1:0.5", "a:b:c", "0.5:0.1:10", "0.1:0.5:0.5", "-1:0.5:10"] {
            expectError("LOW:RESUME:HIGH") { _ = try AdversarialBalance(parsing: bad) }
        }
    }

    // MARK: - The solver in pieces

    /// step(n) is built from the public pieces; driving them by hand gives
    /// the same weights bit for bit.
    @Test func piecesGiveTheSameWeightsAsStep() throws {
        let net = """
            layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 4 dim: 3 } } }
            layer { name: "t" type: "Input" top: "t" input_param { shape { dim: 4 dim: 2 } } }
            layer { name: "ip" type: "TestLinear" bottom: "x" top: "y" linear_param { num_output: 2 weight_filler { type: "gaussian" std: 0.3 } } }
            layer { name: "loss" type: "TestSquareLoss" bottom: "y" bottom: "t" top: "loss" }
            """
        let solverText = "base_lr: 0.05 momentum: 0.9 momentum2: 0.999 lr_policy: \"step\" gamma: 0.5 stepsize: 7 iter_size: 2 type: \"Adam\" display: 0"
        func make() throws -> Solver {
            let s = try Solver(config: try TrainingSupport.config(solverText), trainGraph: try TrainingSupport.graph(net),
                               registry: try TrainingSupport.registry(), seed: 1)
            s.log = { _ in }
            s.feeder = TrainingSupport.regressionFeeder(iterSize: 2)
            return s
        }
        let whole = try make()
        try whole.step(20)
        let pieces = try make()
        pieces.startRun()
        for _ in 0..<20 {
            #expect(try pieces.beginIteration())
            var loss: Float = 0
            for pass in 0..<2 {
                loss += try pieces.forwardPass(pass: pass)
                try pieces.backwardPass()
            }
            #expect(try pieces.endIteration(loss: loss / 2) == false)
        }
        #expect(pieces.iter == 20 && whole.iter == 20)
        for (a, b) in zip(whole.learnable, pieces.learnable) { #expect(a.tensor.array == b.tensor.array) }
        for (a, b) in zip(whole.history, pieces.history) { #expect(a.array == b.array) }
        #expect(whole.smoothedLoss == pieces.smoothedLoss)
    }

    // MARK: - The outside gradient

    static let generatorLayers = """
        layer { name: "genfc" type: "InnerProduct" bottom: "code" top: "genfc"
                inner_product_param { num_output: 16 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.1 } } }
        layer { name: "gen" type: "Sigmoid" bottom: "genfc" top: "gen" }
        """

    static let discriminatorLayers = """
        layer { name: "dfc1" type: "InnerProduct" bottom: "data" top: "dfc1" PARAMS
                inner_product_param { num_output: 8 weight_filler { type: "gaussian" std: 0.5 } } }
        layer { name: "drelu" type: "ReLU" bottom: "dfc1" top: "dfc1" relu_param { negative_slope: 0.2 } }
        layer { name: "dfc2" type: "InnerProduct" bottom: "dfc1" top: "dfc2" PARAMS
                inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }
        layer { name: "dloss" type: "SoftmaxWithLoss" bottom: "dfc2" bottom: "label" top: "dloss" LOSSWEIGHT }
        """

    /// G's parameter gradients with D's input gradient seeded on its image
    /// equal those of one net holding G and a frozen D, within 1e-5.
    @Test func outsideGradientEqualsOneCombinedNet() throws {
        let registry = try builtinRegistry()
        let weight: Float = 3
        let inputs = """
            layer { name: "code" type: "Input" top: "code" input_param { shape { dim: 5 dim: 6 } } }
            layer { name: "real" type: "Input" top: "real" input_param { shape { dim: 5 dim: 16 } } }
            """
        let gNet = inputs + Self.generatorLayers + """
            layer { name: "image_loss" type: "EuclideanLoss" bottom: "gen" bottom: "real" top: "image_loss" }
            """
        let dNet = """
            layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 5 dim: 16 } } }
            layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 5 } } }
            """ + Self.discriminatorLayers.replacingOccurrences(of: "PARAMS", with: "").replacingOccurrences(of: "LOSSWEIGHT", with: "")
        let combined = inputs + """
            layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 5 } } }
            """ + Self.generatorLayers + """
            layer { name: "image_loss" type: "EuclideanLoss" bottom: "gen" bottom: "real" top: "image_loss" }
            """ + Self.discriminatorLayers
            .replacingOccurrences(of: "bottom: \"data\"", with: "bottom: \"gen\"")
            .replacingOccurrences(of: "PARAMS", with: "param { lr_mult: 0 } param { lr_mult: 0 }")
            .replacingOccurrences(of: "LOSSWEIGHT", with: "loss_weight: \(weight)")
        let config = try TrainingSupport.config("base_lr: 0.1 lr_policy: \"fixed\" display: 0")
        let code = randomTensor([5, 6], seed: 1), real = randomTensor([5, 16], seed: 2, offset: 0.5)
        let ones = Tensor(shape: [5], repeating: 1)

        let g = try Solver(config: config, trainGraph: try TrainingSupport.graph(gNet), registry: registry,
                           seed: 7, externalSeeds: ["gen"])
        let d = try Net(graph: try TrainingSupport.graph(dNet), registry: registry, phase: .train, seed: 8)
        g.net.zeroParamGrads()
        _ = try g.forwardPass(feeds: ["code": code, "real": real])
        let image = try #require(try g.net.blob("gen")).copy()
        let dLoss = try d.resolve("dloss"), dData = try d.resolve("data")
        try d.forward(["data": image, "label": ones])
        let toImage = try #require(try d.backward(seeds: [dLoss: Tensor(shape: [], repeating: weight)], gradientsFor: [dData])[dData])
        try g.backwardPass(external: [try g.net.resolve("gen"): toImage])

        let c = try Solver(config: config, trainGraph: try TrainingSupport.graph(combined), registry: registry, seed: 7)
        // Same D weights as the separate net.
        for name in ["dfc1", "dfc2"] {
            let i = try #require(c.net.graph.nodes.firstIndex { $0.name == name })
            let j = try #require(d.graph.nodes.firstIndex { $0.name == name })
            for (a, b) in zip(c.net.layers[i].parameters, d.layers[j].parameters) { a.copy(from: b) }
        }
        for name in ["genfc"] {
            let i = try #require(c.net.graph.nodes.firstIndex { $0.name == name })
            let j = try #require(g.net.graph.nodes.firstIndex { $0.name == name })
            for (a, b) in zip(c.net.layers[i].parameters, g.net.layers[j].parameters) { a.copy(from: b) }
        }
        c.net.zeroParamGrads()
        _ = try c.forwardPass(feeds: ["code": code, "real": real, "label": ones])
        try c.backwardPass()
        let gi = try #require(g.net.graph.nodes.firstIndex { $0.name == "genfc" })
        let ci = try #require(c.net.graph.nodes.firstIndex { $0.name == "genfc" })
        for k in 0..<2 {
            expectClose(g.net.paramGrads[gi][k], c.net.paramGrads[ci][k].array, "genfc gradient \(k)", tol: 1e-5)
        }
        // Without the outside gradient the generator's gradients differ (the seed matters).
        let plain = try Solver(config: config, trainGraph: try TrainingSupport.graph(gNet), registry: registry, seed: 7)
        plain.net.zeroParamGrads()
        _ = try plain.forwardPass(feeds: ["code": code, "real": real])
        try plain.backwardPass()
        #expect(plain.net.paramGrads[gi][0].array != g.net.paramGrads[gi][0].array)
        // A seed on a blob the solver was not told about is refused.
        expectError("outside gradient") { try plain.backwardPass(external: [try plain.net.resolve("gen"): toImage]) }
        expectError("has no blob 'nope'") {
            _ = try Solver(config: config, trainGraph: try TrainingSupport.graph(gNet), registry: registry, externalSeeds: ["nope"])
        }
    }

    // MARK: - A tiny adversarial pair

    /// 64 grey 4x4 images with a bright left half (the "real" data).
    static func writeImages(_ dir: String) throws {
        var rng = SplitMix64(seed: 11)
        var pixels: [UInt8] = []
        for _ in 0..<64 {
            for k in 0..<16 {
                let bright = k % 4 < 2
                pixels.append(UInt8(bright ? 180 + Int(rng.next() % 60) : Int(rng.next() % 60)))
            }
        }
        try Data(DataLayerTests.idx(dims: [64, 4, 4], body: pixels)).write(to: URL(fileURLWithPath: dir + "/images"))
    }

    /// G: the image through a frozen random code layer, two fully connected
    /// layers, a sigmoid; its own loss the image error times `imageWeight`.
    static func generatorNet(_ dir: String, imageWeight: Float = 1) -> String {
        """
        name: "TinyG"
        layer { name: "data" type: "IDXData" top: "data"
                idx_data_param { source: "\(dir)/images" batch_size: 8 shuffle: true scale: 0.00390625 } }
        layer { name: "enc" type: "InnerProduct" bottom: "data" top: "code" param { lr_mult: 0 } param { lr_mult: 0 }
                inner_product_param { num_output: 6 weight_filler { type: "gaussian" std: 0.3 } } }
        layer { name: "gfc1" type: "InnerProduct" bottom: "code" top: "gfc1"
                inner_product_param { num_output: 16 weight_filler { type: "gaussian" std: 0.3 } } }
        layer { name: "grelu" type: "ReLU" bottom: "gfc1" top: "gfc1" relu_param { negative_slope: 0.2 } }
        layer { name: "gfc2" type: "InnerProduct" bottom: "gfc1" top: "gfc2"
                inner_product_param { num_output: 16 weight_filler { type: "gaussian" std: 0.3 } } }
        layer { name: "gsig" type: "Sigmoid" bottom: "gfc2" top: "gen" }
        layer { name: "image" type: "Reshape" bottom: "gen" top: "image" reshape_param { shape { dim: 0 dim: 1 dim: 4 dim: 4 } } }
        \(imageWeight == 0 ? "layer { name: \"silence\" type: \"Silence\" bottom: \"image\" }" : "layer { name: \"image_loss\" type: \"EuclideanLoss\" bottom: \"image\" bottom: \"data\" top: \"image_loss\" loss_weight: \(imageWeight) }")
        """
    }

    static let discriminatorNet = """
        name: "TinyD"
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 8 dim: 1 dim: 4 dim: 4 } } }
        layer { name: "label" type: "Input" top: "label" input_param { shape { dim: 8 } } }
        layer { name: "dfc1" type: "InnerProduct" bottom: "data" top: "dfc1"
                inner_product_param { num_output: 16 weight_filler { type: "gaussian" std: 0.3 } } }
        layer { name: "drelu" type: "ReLU" bottom: "dfc1" top: "dfc1" relu_param { negative_slope: 0.2 } }
        layer { name: "ddrop" type: "Dropout" bottom: "dfc1" top: "dfc1" dropout_param { dropout_ratio: 0.25 } }
        layer { name: "dfc2" type: "InnerProduct" bottom: "dfc1" top: "dfc2"
                inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.3 } } }
        layer { name: "dloss" type: "SoftmaxWithLoss" bottom: "dfc2" bottom: "label" top: "dloss" }
        """

    static func solverText(lr: Double, prefix: String, seed: Int, maxIter: Int = 100, snapshot: Int = 0, display: Int = 0) -> String {
        "base_lr: \(lr) momentum: 0.5 momentum2: 0.999 lr_policy: \"fixed\" type: \"Adam\" display: \(display) random_seed: \(seed) max_iter: \(maxIter) snapshot: \(snapshot) snapshot_prefix: \"\(prefix)\" snapshot_after_train: false"
    }

    func pair(_ dir: String, gLR: Double, dLR: Double, weight: Float, imageWeight: Float = 1, balance: String = "off",
              maxIter: Int = 100, snapshot: Int = 0) throws -> AdversarialTrainer {
        let registry = try builtinRegistry()
        let g = try Solver(config: try TrainingSupport.config(Self.solverText(lr: gLR, prefix: dir + "/g", seed: 1, maxIter: maxIter, snapshot: snapshot)),
                           trainGraph: try TrainingSupport.graph(Self.generatorNet(dir, imageWeight: imageWeight)),
                           registry: registry, externalSeeds: ["image"])
        let d = try Solver(config: try TrainingSupport.config(Self.solverText(lr: dLR, prefix: dir + "/d", seed: 2, maxIter: maxIter, snapshot: snapshot)),
                           trainGraph: try TrainingSupport.graph(Self.discriminatorNet), registry: registry)
        for s in [g, d] { s.log = { _ in }; s.snapshotWriter = TrainingSupport.writer() }
        let t = try AdversarialTrainer(generator: g, discriminator: d, generated: "image", real: "data",
                                       adversarialWeight: weight, balance: try AdversarialBalance(parsing: balance))
        t.log = { _ in }
        return t
    }

    func mean(_ xs: ArraySlice<Float>) -> Float { xs.reduce(0, +) / Float(xs.count) }

    /// With G fixed, D learns to tell its images from the real ones: its
    /// loss falls well below log 2 (chance). With D fixed, G learns to fool
    /// it: its adversarial loss falls.
    @Test func lossesMoveTheRightWay() throws {
        let dir = try temporaryDirectory("adv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeImages(dir)

        let learnD = try pair(dir, gLR: 0, dLR: 0.002, weight: 1, maxIter: 200)
        var dLosses: [Float] = []
        learnD.onRound = { dLosses.append(($0.real + $0.fake) / 2) }
        try learnD.train()
        #expect(learnD.generator.iter == 200 && learnD.discriminator.iter == 200)
        #expect(mean(dLosses.prefix(5)) > 0.55, "D's first losses: \(dLosses.prefix(5))")
        #expect(mean(dLosses.suffix(20)) < 0.3, "D's loss: \(mean(dLosses.prefix(5))) -> \(mean(dLosses.suffix(20)))")

        let learnG = try pair(dir, gLR: 0.01, dLR: 0, weight: 1, imageWeight: 0, maxIter: 200)
        // Start D from the one that learned above, so there is something to fool.
        for (a, b) in zip(learnG.discriminator.learnable, learnD.discriminator.learnable) { a.tensor.copy(from: b.tensor) }
        var gLosses: [Float] = []
        learnG.onRound = { gLosses.append($0.fakeForGenerator) }
        try learnG.train()
        #expect(mean(gLosses.suffix(20)) < 0.5 * mean(gLosses.prefix(20)),
                "G's adversarial loss: \(mean(gLosses.prefix(20))) -> \(mean(gLosses.suffix(20)))")
    }

    /// The rule pauses D when it is far ahead: a D that learns fast against
    /// a G that cannot move is paused, and its iteration count stops.
    @Test func ruleTogglesAndPausedNetsDoNotAdvance() throws {
        let dir = try temporaryDirectory("advrule")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeImages(dir)
        let t = try pair(dir, gLR: 0, dLR: 0.05, weight: 1, balance: "0.1:0.5:10", maxIter: 300)
        var paused = 0
        t.onRound = { if !$0.trainedDiscriminator { paused += 1 } }
        try t.train()
        #expect(paused > 0)
        #expect(t.discriminator.iter == 300 - paused)
        #expect(t.generator.iter == 300)
    }

    /// 10 rounds, a snapshot, 10 more equal 20 uninterrupted rounds bit for
    /// bit (weights, histories, flags), with shuffled data and dropout.
    @Test func resumeEqualsAnUninterruptedRun() throws {
        let dir = try temporaryDirectory("advresume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeImages(dir)
        let whole = try pair(dir, gLR: 0.01, dLR: 0.01, weight: 2, balance: "0.1:0.5:10", maxIter: 20, snapshot: 10)
        var saved: AdversarialState?
        whole.writeState = { state, _ in if state.round == 10 { saved = state } }
        try whole.train()
        let state = try #require(saved)
        #expect(state.generatorState == dir + "/g_iter_10.solverstate")

        let resumed = try pair(dir, gLR: 0.01, dLR: 0.01, weight: 2, balance: "0.1:0.5:10", maxIter: 20, snapshot: 10)
        for (solver, path) in [(resumed.generator, state.generatorState), (resumed.discriminator, state.discriminatorState)] {
            let s = try CaffeModel.readSolverState(path)
            var weights = solver.net.exportWeights()
            try CaffeModel.attachWeights(&weights, from: path.replacingOccurrences(of: ".solverstate", with: ".caffemodel"))
            try solver.restore(s, weights: weights, file: path)
        }
        try resumed.restore(state, file: "state")
        try resumed.train()
        #expect(resumed.round == 20)
        for (a, b) in [(whole.generator, resumed.generator), (whole.discriminator, resumed.discriminator)] {
            #expect(a.iter == b.iter)
            for (x, y) in zip(a.learnable, b.learnable) { #expect(x.tensor.array == y.tensor.array) }
            for (x, y) in zip(a.history, b.history) { #expect(x.array == y.array) }
            #expect(a.net.runState() == b.net.runState())
        }
        #expect(whole.balance == resumed.balance)

        // Without the run state, the data order restarts and the result differs.
        let naive = try pair(dir, gLR: 0.01, dLR: 0.01, weight: 2, balance: "0.1:0.5:10", maxIter: 20, snapshot: 10)
        for (solver, path) in [(naive.generator, state.generatorState), (naive.discriminator, state.discriminatorState)] {
            var weights = solver.net.exportWeights()
            try CaffeModel.attachWeights(&weights, from: path.replacingOccurrences(of: ".solverstate", with: ".caffemodel"))
            try solver.restore(try CaffeModel.readSolverState(path), weights: weights, file: path)
        }
        var partial = state
        partial.generatorRun = naive.generator.net.runState()
        partial.discriminatorRun = naive.discriminator.net.runState()
        try naive.restore(partial, file: "state")
        try naive.train()
        #expect(naive.generator.learnable.map(\.tensor.array) != whole.generator.learnable.map(\.tensor.array))
    }

    /// A saved data order that does not fit the data set is refused.
    @Test func foreignRunStateIsRefused() throws {
        let dir = try temporaryDirectory("advforeign")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeImages(dir)
        let t = try pair(dir, gLR: 0.01, dLR: 0.01, weight: 1, maxIter: 2)
        try t.train()
        var run = t.generator.net.runState()
        run.layers["data"] = Array((run.layers["data"] ?? []).dropLast())
        expectError("layer 'data'", "does not fit a data source of 64 items") { try t.generator.net.restoreRunState(run, file: "x.json") }
        run.layers = [:]
        expectError("holds no state for data layer 'data'") { try t.generator.net.restoreRunState(run, file: "x.json") }
    }

    // MARK: - The command line

    @Test func trainCommandRunsResumesAndRefuses() throws {
        let dir = try temporaryDirectory("advcli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeImages(dir)
        try Self.generatorNet(dir).write(toFile: dir + "/g.prototxt", atomically: true, encoding: .utf8)
        try Self.discriminatorNet.write(toFile: dir + "/d.prototxt", atomically: true, encoding: .utf8)
        try "net: \"g.prototxt\" \(Self.solverText(lr: 0.01, prefix: "snap/g", seed: 1, maxIter: 20, snapshot: 10, display: 5))"
            .write(toFile: dir + "/g_solver.prototxt", atomically: true, encoding: .utf8)
        try "net: \"d.prototxt\" \(Self.solverText(lr: 0.01, prefix: "snap/d", seed: 2, maxIter: 20, snapshot: 10))"
            .write(toFile: dir + "/d_solver.prototxt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/snap", withIntermediateDirectories: true)
        let args = ["train", "g_solver.prototxt", "--discriminator", "d_solver.prototxt", "--generated", "image",
                    "--adversarial-weight", "2", "--threads", "1"]
        let r = try runCLI(args, cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("Round 5 (") && r.stderr.contains("image_loss = ") && r.stderr.contains("adversarial = "))
        #expect(r.stderr.contains("discriminator iteration 6") && r.stderr.contains("real = ") && r.stderr.contains("ratio = "))
        let first = try Data(contentsOf: URL(fileURLWithPath: dir + "/snap/g_iter_20.caffemodel"))
        let firstD = try Data(contentsOf: URL(fileURLWithPath: dir + "/snap/d_iter_20.caffemodel"))
        #expect(r.stdout.contains("\"round\":20"))

        let again = try runCLI(["train", "g_solver.prototxt", "--discriminator", "d_solver.prototxt", "--generated", "image",
                                "--resume", "snap/g_round_10.adversarial.json", "--threads", "1"], cwd: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("Resuming from snap/g_round_10.adversarial.json at round 10"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/snap/g_iter_20.caffemodel")) == first)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/snap/d_iter_20.caffemodel")) == firstD)

        func fails(_ extra: [String], _ want: String) throws {
            let f = try runCLI(["train", "g_solver.prototxt", "--discriminator", "d_solver.prototxt"] + extra, cwd: dir)
            #expect(f.status == 1 && f.stderr.contains(want), "\(extra): \(f.stderr)")
        }
        try fails(["--generated", "nope"], "no blob 'nope'")
        try fails(["--generated", "image", "--balance", "1:2"], "LOW:RESUME:HIGH")
        try fails(["--generated", "image", "--resume", "snap/g_iter_10.solverstate"], "adversarial.json")
        try fails(["--generated", "gen"], "'gen' is")   // a 16-vector, not an image like 'data'
        try Self.discriminatorNet.replacingOccurrences(of: "top: \"label\" input_param", with: "top: \"tag\" input_param")
            .replacingOccurrences(of: "bottom: \"label\"", with: "bottom: \"tag\"")
            .write(toFile: dir + "/d.prototxt", atomically: true, encoding: .utf8)
        try fails(["--generated", "image"], "exactly two Input blobs")
    }
}
