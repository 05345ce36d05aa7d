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
    /// The data variant with a code prior when the pipeline has a dataset
    /// (off: random starts in the initial box and no realism constraint).
    public var usePrior: Bool = true
    public var count: Int = 100
    public var walkers: Int = 10
    public var seed: UInt64 = 0
    /// Give up (keeping what was found) after this many gradient steps.
    public var maxSteps: Int = 5000
    /// Stop a band early when nothing was accepted and the closest activation
    /// has not come 1% nearer the band for this many steps (0: never).
    public var giveUpSteps: Int = 200
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
    /// The paper's squared distances (the default: measured better than the
    /// kernel with realism and short walks, docs/sampler.md) or the kernel.
    public var squaredObjective: Bool = true
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
    /// The run stopped early: nothing accepted, and no progress towards the band.
    public var stalled: Bool = false
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

