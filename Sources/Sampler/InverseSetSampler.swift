import Foundation
import GraphIR
import Runtime

/// One sample of the inverse set (or of a baseline).
public struct Sample: Sendable {
    public var code: [Float]
    public var activations: [Float]
    public var embedding: [Float]
    /// Gradient steps since the start of the run (over all resumed segments).
    public var step: Int
    /// G's output for this code, C x H x W (not kept for resumed samples).
    public var image: [Float]?
    /// The walker (0..<K) that produced it.
    public var walker: Int
    /// Dataset index of the real image whose code the walker started from,
    /// when it started from the code prior.
    public var start: Int?
    /// Steps the walker took from that start to this sample.
    public var walk: Int

    public init(code: [Float], activations: [Float], embedding: [Float], step: Int, image: [Float]? = nil,
                walker: Int = 0, start: Int? = nil, walk: Int = 0) {
        self.code = code; self.activations = activations; self.embedding = embedding; self.step = step
        self.image = image; self.walker = walker; self.start = start; self.walk = walk
    }
}

/// Settings of a sampling run. The defaults are the `data` variant's; see
/// docs/sampler.md for what each departure from the paper does, measured.
public struct SamplerSettings: Sendable, Codable, Equatable {
    public enum Variant: String, Sendable, Codable, CaseIterable {
        /// Starts from real codes, realism as a constraint, bounded repulsion,
        /// spaced acceptance, displacement step control, walker renewal,
        /// stratified band targets (the default).
        case data
        /// The paper's algorithm as published: random starts, eq. 5 seeds,
        /// eq. 6 steps with squared distances, every feasible step accepted.
        case paper
    }
    public var variant: Variant = .data
    public var count: Int = 100
    public var walkers: Int = 10
    public var seed: UInt64 = 0
    /// Give up (keeping what was found) after this many gradient steps.
    public var maxSteps: Int = 5000
    /// Random initial codes (the paper's start, and the data variant's
    /// without a prior): uniform in [initLow, initHigh] per dimension.
    public var initLow: [Float] = []
    public var initHigh: [Float] = []
    /// Steps without progress towards the band after which a walker restarts.
    public var stallSteps: Int = 150

    // The data variant. Distances are in units of d^, the median
    // nearest-neighbour distance of `count` in-band prior reconstructions:
    // the spacing real images of the band would have at the sample size.
    /// Samples a walker gives from one start before it restarts from another real code.
    public var lifetime: Int = 5
    /// Steps a walker takes from its seed (the first step in the band since
    /// its start) before it restarts: samples drift from the data as walks
    /// grow long.
    public var maxWalk: Int = 6
    /// A feasible walker is accepted only this far (x d^) from every accepted sample.
    public var spacing: Float = 0.5
    /// Width h of the repulsion kernel (x d^).
    public var bandwidth: Float = 1
    /// Target distance in E a walker moves per step (x d^).
    public var stepTarget: Float = 0.5
    /// Realism balls: k-th neighbour radius of the reconstructions, capped at this quantile.
    public var realismK: Int = 3
    public var realismQuantile: Double = 0.95
    public var realism: Bool = true
    /// Realism balls around the reconstructions E(G(c_j)) instead of the real images' E(x_j).
    public var realismOnReconstructions: Bool = false
    /// Realism balls around the prior images inside the band only (their
    /// radii taken among themselves), when at least 4 k of them are.
    public var realismInBand: Bool = true
    /// Walkers aim at the third of the (first neuron's) band that holds the fewest samples.
    public var stratify: Bool = true

    public init() {}
}

/// What a run reports while it goes.
public struct SamplerProgress: Sendable {
    public var phase: String
    public var step: Int
    public var accepted: Int
    public var target: Int
    public var feasibleWalkers: Int
    public var stepSize: Float
    /// Per neuron, the activation closest to its band seen so far.
    public var closest: [Float]
}

