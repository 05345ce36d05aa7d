import Foundation
import GraphIR

/// What a feeder must provide: tensors for the Input layers of the train net
/// (one call per forward pass, `pass` = 0..<iter_size) or of test net
/// `testNet` (`pass` = 0..<test_iter). Nets whose data come from data layers
/// (IDXData, ImageData) need no feeder.
public struct FeedRequest: Sendable {
    public var phase: Phase
    public var testNet: Int
    /// The solver iteration (updates applied so far).
    public var iteration: Int
    public var pass: Int
    /// Input blob names and their declared shapes.
    public var inputs: [String: Shape]

    public init(phase: Phase, testNet: Int, iteration: Int, pass: Int, inputs: [String: Shape]) {
        self.phase = phase; self.testNet = testNet; self.iteration = iteration; self.pass = pass; self.inputs = inputs
    }
}

/// Where snapshots go. The solver names the files (`<prefix>_iter_N.caffemodel`
/// and `.solverstate`, as Caffe does); the caller writes them, since Runtime
/// knows no file format.
public struct SnapshotWriter {
    public var writeWeights: (Graph, String) throws -> Void
    public var writeState: (SolverState, String) throws -> Void
    public init(writeWeights: @escaping (Graph, String) throws -> Void,
                writeState: @escaping (SolverState, String) throws -> Void) {
        self.writeWeights = writeWeights; self.writeState = writeState
    }
}

/// One learnable blob the solver updates: shared blobs appear once, with the
/// `param` spec of the first layer that holds them (Caffe's owner).
public struct LearnableBlob {
    public let layer: String
    public let node: Int
    public let index: Int
    public let tensor: Tensor
    public let lrMult: Float
    public let decayMult: Float
}

/// What happened in one iteration, for callers that record training.
public struct IterationRecord: Sendable {
    /// The iteration whose update was just applied (0-based, before ++iter).
    public var iteration: Int
    /// Loss of this iteration: the mean over its iter_size passes of
    /// sum(loss_weight * output) (what Caffe reports before smoothing).
    public var loss: Float
    public var smoothedLoss: Float
    public var learningRate: Float
}

/// One mean test output (an element of a test net's output blob).
public struct TestScore: Sendable {
    public var name: String
    public var value: Float
    public var lossWeight: Float
}

/// Caffe's solver: trains `net` by gradient descent with Caffe's schedule,
/// update rules, testing, snapshots and resumption (`Solver::Step`, `Solve`,
/// `SGDSolver::ApplyUpdate`).
///
/// One iteration: zero the parameter gradients; test if it is time; run
/// iter_size forward/backward passes, each seeding d(loss)/d(output) =
/// loss_weight on every loss output, so gradients add up; loss = the mean of
/// the passes' sum(loss_weight * output); then the update (see `applyUpdate`).
///
///     let solver = try Solver(config: SolverConfig(solverTree), trainGraph: train,
///                             testGraphs: [test], registry: registry)
///     try solver.solve()
public final class Solver {
    public let config: SolverConfig
    public let net: Net
    public let testNets: [Net]
    /// The seed of fillers, dropout and data shuffling (random_seed, or a
    /// fresh one when it is negative).
    public let seed: UInt64
    public private(set) var iter = 0
    public private(set) var currentStep = 0
    /// History blobs: learnable.count of them, times 2 for AdaDelta and Adam.
    public private(set) var history: [Tensor]
    public let learnable: [LearnableBlob]

    /// Supplies the Input layers' tensors; required when a net has Input layers.
    public var feeder: ((FeedRequest) throws -> [String: Tensor])?
    /// Progress and test results (stderr by default).
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    public var snapshotWriter: SnapshotWriter?
    /// Called after each update.
    public var onIteration: ((IterationRecord) -> Void)?
    public private(set) var smoothedLoss: Float = 0
    /// The scores of the last test of each test net.
    public private(set) var lastTestScores: [[TestScore]]

