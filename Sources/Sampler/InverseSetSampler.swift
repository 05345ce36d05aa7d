import Foundation
import GraphIR
import Runtime

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
/// samples or `maxWalk` steps, and walkers aim at the thirds of the band evenly.
///
/// One step of `run`, in order: `look` (forward pass, NaN restarts, closest
/// activations), `progressRestarts`, acceptance (`acceptPaper` /
/// `acceptData`), `objective` (diversity, band and realism terms and their
/// gradients), `updateMultipliers`, `controlSteps`, `move` (backward pass and
/// normalised code steps), `renew` (restarted walkers), commit.
public final class InverseSetSampler {
    public let pipeline: Pipeline
    public let settings: SamplerSettings
    public let prior: CodePrior?
    let realismModel: RealismModel?
    /// The code scale of a step (see `codeScale(prior:)`), computed once.
    let codeScale: Float
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
            return RealismModel(reference: reference.subset(rows), k: settings.realismK, quantile: settings.realismQuantile,
                                threads: pipeline.threads)
        } : nil
        rng = SplitMix64(seed: settings.seed)
        codeScale = Self.codeScale(prior: settings.variant == .data ? prior : nil, settings: settings, codeSize: pipeline.codeSize)
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
    static func codeScale(prior: CodePrior?, settings: SamplerSettings, codeSize d: Int) -> Float {
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

    /// The bands walker `w` aims at: its target third of the first neuron's
    /// band (data variant), the bands themselves otherwise.
    func targetBands(_ w: WalkerState) -> [Band] {
        var b = bands
        if settings.variant == .data, w.target >= 0, let first = b.first {
            let width = (first.high - first.low) / 3
            let lo = first.low + Float(w.target) * width
            b[0] = (try? Band(low: lo, high: lo + width)) ?? first
        }
        return b
    }

    // MARK: - The run

    /// What a run carries from step to step besides the saved state.
    struct Run {
        var state: SamplerState
        /// P: every accepted sample's embedding (resumed ones included).
        var accepted: AcceptedSet
        /// Accepted samples per third of the first neuron's band.
        var thirds: [Int]
        var total: Int
        var newSamples: [Sample] = []
    }

    /// What one forward pass says about the walkers.
    struct View {
        let evaluation: Evaluation
        let embeddings: PointSet
        /// False for walkers whose activations or features were not finite (restarted).
        let alive: [Bool]
        /// Inside every band.
        let feasible: [Bool]
        /// Realism constraint per walker (data variant with a prior).
        let slack: [(slack: Float, ball: Int, distance: Float)]?
        var activations: [[Float]] { evaluation.activations }
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
        var run = start(existing: existing, resume: resume)
        let k = settings.walkers, d = pipeline.codeSize
        let codes = Tensor(shape: [k, d])
        // Stall detection: the summed distance of the closest activations to their bands.
        var stallBest = Float.infinity, stallSince = run.state.step, stalled = false
        while run.total < settings.count && run.state.step < settings.maxSteps {
            for i in 0..<k { for j in 0..<d { codes[i * d + j] = run.state.walkers[i].code[j] } }
            let view = try look(&run, codes)
            var restarts = progressRestarts(&run, view)
            let batch = settings.variant == .paper ? acceptPaper(&run, view, &restarts) : acceptData(&run, view, &restarts)
            for s in batch { if let t = third(s.activations) { run.thirds[t] += 1 } }
            onProgress(SamplerProgress(phase: run.state.seeding ? "seeds" : "samples", step: run.state.step,
                                       accepted: run.total + batch.count, target: settings.count,
                                       feasibleWalkers: view.feasible.filter { $0 }.count, stepSize: run.state.global,
                                       closest: run.state.closest))
            let (dE, dA, merit) = objective(run, view)
            updateMultipliers(&run, view)
            controlSteps(&run, view, merit: merit)
            try move(&run, view, dE: dE, dA: dA, restarts: restarts)
            renew(&run, view, restarts: restarts)
            run.state.step += 1
            if !batch.isEmpty {
                run.total += batch.count
                run.accepted.append(batch.map(\.embedding))
                run.newSamples += batch
                run.state.rng = rng.currentState
                try onAccept(batch, run.state)
            }
            if run.total == 0 && settings.giveUpSteps > 0 {
                let distance = run.state.closestDistance.reduce(0, +)
                if distance < stallBest * 0.99 { stallBest = distance; stallSince = run.state.step }
                else if run.state.step - stallSince >= settings.giveUpSteps { stalled = true; break }
            }
        }
        let state = run.state
        var notes: [String: Double] = [:]
        if settings.variant == .data {
            notes["unit"] = Double(state.unit)
            notes["realism_factor"] = Double(state.realismFactor)
            notes["starts"] = Double(state.usedStarts.count)
        }
        return SamplerResult(samples: existing + run.newSamples, steps: state.step,
                             seedSteps: state.seeding ? state.step : state.seedSteps,
                             reachedTarget: run.total >= settings.count, closest: state.closest,
                             nonFiniteResets: state.resets, stalled: stalled, stalledRestarts: state.restarts, notes: notes)
    }

    /// The saved state when it fits these settings, else fresh walkers: random
    /// codes (the paper's seeds, which then seed again) or, in the data
    /// variant, codes of real images.
    func start(existing: [Sample], resume: SamplerState?) -> Run {
        let k = settings.walkers, d = pipeline.codeSize, m = pipeline.neurons.count
        var run = Run(state: SamplerState(variant: settings.variant, step: 0, rng: 0, walkers: []),
                      accepted: AcceptedSet(dim: existing.first?.embedding.count ?? 1, rows: existing.map(\.embedding)),
                      thirds: [0, 0, 0], total: existing.count)
        for s in existing { if let t = third(s.activations) { run.thirds[t] += 1 } }
        if let resume, resume.walkers.count == k, resume.variant == settings.variant,
           resume.walkers.allSatisfy({ $0.code.count == d && $0.constraints.count == m }) {
            run.state = resume
            rng = SplitMix64(seed: resume.rng)
        } else {
            var state = SamplerState(variant: settings.variant, step: existing.map(\.step).max().map { $0 + 1 } ?? 0,
                                     rng: 0, walkers: [])
            state.seeding = settings.variant == .paper
            state.closest = Array(repeating: .nan, count: m)
            state.closestDistance = Array(repeating: .infinity, count: m)
            let fresh = randomCodes(k)
            for i in 0..<k {
                state.walkers.append(WalkerState(code: Array(UnsafeBufferPointer(start: fresh.data + i * d, count: d)),
                                                 neurons: m, step: state.step))
            }
            if settings.variant == .data {
                state.unit = distanceUnit()
                for i in 0..<k { restartFromPrior(&state, i, accepted: run.accepted, thirds: run.thirds) }
            }
            run.state = state
        }
        if settings.variant == .data && run.state.unit == 0 { run.state.unit = distanceUnit() }
        return run
    }

    /// The forward pass of the walkers: walkers whose activations or features
    /// are not finite restart; the first pass fixes the paper's scale s (and,
    /// without a prior, d^); the closest activation to each band is tracked.
    func look(_ run: inout Run, _ codes: Tensor) throws -> View {
        let k = settings.walkers
        let ev = try pipeline.forward(codes)
        let e = PointSet(flat: ev.embeddings.array, dim: ev.embeddings.count / k)
        if run.accepted.count == 0 && run.accepted.points.dim != e.dim { run.accepted = AcceptedSet(dim: e.dim) }
        var alive = [Bool](repeating: true, count: k)
        for i in 0..<k where !(ev.activations[i].allSatisfy(\.isFinite) && e.row(i).allSatisfy(\.isFinite)) {
            alive[i] = false
            run.state.resets += 1
            restart(&run.state, i, accepted: run.accepted, thirds: run.thirds)
        }
        if run.state.scale == 0 {
            var s: Double = 0, n = 0
            for i in 0..<k where alive[i] { for v in e.row(i) { s += Double(v * v) }; n += 1 }
            run.state.scale = Float(max(s / Double(max(n, 1)), 1e-12))
        }
        if settings.variant == .data && run.state.unit <= 0 { run.state.unit = fallbackUnit(e, alive) }
        for i in 0..<k where alive[i] {
            for (q, b) in bands.enumerated() {
                let a = ev.activations[i][q], dist = BandConstraint.violation(a, b)
                if dist < run.state.closestDistance[q] { run.state.closestDistance[q] = dist; run.state.closest[q] = a }
            }
        }
        let feasible = (0..<k).map { i in alive[i] && zip(ev.activations[i], bands).allSatisfy { $1.contains($0) } }
        return View(evaluation: ev, embeddings: e, alive: alive, feasible: feasible, slack: realismModel?.evaluate(e))
    }

    /// Walkers whose summed band violation has not improved by
    /// `Tuning.progress` for `stallSteps` steps (a saturated generator, a dead
    /// unit) are marked for restart.
    func progressRestarts(_ run: inout Run, _ view: View) -> [Bool] {
        var restart = [Bool](repeating: false, count: settings.walkers)
        for i in 0..<settings.walkers where view.alive[i] {
            let v = zip(view.activations[i], bands).reduce(Float(0)) { $0 + BandConstraint.violation($1.0, $1.1) }
            if v < run.state.walkers[i].bestViolation * Tuning.progress || v == 0 {
                run.state.walkers[i].bestViolation = v; run.state.walkers[i].sinceProgress = 0
            } else {
                run.state.walkers[i].sinceProgress += 1
                if run.state.walkers[i].sinceProgress >= settings.stallSteps { restart[i] = true }
            }
        }
        return restart
    }

    /// Walker i's current position as a sample.
    func sample(_ run: inout Run, _ view: View, _ i: Int) -> Sample {
        let w = run.state.walkers[i]
        let per = view.evaluation.generated.count / settings.walkers
        run.state.walkers[i].acceptedSinceStart += 1
        run.state.walkers[i].lastAcceptStep = run.state.step
        return Sample(code: w.code, activations: view.activations[i], embedding: Array(view.embeddings.row(i)),
                      step: run.state.step,
                      image: Array(UnsafeBufferPointer(start: view.evaluation.generated.data + i * per, count: per)),
                      walker: i, start: w.startRow.map { prior?.sources[$0] ?? $0 }, walk: run.state.step - w.startStep)
    }

    /// The paper: seeds until all K walkers are feasible at once (feasible ones
    /// hold still; when that drags on `stallSteps` past the first hit, the
    /// others restart next to them), then every feasible walker is a sample.
    /// A global step factor keeps the acceptance rate in `Tuning.acceptanceRate`.
    func acceptPaper(_ run: inout Run, _ view: View, _ restarts: inout [Bool]) -> [Sample] {
        let k = settings.walkers
        if run.state.seeding && view.feasible.allSatisfy({ $0 }) { run.state.seeding = false; run.state.seedSteps = run.state.step }
        if run.state.seeding && view.feasible.contains(true) {
            if run.state.firstFeasibleStep == nil { run.state.firstFeasibleStep = run.state.step }
            if let f = run.state.firstFeasibleStep, run.state.step - f >= settings.stallSteps {
                for i in 0..<k where view.alive[i] && !view.feasible[i] { restarts[i] = true }
                run.state.firstFeasibleStep = run.state.step
            }
        }
        guard !run.state.seeding else { return [] }
        var batch: [Sample] = []
        for i in 0..<k where view.feasible[i] && run.total + batch.count < settings.count { batch.append(sample(&run, view, i)) }
        run.state.recentAccepts.append(batch.count)
        if run.state.recentAccepts.count > Tuning.acceptanceWindow { run.state.recentAccepts.removeFirst() }
        let rate = Float(run.state.recentAccepts.reduce(0, +)) / Float(run.state.recentAccepts.count * k)
        if run.state.recentAccepts.count >= 3 {
            if rate > Tuning.acceptanceRate.upperBound { run.state.global = min(run.state.global * 1.25, Tuning.globalRange.upperBound) }
            else if rate < Tuning.acceptanceRate.lowerBound { run.state.global = max(run.state.global * 0.8, Tuning.globalRange.lowerBound) }
        }
        return batch
    }

    /// The data variant: a walker in the band is a sample when it is realistic,
    /// `spacing` d^ from every accepted sample (and from this step's others),
    /// and (while its target third holds under 1/`Tuning.laggingShare` of the
    /// samples) inside that third. Walkers restart after `lifetime` samples,
    /// `maxWalk` steps past their seed (plus as many as their approach took),
    /// or `Tuning.idleSteps` steps without a sample; when walkers are in the
    /// band but none is realistic for that long, the realism balls widen.
    func acceptData(_ run: inout Run, _ view: View, _ restarts: inout [Bool]) -> [Sample] {
        let k = settings.walkers
        let minimum = settings.spacing * run.state.unit
        let idleLimit = min(settings.stallSteps, Tuning.idleSteps)
        var batch: [Sample] = []
        var anyInBand = false
        var filled = run.thirds
        for i in 0..<k where view.feasible[i] && run.total + batch.count < settings.count {
            anyInBand = true
            guard realismValue(run, view, i).map({ $0 >= 0 }) ?? true else { continue }
            let w = run.state.walkers[i]
            let sum = filled.reduce(0, +)
            if settings.stratify, w.target >= 0, let t = third(view.activations[i]), t != w.target,
               sum >= 3 * k, Tuning.laggingShare * filled[w.target] < sum { continue }
            let ei = view.embeddings.row(i)
            guard run.accepted.nearestDistance(ei) >= minimum, batch.allSatisfy({ dist($0.embedding, ei) >= minimum }) else { continue }
            batch.append(sample(&run, view, i))
            if let t = third(view.activations[i]) { filled[t] += 1 }
        }
        run.state.stepsWithoutAccept = batch.isEmpty ? run.state.stepsWithoutAccept + 1 : 0
        if realismModel != nil, anyInBand, run.state.stepsWithoutAccept >= idleLimit {
            run.state.realismFactor *= Tuning.realismWidening
            run.state.stepsWithoutAccept = 0
        }
        for i in 0..<k where view.alive[i] {
            let w = run.state.walkers[i]
            if view.feasible[i] && w.seedStep == nil { run.state.walkers[i].seedStep = run.state.step }
            let seed = run.state.walkers[i].seedStep
            let walked = seed.map { run.state.step - $0 } ?? 0
            let approach = seed.map { $0 - w.startStep } ?? 0
            let idle = seed.map { run.state.step - max($0, w.lastAcceptStep) } ?? 0
            if w.acceptedSinceStart >= settings.lifetime || idle >= idleLimit || walked >= settings.maxWalk + approach {
                restarts[i] = true
            }
        }
        return batch
    }

    /// The realism constraint value g = (slack + widening) / d^ of walker i
    /// (>= 0 inside the balls), nil without a realism model.
    func realismValue(_ run: Run, _ view: View, _ i: Int) -> Float? {
        guard let slack = view.slack, let model = realismModel else { return nil }
        return (slack[i].slack + (run.state.realismFactor - 1) * model.radii[slack[i].ball]) / run.state.unit
    }

    /// The augmented Lagrangian at the walkers: per walker the merit
    /// (diversity share + penalties) and the gradients of the quantity to
    /// minimise with respect to the embeddings (diversity, realism) and the
    /// activations (bands).
    func objective(_ run: Run, _ view: View) -> (dE: Tensor, dA: [[Float]], merit: [Float]) {
        let k = settings.walkers, m = pipeline.neurons.count, e = view.embeddings
        let diversity: Diversity = settings.variant == .paper || settings.squaredObjective
            ? .squaredDistances(scale: run.state.scale) : .kernel(bandwidth: settings.bandwidth * run.state.unit)
        // Eq. 5 (seeding) has no accepted set.
        let others = settings.variant == .paper && run.state.seeding ? AcceptedSet(dim: e.dim) : run.accepted
        let dE = Tensor(shape: [k, e.dim], repeating: 0)
        var dA = [[Float]](repeating: [Float](repeating: 0, count: m), count: k)
        var merit = [Float](repeating: 0, count: k)
        for i in 0..<k where view.alive[i] {
            let (value, grad) = diversity.term(i, walkers: e, live: view.alive, accepted: others)
            merit[i] = value
            for t in 0..<e.dim { dE[i * e.dim + t] = grad[t] }
            let targets = targetBands(run.state.walkers[i])
            for q in 0..<m {
                let (p, dp) = run.state.walkers[i].constraints[q].penalty(view.activations[i][q], band: targets[q])
                merit[i] += p
                dA[i][q] = dp
            }
            if let g = realismValue(run, view, i), let slack = view.slack, let model = realismModel {
                let (p, dp) = run.state.walkers[i].realism.psi(g)
                merit[i] += p
                let dg = model.slackGradient(e.row(i), ball: slack[i].ball, distance: slack[i].distance)
                for t in 0..<e.dim { dE[i * e.dim + t] += dp * dg[t] / run.state.unit }
            }
        }
        return (dE, dA, merit)
    }

    /// Multiplier and penalty updates every `Tuning.multiplierPeriod` steps
    /// (Nocedal & Wright 17.4).
    func updateMultipliers(_ run: inout Run, _ view: View) {
        guard run.state.step % Tuning.multiplierPeriod == Tuning.multiplierPeriod - 1 else { return }
        for i in 0..<settings.walkers where view.alive[i] {
            let targets = targetBands(run.state.walkers[i])
            for q in 0..<pipeline.neurons.count {
                run.state.walkers[i].constraints[q].update(view.activations[i][q], band: targets[q])
            }
            if let g = realismValue(run, view, i) { run.state.walkers[i].realism.update(g) }
        }
    }

    /// Step lengths. The paper variant: Rprop on the merit (grow by
    /// `Tuning.rpropGrow` while it improves, shrink by `Tuning.rpropShrink`
    /// when it does not). The data variant: move `stepTarget` d^ in E per step,
    /// scaling by sqrt(target / last displacement) within `Tuning.displacementFactor`.
    func controlSteps(_ run: inout Run, _ view: View, merit: [Float]) {
        for i in 0..<settings.walkers where view.alive[i] {
            var w = run.state.walkers[i]
            switch settings.variant {
            case .paper:
                w.eta = merit[i] < w.lastMerit ? min(w.eta * Tuning.rpropGrow, Tuning.paperEta.upperBound)
                                               : max(w.eta * Tuning.rpropShrink, Tuning.paperEta.lowerBound)
                w.lastMerit = merit[i]
            case .data:
                if let last = w.lastEmbedding {
                    let moved = dist(last, view.embeddings.row(i))
                    let target = settings.stepTarget * run.state.unit
                    let f = moved > 0 ? min(max((target / moved).squareRoot(), Tuning.displacementFactor.lowerBound),
                                            Tuning.displacementFactor.upperBound) : Tuning.displacementFactor.upperBound
                    w.eta = min(max(w.eta * f, Tuning.dataEta.lowerBound), Tuning.dataEta.upperBound)
                }
                w.lastEmbedding = Array(view.embeddings.row(i))
            }
            run.state.walkers[i] = w
        }
    }

    /// The backward pass and one normalised step per walker:
    /// c <- project(c - eta * codeScale * g / rms(g)) (times the paper's global
    /// factor after seeding). Feasible walkers hold still while the paper seeds;
    /// walkers about to restart do not move.
    func move(_ run: inout Run, _ view: View, dE: Tensor, dA: [[Float]], restarts: [Bool]) throws {
        let d = pipeline.codeSize, scale = codeScale
        let grad = try pipeline.backward(dActivations: dA, dEmbeddings: dE)
        for i in 0..<settings.walkers where view.alive[i] && !(run.state.seeding && view.feasible[i]) && !restarts[i] {
            let g = grad.data + i * d
            var sq: Float = 0
            for j in 0..<d { sq += g[j] * g[j] }
            let rms = (sq / Float(d)).squareRoot()
            guard rms > 0, rms.isFinite else { continue }
            let global = settings.variant == .paper && !run.state.seeding ? run.state.global : 1
            let len = run.state.walkers[i].eta * global * scale / rms
            for j in 0..<d { run.state.walkers[i].code[j] -= len * g[j] }
            project(&run.state.walkers[i].code)
        }
    }

    /// Restarts the marked walkers: the paper's next to a feasible walker
    /// (its code jittered by `Tuning.restartJitter` code scales), else afresh.
    func renew(_ run: inout Run, _ view: View, restarts: [Bool]) {
        let donors = (0..<settings.walkers).filter { view.feasible[$0] }
        for i in 0..<settings.walkers where restarts[i] {
            run.state.restarts += 1
            if settings.variant == .paper, let donor = donors.isEmpty ? nil : donors[Int(rng.next() % UInt64(donors.count))] {
                let jitter = Tuning.restartJitter * codeScale
                var w = WalkerState(code: run.state.walkers[donor].code.map { $0 + jitter * (2 * rng.uniform() - 1) },
                                    neurons: pipeline.neurons.count, step: run.state.step + 1)
                project(&w.code)
                run.state.walkers[i] = w
            } else {
                restart(&run.state, i, accepted: run.accepted, thirds: run.thirds, step: run.state.step + 1)
            }
        }
    }

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
}