public struct SamplerResult: Sendable {
    public var samples: [Sample]
    /// Steps over the whole run, resumed segments included.
    public var steps: Int
    public var seedSteps: Int
    public var reachedTarget: Bool
    /// When the band was not reached: per neuron, the closest activation seen.
    public var closest: [Float]
    public var nonFiniteResets: Int
    /// Walkers restarted because they stopped approaching the band (or, in
    /// the data variant, stopped producing samples).
    public var stalledRestarts: Int = 0
    /// Facts of the run for the report (d^, the realism radius factor, ...).
    public var notes: [String: Double] = [:]
}

/// Everything a walker carries between steps.
public struct WalkerState: Sendable, Codable, Equatable {
    public var code: [Float]
    public var constraints: [BandConstraint]
    public var realism = Multiplier()
    /// Step length in units of the code scale.
    public var eta: Float = 0.05
    /// Third of the first neuron's band the walker aims at (data variant), or -1.
    public var target: Int = -1
    /// Prior row it started from (data variant).
    public var startRow: Int? = nil
    public var startStep: Int = 0
    /// The step at which it first reached its band since that start (its seed).
    public var seedStep: Int? = nil
    public var acceptedSinceStart: Int = 0
    public var lastAcceptStep: Int = 0
    public var bestViolation: Float = .infinity
    public var sinceProgress: Int = 0
    public var lastMerit: Float = .infinity
    /// E(G(code)) at the previous step, for the displacement step control.
    public var lastEmbedding: [Float]? = nil

    public init(code: [Float], neurons: Int, step: Int) {
        self.code = code
        constraints = Array(repeating: BandConstraint(), count: neurons)
        startStep = step
        lastAcceptStep = step
    }
}

/// The sampler's whole state after a step: saved with each accepted batch so
/// that a resumed run continues the walk exactly where it stopped.
public struct SamplerState: Sendable, Codable, Equatable {
    public var variant: SamplerSettings.Variant
    public var step: Int
    public var rng: UInt64
    public var walkers: [WalkerState]
    public var seeding: Bool = true
    public var seedSteps: Int = 0
    /// Paper variant: the step at which a walker first reached the band while seeding.
    public var firstFeasibleStep: Int? = nil
    /// The paper variant's global step factor and recent acceptance counts.
    public var global: Float = 1
    public var recentAccepts: [Int] = []
    /// The paper's scale s (mean ||e||^2 of the first walkers).
    public var scale: Float = 0
    /// The data variant's distance unit d^ and realism radius factor.
    public var unit: Float = 0
    public var realismFactor: Float = 1
    public var usedStarts: [Int] = []
    public var stepsWithoutAccept: Int = 0
    public var resets: Int = 0
    public var restarts: Int = 0
    public var closest: [Float] = []
    public var closestDistance: [Float] = []
}

/// Samples the inverse set {x = G(c) : z1_k <= a_k(x) <= z2_k for all k} so
/// that the samples are far apart in E's feature space (DESIGN.md section 4,
/// docs/sampler.md).
///
/// Both variants keep the paper's structure: walkers move by gradient steps
/// of an augmented Lagrangian (`BandConstraint`, `Multiplier`) of a
/// diversity objective (`Diversity`) until they are feasible (the seeds of
/// eq. 5), then single steps of eq. 6 from the current walkers give new
/// samples. The `paper` variant is that algorithm as published; the `data`
/// variant (default) adds a prior over codes taken from real images
/// (`CodePrior`): walkers start from real codes in the band, realism is a
/// constraint (`RealismModel`), the repulsion is bounded, a sample must be
/// `spacing` d^ from every accepted one, steps are sized to move `stepTarget`
/// d^ in E, a walker restarts from another real code after `lifetime`
/// samples, and walkers aim at the thirds of the band evenly.
public final class InverseSetSampler {
    public let pipeline: Pipeline
    public let settings: SamplerSettings
    public let prior: CodePrior?
    let realismModel: RealismModel?
    var rng: SplitMix64