    private var losses: [Float] = []
    private let trainPlan: BackwardPlan
    /// Plans of `inputGradient`, by input.
    private var inputPlans: [ValueID: BackwardPlan] = [:]
    /// Blobs that take a gradient from outside the net in `backwardPass`
    /// (a generator's image, seeded by a discriminator).
    public let externalSeedValues: [ValueID]
    private let trainLoss: [(value: ValueID, weight: Float)]
    private let testPlans: [BackwardPlan]
    private let testLoss: [[(value: ValueID, weight: Float)]]
    private let stop = StopRequest()
    private var requestedEarlyExit = false
    private var runStartIter = 0
    /// Whether `endIteration` snapshots every `snapshot` iterations (a loop
    /// that drives several solvers snapshots them together instead).
    public var automaticSnapshots = true
    /// Whether `endIteration` prints Caffe's progress lines at display.
    public var displaysProgress = true
    private var timerStart = DispatchTime.now().uptimeNanoseconds
    private var itersAtTimer = 0

    /// Builds the training net (phase TRAIN) and the test nets (phase TEST,
    /// sharing the training net's parameters by layer name). Graph weights
    /// are kept; missing ones come from the fillers, seeded by random_seed.
    /// When weights files were attached, layers they leave without weights are
    /// refused (`Net`'s rule) unless `allowMissingWeights` (fine-tuning, where
    /// new layers start from their fillers). Every net computes on `threads` threads.
    public init(config: SolverConfig, trainGraph: Graph, testGraphs: [Graph] = [],
                registry: LayerRegistry, seed: UInt64? = nil, allowMissingWeights: Bool = false,
                externalSeeds: [String] = [], threads: Int = defaultComputeThreads) throws {
        self.config = config
        guard config.testIter.count == testGraphs.count else {
            throw SolverError.invalid(field: "test_iter", location: nil,
                "gives \(config.testIter.count) value(s) for \(testGraphs.count) test net(s); give one test_iter per test net")
        }
        let s = seed ?? (config.randomSeed >= 0 ? UInt64(config.randomSeed) : UInt64.random(in: 0...UInt64(Int64.max)))
        self.seed = s
        net = try Net(graph: trainGraph, registry: registry, phase: .train, seed: s,
                      allowMissingWeights: allowMissingWeights, threads: threads)
        var tests: [Net] = []
        for (k, g) in testGraphs.enumerated() {
            // A test net's parameters come from the training net (below), not from the files.
            let t = try Net(graph: g, registry: registry, phase: .test, seed: s &+ UInt64(k + 1),
                            allowMissingWeights: true, threads: threads)
            try t.shareParameters(from: net)
            tests.append(t)
        }
        testNets = tests

        trainLoss = try net.lossTerms()
        guard !trainLoss.isEmpty || !externalSeeds.isEmpty else {
            throw SolverError.training("the training net '\(trainGraph.name)' has no loss: add a loss layer (SoftmaxWithLoss, EuclideanLoss, ...) or give a top a loss_weight")
        }
        // Every activation is kept through the pass, as Caffe keeps its
        // blobs: the executor's early release can free a value that a later
        // backward step still hands to its layer (an in-place ReLU's output
        // after the next layer's backward has run).
        let trainNet = net
        externalSeedValues = try externalSeeds.map { name in
            do { return try trainNet.resolve(name) } catch {
                throw SolverError.training("the training net '\(trainGraph.name)' has no blob '\(name)' to take an outside gradient (blobs: \(trainGraph.values.map(\.blob).suffix(12).joined(separator: ", "))...); name a top of the net")
            }
        }
        trainPlan = try net.plan(seeds: trainLoss.map(\.value) + externalSeedValues, gradientsFor: [], paramGrads: true,
                                 keep: trainGraph.values.indices.map(ValueID.init))
        var plans: [BackwardPlan] = [], tl: [[(value: ValueID, weight: Float)]] = []
        for t in testNets {
            let terms = try t.lossTerms()
            tl.append(terms)
            plans.append(try t.plan(seeds: [], gradientsFor: [], keep: terms.map(\.value) + t.graph.outputs))
        }
        testPlans = plans
        testLoss = tl
        lastTestScores = Array(repeating: [], count: testNets.count)

        // Learnable blobs, shared ones once (by tensor identity).
        var list: [LearnableBlob] = []
        var owner: [ObjectIdentifier: Int] = [:]
        for (i, node) in trainGraph.nodes.enumerated() {
            for (j, t) in net.layers[i].parameters.enumerated() {
                let spec = net.paramSpecs[i][j]
                if let k = owner[ObjectIdentifier(t)] {
                    guard list[k].lrMult == spec.lrMult, list[k].decayMult == spec.decayMult else {
                        throw RuntimeError.layer(name: node.name, type: node.type,
                            message: "shares parameter \(j)\(spec.name.map { " ('\($0)')" } ?? "") with layer '\(list[k].layer)' but sets lr_mult \(spec.lrMult) / decay_mult \(spec.decayMult) there \(list[k].lrMult) / \(list[k].decayMult); give every sharer the same values",
                            location: node.location)
                    }
                    continue
                }
                owner[ObjectIdentifier(t)] = list.count
                list.append(LearnableBlob(layer: node.name, node: i, index: j, tensor: t,
                                          lrMult: spec.lrMult, decayMult: spec.decayMult))
            }
        }
        learnable = list
        history = (0..<config.method.historyPerBlob).flatMap { _ in
            list.map { Tensor(shape: $0.tensor.shape, repeating: 0) }
        }
    }

