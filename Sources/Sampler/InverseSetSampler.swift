import GraphIR
import Runtime

/// One sample of the inverse set (or of a baseline).
public struct Sample: Sendable {
    public var code: [Float]
    public var activations: [Float]
    public var embedding: [Float]
    /// Step at which it was accepted (gradient steps since the start).
    public var step: Int
    /// G's output for this code, C x H x W (not kept for resumed samples).
    public var image: [Float]?

    public init(code: [Float], activations: [Float], embedding: [Float], step: Int, image: [Float]? = nil) {
        self.code = code
        self.activations = activations
        self.embedding = embedding
        self.step = step
        self.image = image
    }
}

/// Settings of a sampling run.
public struct SamplerSettings: Sendable {
    public var count: Int = 100
    public var walkers: Int = 10
    public var seed: UInt64 = 0
    /// Give up (keeping what was found) after this many gradient steps.
    public var maxSteps: Int = 5000
    /// Initial codes: uniform in [initLow, initHigh] per dimension.
    public var initLow: [Float] = []
    public var initHigh: [Float] = []
    /// Steps without progress towards the band after which a walker restarts.
    public var stallSteps: Int = 150
    public init() {}
}

/// What a run reports while it goes and at the end.
public struct SamplerProgress: Sendable {
    public var phase: String
    public var step: Int
    public var accepted: Int
    public var target: Int
    public var feasibleWalkers: Int
    public var stepSize: Float
}

public struct SamplerResult: Sendable {
    public var samples: [Sample]
    public var steps: Int
    public var seedSteps: Int
    public var reachedTarget: Bool
    /// When the band was not reached: per neuron, the closest activation seen.
    public var closest: [Float]
    public var nonFiniteResets: Int
    /// Walkers restarted because they stopped approaching the band.
    public var stalledRestarts: Int = 0
}

/// Samples the inverse set {x = G(c) : z1_k <= a_k(x) <= z2_k for all k} so that
/// the samples are far apart in E's feature space (DESIGN.md section 4).
///
/// Seeds (eq. 5): K random codes move by an augmented Lagrangian of
/// J = -(1/(K^2 s)) sum_ij ||e_i - e_j||^2 under the band constraints, until
/// all K are feasible. Then each step (eq. 6) is one gradient step of the
/// augmented Lagrangian of
/// -(1/s) [(1/K^2) sum_ij ||e_i - e_j||^2 + (1/(K|P|)) sum_{i,y in P} ||e_i - e_y||^2]
/// from the current walkers; walkers that are feasible after the step join P.
///
/// During seeding a walker that is already feasible holds still, so the seed
/// set fills up instead of chasing K simultaneous hits. A walker whose band
/// violation has not improved for `stallSteps` steps (a saturated generator,
/// a dead unit) restarts: next to a feasible walker (a small perturbation of
/// its code) if there is one, else from a fresh random code.
///
/// Step sizes adapt on their own: each walker's step grows by 1.2 while its
/// merit improves and halves when it does not (Rprop-style), and a global
/// factor keeps the acceptance rate of the incremental phase in [0.3, 0.7].
/// Constraints are normalised by the band width, so no learning rate is tuned.
public final class InverseSetSampler {
    public let pipeline: Pipeline
    public let settings: SamplerSettings
    var rng: SplitMix64

    public init(pipeline: Pipeline, settings: SamplerSettings) {
        self.pipeline = pipeline
        self.settings = settings
        self.rng = SplitMix64(seed: settings.seed)
    }

    /// Constraint state of one walker and neuron: g_lo = (a - z1)/w >= 0 and
    /// g_hi = (z2 - a)/w >= 0, each with a multiplier and a penalty.
    struct Constraint { var lamLo: Float = 0, lamHi: Float = 0, rho: Float = 10, lastViolation: Float = .infinity }