    public init(pipeline: Pipeline, settings: SamplerSettings, prior: CodePrior? = nil) {
        self.pipeline = pipeline
        self.settings = settings
        self.prior = settings.variant == .data ? prior : nil
        realismModel = settings.variant == .data && settings.realism ? prior.map { p in
            let reference = settings.realismOnReconstructions ? p.embeddings : p.realEmbeddings
            let bands = pipeline.neurons.map(\.band)
            let inBand = settings.realismOnReconstructions ? p.rows(inside: bands) : p.realRows(inside: bands)
            // The real images of the band when there are enough of them, else all.
            let rows = settings.realismInBand && inBand.count >= 4 * settings.realismK ? inBand : Array(0..<p.count)
            return RealismModel(reference: reference.subset(rows), k: settings.realismK, quantile: settings.realismQuantile)
        } : nil
        rng = SplitMix64(seed: settings.seed)
    }

    /// K codes uniform in the initial box, projected into the code box.
    public func randomCodes(_ k: Int) -> Tensor {
        let d = pipeline.codeSize
        let t = Tensor(shape: [k, d])
        for i in 0..<k {
            for j in 0..<d {
                let lo = settings.initLow.isEmpty ? 0 : settings.initLow[j]
                let hi = settings.initHigh.isEmpty ? 1 : settings.initHigh[j]
                t[i * d + j] = lo + (hi - lo) * rng.uniform()
            }
        }
        pipeline.box.project(t)
        return t
    }

    /// The scale of a code step: the RMS over dimensions of the prior codes'
    /// standard deviation, or (without a prior) the RMS half-width of the
    /// initial box.
    var codeScale: Float {
        let d = pipeline.codeSize
        if let prior, prior.count > 1 {
            var total = 0.0
            for t in 0..<d {
                var s = 0.0, s2 = 0.0
                for j in 0..<prior.count { let v = Double(prior.codes.values[j * d + t]); s += v; s2 += v * v }
                let n = Double(prior.count)
                total += max(0, s2 / n - (s / n) * (s / n))
            }
            return max(Float((total / Double(d)).squareRoot()), 1e-6)
        }
        var s: Float = 0
        for j in 0..<d {
            let lo = settings.initLow.isEmpty ? 0 : settings.initLow[j], hi = settings.initHigh.isEmpty ? 1 : settings.initHigh[j]
            s += (hi - lo) * (hi - lo) / 4
        }
        return max((s / Float(max(d, 1))).squareRoot(), 1e-6)
    }

    var bands: [Band] { pipeline.neurons.map(\.band) }

    /// The band walker `w` aims at: its target third of the first neuron's band.
    func targetBands(_ w: WalkerState) -> [Band] {
        var b = bands
        if w.target >= 0, let first = b.first {
            let width = (first.high - first.low) / 3
            let lo = first.low + Float(w.target) * width
            b[0] = (try? Band(low: lo, high: lo + width)) ?? first
        }
        return b
    }