    // MARK: - Control

    /// Asks the loop to stop after the current iteration (or test batch);
    /// `solve` then snapshots, as Caffe does on SIGINT. Thread-safe.
    public func requestStop() { stop.set() }

    /// The learning rate of the current iteration, without changing state.
    public var learningRate: Float {
        var s = currentStep
        return config.learningRate.rate(iter: iter, currentStep: &s)
    }

    // MARK: - Training

    /// Trains to max_iter (from the current iteration, e.g. after `restore`),
    /// snapshots at the end unless snapshot_after_train is false, then runs
    /// the final display forward and test if they fall on this iteration.
    public func solve() throws {
        log("Solving \(net.graph.name.isEmpty ? "net" : net.graph.name): \(config.method.rawValue), lr policy \(config.learningRate.kind.rawValue), \(learnable.count) learnable blobs (\(learnable.reduce(0) { $0 + $1.tensor.count }) values), seed \(seed)")
        requestedEarlyExit = false
        try step(config.maxIter - iter)
        if config.snapshotAfterTrain && (config.snapshot == 0 || iter % config.snapshot != 0) {
            try snapshot()
        }
        if requestedEarlyExit {
            log("Optimization stopped early at iteration \(iter).")
            return
        }
        if config.display > 0 && iter % config.display == 0 {
            let loss = try forwardPass(pass: 0)
            updateSmoothedLoss(loss, startIter: runStartIter)
            log("Iteration \(iter), loss = \(fmt(smoothedLoss))")
        }
        if config.testInterval > 0 && iter % config.testInterval == 0 { try testAll() }
        log("Optimization Done.")
    }

    /// Runs `iters` iterations (Caffe's Solver::Step), each built from the
    /// pieces below: `beginIteration`, iter_size times `forwardPass` and
    /// `backwardPass`, then `endIteration`.
    public func step(_ iters: Int) throws {
        let stopIter = iter + max(0, iters)
        startRun()
        while iter < stopIter {
            guard try beginIteration() else { break }
            var loss: Float = 0
            for pass in 0..<config.iterSize {
                loss += try forwardPass(pass: pass)
                try backwardPass()
            }
            if try endIteration(loss: loss / Float(config.iterSize)) { break }
        }
    }

