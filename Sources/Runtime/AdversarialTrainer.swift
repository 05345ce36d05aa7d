import Dispatch
import Foundation
import GraphIR

/// DeepSiM's rule for keeping a generator and its discriminator in balance
/// (Dosovitskiy and Brox 2016). After every round, with the discriminator's
/// losses on real images, on generated images, and on generated images
/// labelled real (the generator's adversarial loss),
///
///     r = (L_real + L_fake) / L_fake_for_generator
///
/// is small when the discriminator is far ahead and large when it is losing:
///  - r < `pauseDiscriminatorBelow` while it trains: pause the discriminator
///    (the generator trains);
///  - r > `resumeDiscriminatorAbove` while it is paused: train both again;
///  - r > `pauseGeneratorAbove` while the generator trains: pause the
///    generator (the discriminator trains).
/// A paused net still runs forward (its losses keep the rule going) but is not
/// updated, and its iteration count does not advance.
public struct AdversarialBalance: Codable, Equatable, Sendable {
    public var pauseDiscriminatorBelow: Float = 0.1
    public var resumeDiscriminatorAbove: Float = 0.5
    public var pauseGeneratorAbove: Float = 10
    public var trainDiscriminator = true
    public var trainGenerator = true

    public init() {}

    /// Reads "LOW:RESUME:HIGH" (e.g. "0.1:0.5:10"); "off" never pauses.
    public init(parsing text: String) throws {
        if text == "off" {
            pauseDiscriminatorBelow = -.infinity
            resumeDiscriminatorAbove = -.infinity
            pauseGeneratorAbove = .infinity
            return
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Float($0) }
        guard parts.count == 3, let low = parts[0], let resume = parts[1], let high = parts[2],
              low >= 0, low <= resume, resume < high else {
            throw RuntimeError.input("--balance '\(text)' is not LOW:RESUME:HIGH with 0 <= LOW <= RESUME < HIGH (DeepSiM's is 0.1:0.5:10), or 'off'")
        }
        pauseDiscriminatorBelow = low
        resumeDiscriminatorAbove = resume
        pauseGeneratorAbove = high
    }

    /// The ratio r of the rule.
    public static func ratio(real: Float, fake: Float, fakeForGenerator: Float) -> Float {
        (real + fake) / max(fakeForGenerator, Float.leastNormalMagnitude)
    }

    /// Applies the rule to one round's losses; returns r.
    @discardableResult
    public mutating func update(real: Float, fake: Float, fakeForGenerator: Float) -> Float {
        let r = Self.ratio(real: real, fake: fake, fakeForGenerator: fakeForGenerator)
        guard r.isFinite || r == .infinity else { return r }
        if r < pauseDiscriminatorBelow && trainDiscriminator {
            trainDiscriminator = false
            trainGenerator = true
        }
        if r > resumeDiscriminatorAbove && !trainDiscriminator {
            trainDiscriminator = true
            trainGenerator = true
        }
        if r > pauseGeneratorAbove && trainGenerator {
            trainGenerator = false
            trainDiscriminator = true
        }
        return r
    }
}

/// What one round did, for progress lines and tests.
public struct AdversarialRound: Sendable {
    public var round: Int
    /// The generator net's own loss outputs (loss_weight * value), by blob.
    public var generatorLosses: [(blob: String, loss: Float)]
    /// The discriminator's loss on generated images labelled real, times
    /// the adversarial weight: the generator's adversarial term.
    public var adversarial: Float
    public var real: Float
    public var fake: Float
    public var fakeForGenerator: Float
    public var ratio: Float
    public var trainedGenerator: Bool
    public var trainedDiscriminator: Bool
}

/// Where an adversarial run stands, saved with each pair of snapshots so a
/// resumed run continues exactly: the round, the rule's flags, and what the
/// nets' data layers and random streams have consumed.
public struct AdversarialState: Codable, Equatable, Sendable {
    public var round: Int
    public var balance: AdversarialBalance
    public var adversarialWeight: Float
    /// The two solver states written with this snapshot.
    public var generatorState: String
    public var discriminatorState: String
    public var generatorRun: NetRunState
    public var discriminatorRun: NetRunState
}