    /// Runs until `settings.count` samples are accepted, counting `existing`
    /// (from a resumed run). `resume` is the state saved with the last
    /// accepted batch; with it the walk continues exactly, without it the
    /// walkers start afresh (away from the existing samples). `onAccept` gets
    /// each new batch with the state after its step, as soon as it is
    /// accepted, so nothing is lost if the run is interrupted.
    public func run(existing: [Sample] = [], resume: SamplerState? = nil,
                    onAccept: ([Sample], SamplerState) throws -> Void,
                    onProgress: (SamplerProgress) -> Void = { _ in }) throws -> SamplerResult {
        let k = settings.walkers, d = pipeline.codeSize, m = pipeline.neurons.count
        var accepted = AcceptedSet(dim: existing.first?.embedding.count ?? 1, rows: existing.map(\.embedding))
        var thirds = [Int](repeating: 0, count: 3)
        for s in existing { if let t = third(s.activations) { thirds[t] += 1 } }
        var total = existing.count
        let scaleOfCode = codeScale
        var state: SamplerState
        if let resume, resume.walkers.count == k, resume.walkers.allSatisfy({ $0.code.count == d && $0.constraints.count == m }),
           resume.variant == settings.variant {
            state = resume
            rng = SplitMix64(seed: resume.rng)
        } else {
            state = SamplerState(variant: settings.variant, step: existing.map(\.step).max().map { $0 + 1 } ?? 0,
                                 rng: 0, walkers: [])
            // Without a saved state (a new folder, or one whose state was lost)
            // the walkers start afresh; the paper variant seeds again.
            state.seeding = settings.variant == .paper
            state.closest = Array(repeating: .nan, count: m)
            state.closestDistance = Array(repeating: .infinity, count: m)
            let fresh = randomCodes(k)
            for i in 0..<k {
                state.walkers.append(WalkerState(code: Array(UnsafeBufferPointer(start: fresh.data + i * d, count: d)),
                                                 neurons: m, step: state.step))
            }
            if settings.variant == .data {
                state.unit = distanceUnit(accepted: accepted)
                for i in 0..<k { restartFromPrior(&state, i, accepted: accepted, thirds: thirds) }
            }
        }
        if settings.variant == .data && state.unit == 0 { state.unit = distanceUnit(accepted: accepted) }
        let codes = Tensor(shape: [k, d])
        var newSamples: [Sample] = []
        let stall = settings.variant == .data ? min(settings.stallSteps, 40) : settings.stallSteps

        while total < settings.count && state.step < settings.maxSteps {
            for i in 0..<k { for j in 0..<d { codes[i * d + j] = state.walkers[i].code[j] } }
            let ev = try pipeline.forward(codes)
            let e = PointSet(flat: ev.embeddings.array, dim: ev.embeddings.count / k)
            if accepted.count == 0 && accepted.points.dim != e.dim { accepted = AcceptedSet(dim: e.dim) }
            // Walkers that produced NaN/Inf restart.
            var alive = [Bool](repeating: true, count: k)
            for i in 0..<k {
                let ok = ev.activations[i].allSatisfy(\.isFinite) && e.row(i).allSatisfy(\.isFinite)
                if !ok {
                    alive[i] = false
                    state.resets += 1
                    restart(&state, i, accepted: accepted, thirds: thirds)
                }
            }
            if state.scale == 0 {
                var s: Double = 0, n = 0
                for i in 0..<k where alive[i] { for v in e.row(i) { s += Double(v * v) }; n += 1 }
                state.scale = Float(max(s / Double(max(n, 1)), 1e-12))
            }
            if settings.variant == .data && state.unit <= 0 { state.unit = fallbackUnit(e, alive) }
            for i in 0..<k where alive[i] {
                for (q, b) in bands.enumerated() {
                    let a = ev.activations[i][q]
                    let dist = BandConstraint.violation(a, b)
                    if dist < state.closestDistance[q] { state.closestDistance[q] = dist; state.closest[q] = a }
                }
            }
            let feasibleBand = (0..<k).map { i in alive[i] && zip(ev.activations[i], bands).allSatisfy { $1.contains($0) } }
            let slack = realismModel?.evaluate(e)
            func realistic(_ i: Int) -> Bool {
                guard let slack else { return true }
                return slack[i].slack + (state.realismFactor - 1) * realismModel!.radii[slack[i].ball] >= 0
            }

            // Progress towards the band; walkers that stop approaching it restart.
            var restartNow = [Bool](repeating: false, count: k)
            for i in 0..<k where alive[i] {
                let v = zip(ev.activations[i], bands).reduce(Float(0)) { $0 + BandConstraint.violation($1.0, $1.1) }
                if v < state.walkers[i].bestViolation * 0.99 || v == 0 {
                    state.walkers[i].bestViolation = v; state.walkers[i].sinceProgress = 0
                } else {
                    state.walkers[i].sinceProgress += 1
                    if state.walkers[i].sinceProgress >= settings.stallSteps { restartNow[i] = true }
                }
            }

            // Acceptance.
            var batch: [Sample] = []
            let per = ev.generated.count / k
            func take(_ i: Int) {
                let w = state.walkers[i]
                batch.append(Sample(code: w.code, activations: ev.activations[i], embedding: Array(e.row(i)),
                                    step: state.step, image: Array(UnsafeBufferPointer(start: ev.generated.data + i * per, count: per)),
                                    walker: i, start: w.startRow.map { prior?.sources[$0] ?? $0 },
                                    walk: state.step - w.startStep))
                state.walkers[i].acceptedSinceStart += 1
                state.walkers[i].lastAcceptStep = state.step
            }
            switch settings.variant {
            case .paper:
                if state.seeding && feasibleBand.allSatisfy({ $0 }) { state.seeding = false; state.seedSteps = state.step }
                if state.seeding && feasibleBand.contains(true) {
                    // Seeding that drags on once some walkers are in the band: the
                    // rest restart next to them.
                    if state.firstFeasibleStep == nil { state.firstFeasibleStep = state.step }
                    if let f = state.firstFeasibleStep, state.step - f >= settings.stallSteps {
                        for i in 0..<k where alive[i] && !feasibleBand[i] { restartNow[i] = true }
                        state.firstFeasibleStep = state.step
                    }
                }
                if !state.seeding {
                    for i in 0..<k where feasibleBand[i] && total + batch.count < settings.count { take(i) }
                    state.recentAccepts.append(batch.count)
                    if state.recentAccepts.count > 5 { state.recentAccepts.removeFirst() }
                    let rate = Float(state.recentAccepts.reduce(0, +)) / Float(state.recentAccepts.count * k)
                    if state.recentAccepts.count >= 3 {
                        if rate > 0.7 { state.global = min(state.global * 1.25, 20) } else if rate < 0.3 { state.global = max(state.global * 0.8, 0.05) }
                    }
                }
            case .data:
                let minimum = settings.spacing * state.unit
                var anyBandFeasible = false
                // Thirds filled so far, counting this step's batch.
                var filled = thirds
                for i in 0..<k where feasibleBand[i] && total + batch.count < settings.count {
                    anyBandFeasible = true
                    guard realistic(i) else { continue }
                    // A walker aiming at a third that holds under a fifth of the samples
                    // gives samples only there: on its way it would fill the others instead.
                    let w = state.walkers[i]
                    let sum = filled.reduce(0, +)
                    if settings.stratify, w.target >= 0, let t = third(ev.activations[i]), t != w.target,
                       sum >= 3 * k, 5 * filled[w.target] < sum { continue }
                    let ei = e.row(i)
                    guard accepted.nearestDistance(ei) >= minimum,
                          batch.allSatisfy({ dist($0.embedding, ei) >= minimum }) else { continue }
                    take(i)
                    if let t = third(ev.activations[i]) { filled[t] += 1 }
                }
                state.stepsWithoutAccept = batch.isEmpty ? state.stepsWithoutAccept + 1 : 0
                // Feasible in the band but never realistic enough: widen the balls.
                if realismModel != nil, anyBandFeasible, state.stepsWithoutAccept >= stall {
                    state.realismFactor *= 1.25
                    state.stepsWithoutAccept = 0
                }
                for i in 0..<k where alive[i] {
                    let w = state.walkers[i]
                    if feasibleBand[i] && w.seedStep == nil { state.walkers[i].seedStep = state.step }
                    // A walker that needed a long approach to the band may walk as long again.
                    let walked = state.walkers[i].seedStep.map { state.step - $0 } ?? 0
                    let approach = state.walkers[i].seedStep.map { $0 - w.startStep } ?? 0
                    // Before its seed a walker is approaching the band (the progress rule
                    // above restarts it if that stalls); after it, `stall` steps without a
                    // sample end its walk.
                    let idle = state.walkers[i].seedStep.map { state.step - max($0, w.lastAcceptStep) } ?? 0
                    if w.acceptedSinceStart >= settings.lifetime || idle >= stall
                        || walked >= settings.maxWalk + approach { restartNow[i] = true }
                }
            }
            for s in batch { if let t = third(s.activations) { thirds[t] += 1 } }
            onProgress(SamplerProgress(phase: state.seeding ? "seeds" : "samples", step: state.step, accepted: total + batch.count,
                                       target: settings.count, feasibleWalkers: feasibleBand.filter { $0 }.count,
                                       stepSize: state.global, closest: state.closest))

            // The objective: diversity in E, realism in E, bands in a.
            let diversity: Diversity = settings.variant == .paper
                ? .squaredDistances(scale: state.scale) : .kernel(bandwidth: settings.bandwidth * state.unit)
            let others = settings.variant == .paper && state.seeding ? AcceptedSet(dim: e.dim) : accepted
            let dE = Tensor(shape: [k, e.dim], repeating: 0)
            var dA = [[Float]](repeating: [Float](repeating: 0, count: m), count: k)
            var merit = [Float](repeating: 0, count: k)
            for i in 0..<k where alive[i] {
                let (value, grad) = diversity.term(i, walkers: e, live: alive, accepted: others)
                merit[i] = value
                for t in 0..<e.dim { dE[i * e.dim + t] = grad[t] }
                let targets = settings.variant == .data ? targetBands(state.walkers[i]) : bands
                for q in 0..<m {
                    let (p, dp) = state.walkers[i].constraints[q].penalty(ev.activations[i][q], band: targets[q])
                    merit[i] += p
                    dA[i][q] = dp
                }
                if let slack, let model = realismModel {
                    let h = state.unit
                    let g = (slack[i].slack + (state.realismFactor - 1) * model.radii[slack[i].ball]) / h
                    let (p, dp) = state.walkers[i].realism.psi(g)
                    merit[i] += p
                    let dg = model.slackGradient(e.row(i), ball: slack[i].ball, distance: slack[i].distance)
                    for t in 0..<e.dim { dE[i * e.dim + t] += dp * dg[t] / h }
                }
            }
            // Multiplier and penalty updates every 5 steps (Nocedal & Wright 17.4).
            if state.step % 5 == 4 {
                for i in 0..<k where alive[i] {
                    let targets = settings.variant == .data ? targetBands(state.walkers[i]) : bands
                    for q in 0..<m { state.walkers[i].constraints[q].update(ev.activations[i][q], band: targets[q]) }
                    if let slack, let model = realismModel {
                        state.walkers[i].realism.update((slack[i].slack + (state.realismFactor - 1) * model.radii[slack[i].ball]) / state.unit)
                    }
                }
            }
            // Step sizes.
            for i in 0..<k where alive[i] {
                switch settings.variant {
                case .paper:
                    // Rprop on the merit: grow while it improves, halve when it does not.
                    if merit[i] < state.walkers[i].lastMerit { state.walkers[i].eta = min(state.walkers[i].eta * 1.2, 1) }
                    else { state.walkers[i].eta = max(state.walkers[i].eta * 0.5, 1e-4) }
                    state.walkers[i].lastMerit = merit[i]
                case .data:
                    // Move about stepTarget d^ in E per step: scale by the square root
                    // of target / last displacement, within [0.5, 2] per step.
                    if let last = state.walkers[i].lastEmbedding {
                        let moved = dist(last, e.row(i))
                        let target = settings.stepTarget * state.unit
                        let f = moved > 0 ? min(max((target / moved).squareRoot(), 0.5), 2) : 2
                        state.walkers[i].eta = min(max(state.walkers[i].eta * f, 1e-4), 4)
                    }
                    state.walkers[i].lastEmbedding = Array(e.row(i))
                }
            }
            let grad = try pipeline.backward(dActivations: dA, dEmbeddings: dE)
            for i in 0..<k where alive[i] && !(state.seeding && feasibleBand[i]) && !restartNow[i] {
                let g = grad.data + i * d
                var sq: Float = 0
                for j in 0..<d { sq += g[j] * g[j] }
                let rms = (sq / Float(d)).squareRoot()
                guard rms > 0, rms.isFinite else { continue }
                let len = state.walkers[i].eta * (settings.variant == .paper && !state.seeding ? state.global : 1) * scaleOfCode / rms
                for j in 0..<d { state.walkers[i].code[j] -= len * g[j] }
                project(&state.walkers[i].code)
            }
            let donors = (0..<k).filter { feasibleBand[$0] }
            for i in 0..<k where restartNow[i] {
                state.restarts += 1
                if settings.variant == .paper, let donor = donors.isEmpty ? nil : donors[Int(rng.next() % UInt64(donors.count))] {
                    var w = WalkerState(code: state.walkers[donor].code.map { $0 + 0.01 * scaleOfCode * (2 * rng.uniform() - 1) },
                                        neurons: m, step: state.step + 1)
                    project(&w.code)
                    state.walkers[i] = w
                } else {
                    restart(&state, i, accepted: accepted, thirds: thirds, step: state.step + 1)
                }
            }
            state.step += 1
            if !batch.isEmpty {
                total += batch.count
                accepted.append(batch.map(\.embedding))
                newSamples += batch
                state.rng = rngState()
                try onAccept(batch, state)
            }
        }
        var notes: [String: Double] = [:]
        if settings.variant == .data {
            notes["unit"] = Double(state.unit)
            notes["realism_factor"] = Double(state.realismFactor)
            notes["starts"] = Double(state.usedStarts.count)
        }
        return SamplerResult(samples: existing + newSamples, steps: state.step,
                             seedSteps: state.seeding ? state.step : state.seedSteps,
                             reachedTarget: total >= settings.count, closest: state.closest,
                             nonFiniteResets: state.resets, stalledRestarts: state.restarts, notes: notes)
    }