    // MARK: - One iteration in pieces (for loops that drive several solvers)

    /// Starts a run of iterations: clears the smoothed loss and the speed timer
    /// (as Caffe's Step does on entry).
    public func startRun() {
        runStartIter = iter
        losses.removeAll()
        smoothedLoss = 0
        timerStart = DispatchTime.now().uptimeNanoseconds
        itersAtTimer = iter
    }

    /// Zeroes the parameter gradients and tests when test_interval says so.
    /// Returns false when a stop was requested during the test.
    public func beginIteration() throws -> Bool {
        net.zeroParamGrads()
        if config.testInterval > 0 && iter % config.testInterval == 0 && (iter > 0 || config.testInitialization) {
            try testAll()
            if requestedEarlyExit { return false }
        }
        return true
    }

    /// One forward pass of the training net (`feeds` for its Input layers,
    /// else the feeder's); returns sum(loss_weight * output).
    public func forwardPass(pass: Int = 0, feeds: [String: Tensor]? = nil) throws -> Float {
        try net.forward(try feeds ?? self.feeds(for: net, phase: .train, testNet: 0, pass: pass), plan: trainPlan)
        return weightedLoss(net, trainLoss)
    }

    /// The backward pass after `forwardPass`: every loss output seeded with
    /// its loss_weight, plus `external` gradients on `externalSeedValues`.
    /// Parameter gradients accumulate (+=) until the next `beginIteration`.
    public func backwardPass(external: [ValueID: Tensor] = [:]) throws {
        var seeds = lossSeeds(scale: 1)
        for (v, g) in external {
            guard externalSeedValues.contains(v) else {
                throw SolverError.training("blob '\(net.graph.values[v.index].blob)' was not declared as taking an outside gradient when the solver was made")
            }
            if let s = seeds[v] {
                let sum = Tensor(shape: s.shape, repeating: 0)
                for i in 0..<s.count { sum[i] = s[i] + g[i] }
                seeds[v] = sum
            } else {
                seeds[v] = g
            }
        }
        _ = try net.backward(seeds: seeds, plan: trainPlan)
    }

    /// A forward and backward pass of the training net that leaves the
    /// parameter gradients alone (a discriminator seen from its generator):
    /// every loss output is seeded with loss_weight x `scale`. Returns the
    /// loss, sum(loss_weight * output), and the gradient of `input`.
    public func inputGradient(feeds: [String: Tensor], of input: ValueID,
                              scale: Float) throws -> (loss: Float, gradient: Tensor?) {
        let plan: BackwardPlan
        if let p = inputPlans[input] { plan = p } else {
            plan = try net.plan(seeds: trainLoss.map(\.value), gradientsFor: [input], paramGrads: false,
                                keep: net.graph.values.indices.map(ValueID.init))
            inputPlans[input] = plan
        }
        try net.forward(feeds, plan: plan)
        let loss = weightedLoss(net, trainLoss)
        return (loss, try net.backward(seeds: lossSeeds(scale: scale), plan: plan)[input])
    }

    /// d(loss)/d(output) = loss_weight x `scale` on every loss output.
    private func lossSeeds(scale: Float) -> [ValueID: Tensor] {
        var seeds: [ValueID: Tensor] = [:]
        for (v, w) in trainLoss { seeds[v] = Tensor(shape: net.shapes[v.index], repeating: w * scale) }
        return seeds
    }