/// Trains a generator against a discriminator, each with its own Caffe
/// solver, the way DeepSiM's Caffe training alternated them. One round:
///
///  1. the generator's training net runs forward (its data layer reads a
///     batch; its own losses, e.g. image and comparator-feature terms);
///  2. the discriminator runs forward and backward on the real batch (label
///     1) and on the generated one (label 0), and updates if it is training
///     (its gradients of the two passes add up, as in DeepSiM);
///  3. the discriminator runs forward on the generated batch labelled real;
///     `adversarialWeight` times the gradient of that loss with respect to
///     its input is seeded on the generator's output blob;
///  4. the generator runs backward (own losses + the seed) and updates, if
///     it is training;
///  5. `AdversarialBalance` decides who trains next round.
///
/// The discriminator's net reads the images and labels from its Input
/// layers (`data`, `label` by default). A run lasts the generator solver's
/// max_iter rounds; each net's learning-rate schedule follows its own
/// iteration count. Snapshots (every `snapshot` rounds of the generator's
/// solver) write both nets' caffemodel and solverstate plus an
/// `AdversarialState`.
public final class AdversarialTrainer {
    public let generator: Solver
    public let discriminator: Solver
    public let generated: ValueID
    public let real: ValueID
    public let discriminatorData: String
    public let discriminatorLabel: String
    public var adversarialWeight: Float
    public private(set) var balance: AdversarialBalance
    public private(set) var round = 0
    /// Writes the run state next to the solvers' snapshots (the caller knows
    /// the file format); without it, snapshots hold the two solvers only.
    public var writeState: ((AdversarialState, String) throws -> Void)?
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    public var onRound: ((AdversarialRound) -> Void)?
    public private(set) var lastState: String?

    private let discriminatorInput: ValueID
    private let stop = StopRequest()
    private var timer = DispatchTime.now().uptimeNanoseconds
    private var roundsAtTimer = 0

    /// `generator` must have been made with `externalSeeds: [generated]`.
    public init(generator: Solver, discriminator: Solver, generated: String = "gen", real: String = "data",
                discriminatorData: String = "data", discriminatorLabel: String = "label",
                adversarialWeight: Float = 1, balance: AdversarialBalance = AdversarialBalance()) throws {
        self.generator = generator
        self.discriminator = discriminator
        self.adversarialWeight = adversarialWeight
        self.balance = balance
        self.discriminatorData = discriminatorData
        self.discriminatorLabel = discriminatorLabel
        let g = generator.net
        func blob(_ name: String, _ what: String) throws -> ValueID {
            do { return try g.resolve(name) } catch {
                throw SolverError.training("the generator's training net has no blob '\(name)' (\(what))")
            }
        }
        self.generated = try blob(generated, "the generated images, --generated")
        self.real = try blob(real, "the real images, --real")
        guard generator.externalSeedValues.contains(self.generated) else {
            throw SolverError.training("the generator's solver was not made to take an outside gradient on '\(generated)'")
        }
        let d = discriminator.net
        let inputs = Set(d.inputNames)
        guard inputs == [discriminatorData, discriminatorLabel] else {
            throw SolverError.training("the discriminator's training net must read exactly two Input blobs, '\(discriminatorData)' (images) and '\(discriminatorLabel)' (1 = real, 0 = generated), but reads \(d.inputNames.map { "'\($0)'" }.joined(separator: ", ")); declare them with Input layers")
        }
        guard g.shapes[self.generated.index] == g.shapes[self.real.index] else {
            throw SolverError.training("the generated blob '\(generated)' is \(g.shapes[self.generated.index]) but the real blob '\(real)' is \(g.shapes[self.real.index]); the discriminator needs both alike")
        }
        discriminatorInput = try d.resolve(discriminatorData)
        generator.automaticSnapshots = false
        discriminator.automaticSnapshots = false
        generator.displaysProgress = false
        discriminator.displaysProgress = false
    }

    /// Asks the loop to stop after the current round; `train` then snapshots.
    public func requestStop() { stop.set() }

    /// Runs rounds until the generator solver's max_iter rounds have run (or a
    /// stop request), then snapshots if snapshot_after_train.
    public func train() throws {
        let config = generator.config
        log("Adversarial training: generator '\(generator.net.graph.name)' (\(generator.config.method.rawValue)), discriminator '\(discriminator.net.graph.name)' (\(discriminator.config.method.rawValue)), adversarial weight \(adversarialWeight), rule \(balance.pauseDiscriminatorBelow):\(balance.resumeDiscriminatorAbove):\(balance.pauseGeneratorAbove), from round \(round) to \(config.maxIter)")
        generator.startRun()
        discriminator.startRun()
        timer = DispatchTime.now().uptimeNanoseconds
        roundsAtTimer = round
        var stopped = false
        while round < config.maxIter {
            let record = try runRound()
            if config.display > 0 && record.round % config.display == 0 { display(record) }
            onRound?(record)
            if config.snapshot > 0 && round % config.snapshot == 0 { try snapshot() }
            if stop.isSet { stopped = true; break }
        }
        if (config.snapshotAfterTrain || stopped) && (config.snapshot == 0 || round % config.snapshot != 0) {
            try snapshot()
        }
        log(stopped ? "Adversarial training stopped at round \(round)." : "Adversarial training done: \(round) rounds, generator iteration \(generator.iter), discriminator iteration \(discriminator.iter).")
    }