/// The sampler's fixed numbers, each with its reason.
enum Tuning {
    /// A walker makes progress when its band violation drops below 99% of its best.
    static let progress: Float = 0.99
    /// Multipliers are updated after this many inner steps (N & W 17.4's outer iteration).
    static let multiplierPeriod = 5
    /// Paper variant: Rprop factors and bounds of eta (in code scales per step).
    static let rpropGrow: Float = 1.2, rpropShrink: Float = 0.5
    static let paperEta: ClosedRange<Float> = 1e-4...1
    /// Paper variant: the acceptance rate the global factor aims at, over the
    /// last `acceptanceWindow` steps, and the factor's range.
    static let acceptanceRate: ClosedRange<Float> = 0.3...0.7
    static let acceptanceWindow = 5
    static let globalRange: ClosedRange<Float> = 0.05...20
    /// Paper variant: a walker restarted next to a feasible one is jittered by this many code scales.
    static let restartJitter: Float = 0.01
    /// Data variant: the per-step factor on eta is clamped here, and eta stays in `dataEta`.
    static let displacementFactor: ClosedRange<Float> = 0.5...2
    static let dataEta: ClosedRange<Float> = 1e-4...4
    /// Data variant: steps past its seed without a sample after which a walker restarts
    /// (and, when no walker in the band is realistic for as long, the realism balls widen).
    static let idleSteps = 40
    static let realismWidening: Float = 1.25
    /// Data variant: a third of the band holding less than 1/laggingShare of the
    /// samples takes samples only from the walkers aiming at it.
    static let laggingShare = 5
    /// Data variant: walkers aim only at thirds of the band that hold at least
    /// this share of the prior's codes in the band (reconstructions and real
    /// images counted together), when the band holds at least
    /// `thirdSupportMinimum` of them; see `restartFromPrior`.
    static let thirdSupportShare = 0.02
    static let thirdSupportMinimum = 50
    /// Data variant: random start candidates tried for one far from the accepted set.
    static let startCandidates = 16
}