    /// Ends an iteration whose passes gave mean `loss`: the smoothed loss,
    /// the progress line when display says so, the update, `onIteration`,
    /// iter += 1 and the snapshot when due. Returns true when a stop was
    /// requested (the caller ends its loop).
    public func endIteration(loss: Float) throws -> Bool {
        guard loss.isFinite else {
            throw SolverError.training("the loss is \(loss) at iteration \(iter) (learning rate \(fmt(learningRate))); training diverged: lower base_lr, or set clip_gradients")
        }
        let display = config.display > 0 && iter % config.display == 0
        updateSmoothedLoss(loss, startIter: runStartIter)
        let rate = config.learningRate.rate(iter: iter, currentStep: &currentStep)
        if display && displaysProgress { displayProgress(rate: rate) }
        applyUpdate(rate: rate)
        onIteration?(IterationRecord(iteration: iter, loss: loss, smoothedLoss: smoothedLoss, learningRate: rate))
        iter += 1
        let stopNow = stop.isSet
        if automaticSnapshots && config.snapshot > 0 && iter % config.snapshot == 0 { try snapshot() }
        if stopNow { requestedEarlyExit = true }
        return stopNow
    }

    /// Caffe's UpdateSmoothedLoss: the mean of the last average_loss losses.
    private func updateSmoothedLoss(_ loss: Float, startIter: Int) {
        let n = config.averageLoss
        if losses.count < n {
            losses.append(loss)
            let size = Float(losses.count)
            smoothedLoss = (smoothedLoss * (size - 1) + loss) / size
        } else {
            let idx = (iter - startIter) % n
            smoothedLoss += (loss - losses[idx]) / Float(n)
            losses[idx] = loss
        }
    }

    private func feeds(for net: Net, phase: Phase, testNet: Int, pass: Int) throws -> [String: Tensor] {
        guard !net.graph.inputs.isEmpty else { return [:] }
        var declared: [String: Shape] = [:]
        for v in net.graph.inputs { declared[net.graph.values[v.index].blob] = net.graph.inputShapes[v] ?? net.shapes[v.index] }
        guard let feeder else {
            let what = phase == .train ? "training net" : "test net #\(testNet)"
            throw SolverError.training("the \(what) reads Input layer blobs (\(declared.keys.sorted().joined(separator: ", "))), which nothing feeds during training; use a data layer (IDXData, ImageData) instead of Input")
        }
        return try feeder(FeedRequest(phase: phase, testNet: testNet, iteration: iter, pass: pass, inputs: declared))
    }

    /// The training net's loss outputs after the last forward pass, each as
    /// loss_weight * sum(output), by blob name (for progress lines).
    public func lastLosses() -> [(blob: String, loss: Float)] {
        trainLoss.map { term in
            (net.graph.values[term.value.index].blob, weightedLoss(net, [term]))
        }
    }

    private func weightedLoss(_ net: Net, _ terms: [(value: ValueID, weight: Float)]) -> Float {
        var loss: Float = 0
        for (v, w) in terms {
            guard let t = net.tensor(v) else { continue }
            var s: Float = 0
            for i in 0..<t.count { s += t[i] }
            loss += w * s
        }
        return loss
    }

    // MARK: - Update