    /// One round (see the type's description).
    @discardableResult
    public func runRound() throws -> AdversarialRound {
        let trainG = balance.trainGenerator, trainD = balance.trainDiscriminator
        _ = try generator.beginIteration()
        let generatorLoss = try generator.forwardPass()
        let g = generator.net
        guard let genT = g.tensor(generated), let realT = g.tensor(real) else {
            throw SolverError.training("the generator net did not keep its generated or real images")
        }
        let fakeImages = genT.copy(), realImages = realT.copy()
        let n = fakeImages.shape.dims.first ?? 1
        let ones = Tensor(shape: Shape([n]), repeating: 1), zeros = Tensor(shape: Shape([n]), repeating: 0)

        _ = try discriminator.beginIteration()
        let lReal = try discriminator.forwardPass(feeds: [discriminatorData: realImages, discriminatorLabel: ones])
        if trainD { try discriminator.backwardPass() }
        let lFake = try discriminator.forwardPass(feeds: [discriminatorData: fakeImages, discriminatorLabel: zeros])
        if trainD {
            try discriminator.backwardPass()
            _ = try discriminator.endIteration(loss: (lReal + lFake) / 2)
        }

        // The generator's adversarial gradient, through the discriminator
        // as it now is, with no parameter gradients.
        let (lFakeForG, gradient) = try discriminator.inputGradient(
            feeds: [discriminatorData: fakeImages, discriminatorLabel: ones], of: discriminatorInput, scale: adversarialWeight)
        guard let toImage = gradient else {
            throw SolverError.training("the discriminator gives no gradient to its input '\(discriminatorData)'; its first layer must not set propagate_down: false")
        }
        if trainG {
            try generator.backwardPass(external: [generated: toImage])
            _ = try generator.endIteration(loss: generatorLoss + adversarialWeight * lFakeForG)
        }
        let ratio = balance.update(real: lReal, fake: lFake, fakeForGenerator: lFakeForG)
        guard lReal.isFinite, lFake.isFinite, lFakeForG.isFinite else {
            throw SolverError.training("the discriminator's loss is not finite at round \(round) (real \(lReal), generated \(lFake), generated-as-real \(lFakeForG)); lower its base_lr or the adversarial weight")
        }
        let record = AdversarialRound(round: round, generatorLosses: generator.lastLosses(),
                                      adversarial: adversarialWeight * lFakeForG, real: lReal, fake: lFake,
                                      fakeForGenerator: lFakeForG, ratio: ratio,
                                      trainedGenerator: trainG, trainedDiscriminator: trainD)
        round += 1
        return record
    }

    private func display(_ r: AdversarialRound) {
        let now = DispatchTime.now().uptimeNanoseconds
        let seconds = Double(now - timer) / 1e9, done = round - roundsAtTimer
        var speed = ""
        if done > 0 && seconds > 0 {
            let perSecond = Double(done) / seconds
            speed = String(format: " (%.2f rounds/s, ETA %@)", perSecond,
                           Solver.duration(Double(generator.config.maxIter - round) / perSecond))
        }
        timer = now
        roundsAtTimer = round
        func f(_ x: Float) -> String { String(format: "%.4g", Double(x)) }
        let own = r.generatorLosses.map { "\($0.blob) = \(f($0.loss))" }.joined(separator: ", ")
        log("Round \(r.round)\(speed): generator iteration \(generator.iter)\(r.trainedGenerator ? "" : " (paused)"), lr \(f(generator.learningRate)): \(own), adversarial = \(f(r.adversarial)) (\(f(r.fakeForGenerator)) x \(f(adversarialWeight)))")
        log("    discriminator iteration \(discriminator.iter)\(r.trainedDiscriminator ? "" : " (paused)"), lr \(f(discriminator.learningRate)): real = \(f(r.real)), generated = \(f(r.fake)), ratio = \(f(r.ratio))")
    }

    // MARK: - Snapshots

    /// The path of the run state written with a snapshot at the current round.
    public var statePath: String { "\(generator.config.snapshotPrefix)_round_\(round).adversarial.json" }

    /// The state a snapshot at this point saves.
    public func state() -> AdversarialState {
        AdversarialState(round: round, balance: balance, adversarialWeight: adversarialWeight,
                         generatorState: generator.snapshotPaths.state,
                         discriminatorState: discriminator.snapshotPaths.state,
                         generatorRun: generator.net.runState(), discriminatorRun: discriminator.net.runState())
    }

    /// Writes both solvers' snapshots and the run state.
    public func snapshot() throws {
        try generator.snapshot()
        try discriminator.snapshot()
        guard let writeState else { return }
        let path = statePath
        log("Snapshotting the adversarial run state to \(path)")
        try writeState(state(), path)
        lastState = path
    }

    /// Continues from `state` (the two solvers restored from its solverstate
    /// files by the caller first).
    public func restore(_ state: AdversarialState, file: String) throws {
        try generator.net.restoreRunState(state.generatorRun, file: file)
        try discriminator.net.restoreRunState(state.discriminatorRun, file: file)
        round = state.round
        balance = state.balance
    }
}