    /// psi(g, lambda, rho) of Nocedal & Wright 17.4 and its derivative in g.
    @inline(__always) static func psi(_ g: Float, _ lam: Float, _ rho: Float) -> (Float, Float) {
        if g <= lam / rho { return (-lam * g + rho * g * g / 2, -lam + rho * g) }
        return (-lam * lam / (2 * rho), 0)
    }

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

    /// Runs until `settings.count` samples are accepted (counting `existing`,
    /// from a resumed run). `onAccept` is called with each new batch of
    /// samples as soon as they are accepted, so nothing is lost if the run is
    /// interrupted.
    public func run(existing: [Sample] = [], onAccept: ([Sample]) throws -> Void,
                    onProgress: (SamplerProgress) -> Void = { _ in }) throws -> SamplerResult {
        let k = settings.walkers, d = pipeline.codeSize
        let m = pipeline.neurons.count
        let bands = pipeline.neurons.map(\.band)
        var accepted = existing
        var codes: Tensor
        if existing.count >= k {
            // Resume: walkers start from the last accepted codes.
            codes = Tensor(shape: [k, d], values: existing.suffix(k).flatMap(\.code))
        } else {
            codes = randomCodes(k)
            if !existing.isEmpty {
                for (i, s) in existing.suffix(k).enumerated() { for j in 0..<d { codes[i * d + j] = s.code[j] } }
            }
        }
        // Code scale for normalised steps: RMS half-width of the initial box.
        var codeScale: Float = 0
        for j in 0..<d {
            let lo = settings.initLow.isEmpty ? 0 : settings.initLow[j], hi = settings.initHigh.isEmpty ? 1 : settings.initHigh[j]
            codeScale += (hi - lo) * (hi - lo) / 4
        }
        codeScale = max((codeScale / Float(max(d, 1))).squareRoot(), 1e-6)

        var cons = [[Constraint]](repeating: [Constraint](repeating: Constraint(), count: m), count: k)
        var eta = [Float](repeating: 0.05, count: k)
        var bestViolation = [Float](repeating: .infinity, count: k)
        var sinceProgress = [Int](repeating: 0, count: k)
        var firstFeasibleStep: Int? = nil
        var lastMerit = [Float](repeating: .infinity, count: k)
        var global: Float = 1
        var closest = [Float](repeating: .nan, count: m)
        var closestDistance = [Float](repeating: .infinity, count: m)
        var step = 0, seedSteps = 0, resets = 0, restarts = 0
        var seeding = existing.count < k
        var scale: Float = 0   // s: mean ||e||^2 at the start
        var recentAccepts: [Int] = []
        var pSum = [Float](), pCount = 0
        for s in accepted {
            if pSum.isEmpty { pSum = Array(repeating: 0, count: s.embedding.count) }
            for j in s.embedding.indices { pSum[j] += s.embedding[j] }
            pCount += 1
        }

        while accepted.count < settings.count {
            guard step < settings.maxSteps else { break }
            let ev = try pipeline.forward(codes)
            let e = ev.embeddings
            let dim = e.count / k
            // Walkers that produced NaN/Inf restart from a fresh random code.
            var alive = [Bool](repeating: true, count: k)
            for i in 0..<k {
                var ok = ev.activations[i].allSatisfy(\.isFinite)
                if ok { for j in 0..<dim where !e[i * dim + j].isFinite { ok = false; break } }
                if !ok {
                    alive[i] = false
                    resets += 1
                    let fresh = randomCodes(1)
                    for j in 0..<d { codes[i * d + j] = fresh[j] }
                    cons[i] = [Constraint](repeating: Constraint(), count: m)
                    eta[i] = 0.05; lastMerit[i] = .infinity
                }
            }
            if scale == 0 {
                var s: Double = 0, n = 0
                for i in 0..<k where alive[i] { for j in 0..<dim { s += Double(e[i * dim + j] * e[i * dim + j]) }; n += 1 }
                scale = Float(max(s / Double(max(n, 1)), 1e-12))
            }
            // Track the closest activation to each band, for the report.
            for i in 0..<k where alive[i] {
                for (q, b) in bands.enumerated() {
                    let a = ev.activations[i][q]
                    let dist = a < b.low ? b.low - a : (a > b.high ? a - b.high : 0)
                    if dist < closestDistance[q] { closestDistance[q] = dist; closest[q] = a }
                }
            }
            let feasible = (0..<k).map { i in alive[i] && zip(ev.activations[i], bands).allSatisfy { $1.contains($0) } }
            // Progress towards the band (violation in band widths); stalled
            // walkers restart after this step's update is skipped.
            var restart = [Bool](repeating: false, count: k)
            for i in 0..<k where alive[i] {
                var v: Float = 0
                for (q, b) in bands.enumerated() {
                    let a = ev.activations[i][q], w = b.high - b.low
                    v += (a < b.low ? b.low - a : (a > b.high ? a - b.high : 0)) / w
                }
                if v < bestViolation[i] * 0.99 || v == 0 {
                    bestViolation[i] = v; sinceProgress[i] = 0
                } else {
                    sinceProgress[i] += 1
                    if sinceProgress[i] >= settings.stallSteps { restart[i] = true }
                }
            }
            // Seeding that drags on once some walkers are in the band (slow
            // but steady walkers never count as stalled): the rest restart
            // next to them.
            if seeding && feasible.contains(true) {
                if firstFeasibleStep == nil { firstFeasibleStep = step }
                if let f = firstFeasibleStep, step - f >= settings.stallSteps {
                    for i in 0..<k where alive[i] && !feasible[i] { restart[i] = true }
                    firstFeasibleStep = step
                }
            }

            // Acceptance (incremental phase): feasible walkers join P.
            if seeding && feasible.allSatisfy({ $0 }) {
                seeding = false
                seedSteps = step
            }
            if !seeding {
                var batch: [Sample] = []
                let per = ev.generated.count / k
                for i in 0..<k where feasible[i] && accepted.count + batch.count < settings.count {
                    let emb = Array(UnsafeBufferPointer(start: e.data + i * dim, count: dim))
                    batch.append(Sample(code: Array(UnsafeBufferPointer(start: codes.data + i * d, count: d)),
                                        activations: ev.activations[i], embedding: emb, step: step,
                                        image: Array(UnsafeBufferPointer(start: ev.generated.data + i * per, count: per))))
                }
                recentAccepts.append(batch.count)
                if recentAccepts.count > 5 { recentAccepts.removeFirst() }
                if !batch.isEmpty {
                    for s in batch {
                        if pSum.isEmpty { pSum = Array(repeating: 0, count: dim) }
                        for j in 0..<dim { pSum[j] += s.embedding[j] }
                        pCount += 1
                    }
                    accepted += batch
                    try onAccept(batch)
                }
                if accepted.count >= settings.count { break }
                // Keep the acceptance rate in [0.3, 0.7] of the walkers.
                let rate = Float(recentAccepts.reduce(0, +)) / Float(recentAccepts.count * k)
                if recentAccepts.count >= 3 {
                    if rate > 0.7 { global = min(global * 1.25, 20) } else if rate < 0.3 { global = max(global * 0.8, 0.05) }
                }
            }
            onProgress(SamplerProgress(phase: seeding ? "seeds" : "samples", step: step, accepted: accepted.count,
                                       target: settings.count, feasibleWalkers: feasible.filter { $0 }.count, stepSize: global))

            // Objective gradient w.r.t. embeddings: diversity among walkers and from P.
            var mean = [Float](repeating: 0, count: dim)
            var liveCount: Float = 0
            for i in 0..<k where alive[i] { for j in 0..<dim { mean[j] += e[i * dim + j] }; liveCount += 1 }
            for j in 0..<dim { mean[j] /= max(liveCount, 1) }
            let pMean: [Float]? = (!seeding && pCount > 0) ? pSum.map { $0 / Float(pCount) } : nil
            let dE = Tensor(shape: [k, dim], repeating: 0)
            var merit = [Float](repeating: 0, count: k)
            let kf = Float(k)
            for i in 0..<k where alive[i] {
                var spread: Float = 0, fromP: Float = 0
                for j in 0..<dim {
                    let v = e[i * dim + j]
                    let dw = v - mean[j]
                    spread += dw * dw
                    var g = -(4 / (kf * scale)) * dw
                    if let pm = pMean {
                        let dp = v - pm[j]
                        fromP += dp * dp
                        g -= (2 / (kf * scale)) * dp
                    }
                    dE[i * dim + j] = g
                }
                merit[i] = -(spread + fromP) / (kf * scale)
            }
            // Constraint terms.
            var dA = [[Float]](repeating: [Float](repeating: 0, count: m), count: k)
            for i in 0..<k where alive[i] {
                for (q, b) in bands.enumerated() {
                    let w = b.high - b.low
                    let a = ev.activations[i][q]
                    let c = cons[i][q]
                    let (p1, d1) = Self.psi((a - b.low) / w, c.lamLo, c.rho)
                    let (p2, d2) = Self.psi((b.high - a) / w, c.lamHi, c.rho)
                    merit[i] += p1 + p2
                    dA[i][q] = (d1 - d2) / w
                }
            }
            // Multiplier and penalty updates every 5 steps (Nocedal & Wright 17.4).
            if step % 5 == 4 {
                for i in 0..<k where alive[i] {
                    for (q, b) in bands.enumerated() {
                        let w = b.high - b.low, a = ev.activations[i][q]
                        let gLo = (a - b.low) / w, gHi = (b.high - a) / w
                        var c = cons[i][q]
                        c.lamLo = max(0, c.lamLo - c.rho * gLo)
                        c.lamHi = max(0, c.lamHi - c.rho * gHi)
                        let violation = max(0, -gLo) + max(0, -gHi)
                        if violation > 0.25 * c.lastViolation { c.rho = min(c.rho * 2, 1e5) }
                        c.lastViolation = violation
                        cons[i][q] = c
                    }
                }
            }
            // Rprop-style step adaptation per walker.
            for i in 0..<k where alive[i] {
                if merit[i] < lastMerit[i] { eta[i] = min(eta[i] * 1.2, 1) } else { eta[i] = max(eta[i] * 0.5, 1e-4) }
                lastMerit[i] = merit[i]
            }
            let grad = try pipeline.backward(dActivations: dA, dEmbeddings: dE)
            for i in 0..<k where alive[i] && !(seeding && feasible[i]) && !restart[i] {
                let g = grad.data + i * d
                var sq: Float = 0
                for j in 0..<d { sq += g[j] * g[j] }
                let rms = (sq / Float(d)).squareRoot()
                guard rms > 0, rms.isFinite else { continue }
                let stepLen = eta[i] * (seeding ? 1 : global) * codeScale / rms
                let c = codes.data + i * d
                for j in 0..<d { c[j] -= stepLen * g[j] }
            }
            let donors = (0..<k).filter { feasible[$0] }
            for i in 0..<k where restart[i] {
                restarts += 1
                if let donor = donors.isEmpty ? nil : donors[Int(rng.next() % UInt64(donors.count))] {
                    for j in 0..<d {
                        codes[i * d + j] = codes[donor * d + j] + 0.01 * codeScale * (2 * rng.uniform() - 1)
                    }
                } else {
                    let fresh = randomCodes(1)
                    for j in 0..<d { codes[i * d + j] = fresh[j] }
                }
                cons[i] = [Constraint](repeating: Constraint(), count: m)
                eta[i] = 0.05; lastMerit[i] = .infinity
                bestViolation[i] = .infinity; sinceProgress[i] = 0
            }
            pipeline.box.project(codes)
            step += 1
        }
        return SamplerResult(samples: accepted, steps: step, seedSteps: seeding ? step : seedSteps,
                             reachedTarget: accepted.count >= settings.count, closest: closest, nonFiniteResets: resets,
                             stalledRestarts: restarts)
    }
}