    /// Caffe's SGDSolver::ApplyUpdate with the rate of this iteration:
    ///  1. blobs with lr_mult 0 get no gradient (Caffe never computes it);
    ///  2. clip: if clip_gradients >= 0 and the global norm
    ///     ||g|| = sqrt(sum over all learnable blobs of sum g^2) exceeds it,
    ///     every g *= clip_gradients / ||g|| (before normalisation, as Caffe);
    ///  3. per blob: g /= iter_size; weight decay; the type's rule; w -= g.
    private func applyUpdate(rate: Float) {
        let grads = learnable.map { net.paramGrads[$0.node][$0.index] }
        for (p, g) in zip(learnable, grads) where p.lrMult == 0 { g.zero() }
        if config.clipGradients >= 0 {
            var sumsq = 0.0
            for g in grads { sumsq += SolverUpdate.sumOfSquares(g.data, g.count) }
            let norm = Float(sumsq.squareRoot())
            if norm > config.clipGradients {
                let factor = config.clipGradients / norm
                for g in grads { SolverUpdate.scale(g.data, g.count, by: factor) }
            }
        }
        let n = learnable.count
        let correction = config.method == .adam
            ? SolverUpdate.adamCorrection(iter: iter, beta1: config.momentum, beta2: config.momentum2) : 1
        for (k, p) in learnable.enumerated() {
            let g = grads[k].data, w = p.tensor.data, count = p.tensor.count
            SolverUpdate.normalize(g, count, iterSize: config.iterSize)
            SolverUpdate.regularize(g, w, count, decay: config.weightDecay * p.decayMult, type: config.regularization)
            let lr = rate * p.lrMult
            let h = history[k].data
            switch config.method {
            case .sgd: SolverUpdate.sgd(g, h, count, lr: lr, momentum: config.momentum)
            case .nesterov: SolverUpdate.nesterov(g, h, count, lr: lr, momentum: config.momentum)
            case .adaGrad: SolverUpdate.adaGrad(g, h, count, lr: lr, delta: config.delta)
            case .rmsProp: SolverUpdate.rmsProp(g, h, count, lr: lr, rmsDecay: config.rmsDecay, delta: config.delta)
            case .adaDelta:
                SolverUpdate.adaDelta(g, h, history[n + k].data, count, lr: lr, momentum: config.momentum, delta: config.delta)
            case .adam:
                SolverUpdate.adam(g, h, history[n + k].data, count, lr: lr, beta1: config.momentum,
                                  beta2: config.momentum2, eps: config.delta, correction: correction)
            }
            SolverUpdate.apply(w, g, count)
        }
    }

    // MARK: - Testing

    /// Tests every test net (Caffe's TestAll); results in `lastTestScores`.
    public func testAll() throws {
        for k in testNets.indices where !requestedEarlyExit {
            lastTestScores[k] = try test(k)
        }
    }

    /// Runs test_iter forward passes of test net `k` and returns the mean of
    /// every element of every output blob.
    @discardableResult
    public func test(_ k: Int) throws -> [TestScore] {
        log("Iteration \(iter), Testing net (#\(k))")
        let t = testNets[k], outputs = t.graph.outputs
        var sums: [Double] = [], names: [String] = [], weights: [Float] = []
        var loss: Double = 0
        let lossWeight = Dictionary(testLoss[k].map { ($0.value, $0.weight) }, uniquingKeysWith: +)
        let n = config.testIter[k]
        for i in 0..<n {
            if stop.isSet {
                requestedEarlyExit = true
                log("Test interrupted.")
                return []
            }
            try t.forward(try feeds(for: t, phase: .test, testNet: k, pass: i), plan: testPlans[k])
            if config.testComputeLoss { loss += Double(weightedLoss(t, testLoss[k])) }
            var idx = 0
            for v in outputs {
                guard let out = t.tensor(v) else { continue }
                for e in 0..<out.count {
                    if i == 0 {
                        sums.append(Double(out[e]))
                        names.append(t.graph.values[v.index].blob)
                        weights.append(lossWeight[v] ?? 0)
                    } else if idx < sums.count {
                        sums[idx] += Double(out[e])
                    }
                    idx += 1
                }
            }
        }
        if config.testComputeLoss && n > 0 { log("Test loss: \(fmt(Float(loss / Double(n))))") }
        var scores: [TestScore] = []
        for (i, s) in sums.enumerated() {
            let mean = Float(s / Double(max(1, n)))
            scores.append(TestScore(name: names[i], value: mean, lossWeight: weights[i]))
            let lw = weights[i] != 0 ? " (* \(fmt(weights[i])) = \(fmt(weights[i] * mean)) loss)" : ""
            log("    Test net output #\(i): \(names[i]) = \(fmt(mean))\(lw)")
        }
        return scores
    }

    // MARK: - Progress