    func rngState() -> UInt64 { rng.currentState }

    func project(_ code: inout [Float]) {
        for j in code.indices { code[j] = min(max(code[j], pipeline.box.low[j]), pipeline.box.high[j]) }
    }

    func dist(_ a: [Float], _ b: ArraySlice<Float>) -> Float {
        var s: Float = 0
        for t in 0..<a.count { let d = a[t] - b[b.startIndex + t]; s += d * d }
        return s.squareRoot()
    }

    /// Which third of the first neuron's band `a` falls in (nil outside).
    func third(_ a: [Float]) -> Int? {
        guard let b = bands.first, let v = a.first, b.contains(v) else { return nil }
        return min(2, Int((v - b.low) / (b.high - b.low) * 3))
    }

    /// A restart: from the prior in the data variant, else from a random code.
    func restart(_ state: inout SamplerState, _ i: Int, accepted: AcceptedSet, thirds: [Int], step: Int? = nil) {
        if settings.variant == .data && prior != nil {
            restartFromPrior(&state, i, accepted: accepted, thirds: thirds, step: step)
        } else {
            let fresh = randomCodes(1)
            state.walkers[i] = WalkerState(code: fresh.array, neurons: pipeline.neurons.count, step: step ?? state.step)
        }
    }

    /// Walker `i` restarts from a real code: it aims at the third of the band
    /// with the fewest samples (counting what the other walkers aim at), and
    /// starts from a prior code whose reconstruction lies in that third (else
    /// in the band, else nearest to it), not used before if possible, and
    /// preferably at least `spacing` d^ from every accepted sample.
    func restartFromPrior(_ state: inout SamplerState, _ i: Int, accepted: AcceptedSet, thirds: [Int], step: Int? = nil) {
        guard let prior else { return }
        let m = pipeline.neurons.count
        var w = WalkerState(code: state.walkers[i].code, neurons: m, step: step ?? state.step)
        if settings.stratify && !bands.isEmpty {
            var load = thirds.map(Double.init)
            var aiming = [0, 0, 0]
            for (j, o) in state.walkers.enumerated() where j != i && o.target >= 0 {
                load[o.target] += Double(max(0, settings.lifetime - o.acceptedSinceStart))
                aiming[o.target] += 1
            }
            // At most a third of the walkers (rounded up) aim at one third, so a
            // third that is hard to reach does not take every walker.
            let cap = (settings.walkers + 2) / 3
            let open = (0..<3).filter { aiming[$0] < cap }
            w.target = (open.isEmpty ? Array(0..<3) : open).min { load[$0] < load[$1] } ?? 0
        }
        let used = Set(state.usedStarts)
        // Codes whose reconstruction is in the target (the walker is feasible at
        // once), else codes of real images in it (G may reconstruct them outside
        // the band, and the walker walks in); unused ones first.
        let target = targetBands(w)
        let pools: [[Int]] = [prior.rows(inside: target), prior.rows(inside: bands),
                              prior.realRows(inside: target), prior.realRows(inside: bands)]
        var candidates = pools.lazy.map { $0.filter { !used.contains($0) } }.first { !$0.isEmpty }
            ?? pools.first { !$0.isEmpty } ?? prior.rows(nearest: bands, max(4 * settings.walkers, 40))
        guard !candidates.isEmpty else { return }
        // A few random candidates; the first far enough from the accepted set wins,
        // else the farthest of them.
        var best = candidates[Int(rng.next() % UInt64(candidates.count))], bestDistance: Float = -1
        for _ in 0..<16 {
            let c = candidates[Int(rng.next() % UInt64(candidates.count))]
            let dc = accepted.nearestDistance(prior.embeddings.row(c))
            if dc > bestDistance { best = c; bestDistance = dc }
            if dc >= settings.spacing * state.unit { break }
        }
        w.code = Array(prior.codes.row(best))
        project(&w.code)
        w.startRow = best
        state.usedStarts.append(best)
        state.walkers[i] = w
    }