    private func displayProgress(rate: Float) {
        let now = DispatchTime.now().uptimeNanoseconds
        let seconds = Double(now - timerStart) / 1e9
        let done = iter - itersAtTimer
        var speed = ""
        if done > 0 && seconds > 0 {
            let perSecond = Double(done) / seconds
            let eta = Double(config.maxIter - iter) / perSecond
            speed = String(format: " (%.2f it/s, ETA %@)", perSecond, Self.duration(eta))
        }
        timerStart = now
        itersAtTimer = iter
        log("Iteration \(iter)\(speed), loss = \(fmt(smoothedLoss)), lr = \(fmt(rate))")
        var index = 0
        let weight = Dictionary(trainLoss.map { ($0.value, $0.weight) }, uniquingKeysWith: +)
        for v in net.graph.outputs {
            guard let t = net.tensor(v) else { continue }
            let name = net.graph.values[v.index].blob, w = weight[v] ?? 0
            for e in 0..<t.count {
                let lw = w != 0 ? " (* \(fmt(w)) = \(fmt(w * t[e])) loss)" : ""
                log("    Train net output #\(index): \(name) = \(fmt(t[e]))\(lw)")
                index += 1
            }
        }
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "?" }
        let t = Int(s.rounded())
        if t >= 3600 { return "\(t / 3600)h \(t % 3600 / 60)m" }
        if t >= 60 { return "\(t / 60)m \(t % 60)s" }
        return "\(t)s"
    }

    private func fmt(_ x: Float) -> String { String(format: "%g", Double(x)) }

    // MARK: - Snapshots

    /// The snapshot file names at the current iteration (Caffe's SnapshotFilename).
    public var snapshotPaths: (model: String, state: String) {
        let base = "\(config.snapshotPrefix)_iter_\(iter)"
        return (base + ".caffemodel", base + ".solverstate")
    }

    /// The state to write with a snapshot: iteration, step, history.
    public func state(learnedNet: String) -> SolverState {
        SolverState(iter: iter, currentStep: currentStep, learnedNet: learnedNet,
                    history: history.map { WeightBlob(shape: $0.shape, data: $0.array) })
    }

    /// Writes `<prefix>_iter_N.caffemodel` and `<prefix>_iter_N.solverstate`
    /// through `snapshotWriter` (nothing without one).
    public func snapshot() throws {
        guard let writer = snapshotWriter else { return }
        let (model, statePath) = snapshotPaths
        log("Snapshotting to binary proto file \(model)")
        try writer.writeWeights(net.exportWeights(), model)
        log("Snapshotting solver state to binary proto file \(statePath)")
        try writer.writeState(state(learnedNet: model), statePath)
    }

    /// Resumes from a solver state (Caffe's Restore): the iteration, the
    /// step of the lr policy and the history; `weights` (the state's
    /// learned_net, read by the caller) are copied into the training net.
    public func restore(_ state: SolverState, weights: Graph?, file: String = "solver state") throws {
        guard state.history.count == history.count else {
            throw SolverError.state(file: file,
                "holds \(state.history.count) history blobs, but a \(config.method.rawValue) solver of this net needs \(history.count) (\(config.method.historyPerBlob) per learnable blob); was it written by another solver type or net?")
        }
        for (k, h) in state.history.enumerated() where h.data.count != history[k].count {
            let p = learnable[k % max(1, learnable.count)]
            throw SolverError.state(file: file,
                "history blob \(k) has \(h.data.count) values (\(h.shape)), but layer '\(p.layer)' parameter \(p.index) has \(history[k].count) (\(history[k].shape)); the state belongs to another net")
        }
        if let weights { try net.copyTrainedLayers(from: weights) }
        iter = state.iter
        currentStep = state.currentStep
        for (k, h) in state.history.enumerated() {
            h.data.withUnsafeBufferPointer { b in
                if let base = b.baseAddress { history[k].data.update(from: base, count: h.data.count) }
            }
        }
    }
}

/// A flag set from a signal handler's queue and read by the training loop.
final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