    /// d^: the median nearest-neighbour distance in E among `count` prior
    /// images in the band (a fixed random subset when there are more, all
    /// when there are fewer): the spacing real images of the band have at the
    /// sample size (extrapolated when the band holds fewer real images than
    /// samples). With fewer than 10 real images in the band, the
    /// reconstructions nearest to it stand in.
    func distanceUnit(accepted: AcceptedSet) -> Float {
        guard let prior else { return 0 }
        var rows = prior.realRows(inside: bands)
        var points = prior.realEmbeddings
        if rows.count < 10 {
            rows = prior.rows(nearest: bands, min(prior.count, max(50, settings.count)))
            points = prior.embeddings
        }
        var pick = SplitMix64(seed: settings.seed &+ 0x5EED)
        rows.shuffle(using: &pick)
        func spacing(_ m: Int) -> Double { SampleQuality.median(points.subset(Array(rows.prefix(m))).neighbourRadii(k: 1)) }
        let n = max(settings.count, 2)
        var u = spacing(min(n, rows.count))
        if rows.count < n && rows.count >= 20 {
            // Fewer real images than samples: nearest-neighbour distances shrink as
            // m^(-1/dim); the exponent from m and m/2 points extrapolates to n.
            let m = rows.count
            let exponent = min(max(log(spacing(m / 2) / u) / log(Double(m) / Double(m / 2)), 0.02), 1)
            u *= pow(Double(m) / Double(n), exponent)
        }
        return u.isFinite ? Float(u) : 0
    }

    /// Without a prior: half the median distance between the first walkers.
    func fallbackUnit(_ e: PointSet, _ alive: [Bool]) -> Float {
        let live = PointSet(rows: (0..<e.count).filter { alive[$0] }.map { Array(e.row($0)) }, dim: e.dim)
        let u = Float(SampleQuality.median(live.neighbourRadii(k: 1))) / 2
        return u.isFinite && u > 0 ? u : 1
    }
}
