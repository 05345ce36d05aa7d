import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler

/// One `sample` invocation: which neurons and bands, how many samples, by
/// which method, into which folder.
public struct SampleRequest: Sendable {
    public enum Method: String, Sendable, CaseIterable { case inverseSet = "inverse-set", am, ppgn }
    public var neurons: [NeuronSpec]
    /// One entry per run: the band of every neuron.
    public var bandSets: [[Band]]
    public var n = 50
    public var k = 10
    public var seed: UInt64 = 0
    public var method: Method = .inverseSet
    public var variant: SamplerSettings.Variant = .data
    public var maxSteps = 3000
    /// Stop a band that accepted nothing after this many steps without progress (0: never).
    public var stallSteps = 200
    /// The tool's version and source commit, recorded per segment.
    public var tool: String?
    public var commit: String?
    /// A dataset for the code prior instead of the pipeline's data.dataset.
    public var priorDataset: String?
    /// Images of the prior (default: the pipeline's data.prior_count, else 10,000).
    public var priorCount: Int?
    public var ppgn = Baselines.PPGNSettings()
    /// The command line, for the report.
    public var command: [String] = []
    /// A code prior computed beforehand for these neurons (an atlas computes one
    /// for a whole layer); nil: read it from the pipeline's dataset.
    public var prior: CodePrior?
    /// Overrides of the data variant's settings (tuning and ablations).
    public var tune: @Sendable (inout SamplerSettings) -> Void = { _ in }

    public init(neurons: [NeuronSpec], bandSets: [[Band]]) { self.neurons = neurons; self.bandSets = bandSets }
}

/// What a finished `sample` invocation reports.
public struct SampleOutcome: Sendable {
    public var accepted: Int
    public var inBand: Double
    public var diversity: Double
    /// Steps and seconds over all segments of the folder.
    public var steps: Int
    public var seconds: Double
    public var trunkPassesPerStep: Double
    public var bandsShort: Int
    public var notes: [String]
    /// Per band, facts of the sampler (d^, starts, ...).
    public var facts: [[String: Double]]
}

public enum SamplingRun {
    /// The code prior: codes of the first `count` images of the prior split,
    /// and what G, f and E make of them.
    public static func prior(_ loaded: LoadedPipeline, dataset: String?, count: Int?) throws -> CodePrior {
        let data = try loaded.dataset(dataset, split: dataset == nil ? (loaded.spec.data?.prior_split ?? "train") : nil)
        let n = min(data.count, count ?? loaded.spec.data?.prior_count ?? 10_000)
        let real = try loaded.score(data, indices: Array(0..<n), withCodes: true)
        guard let codes = real.codes else { throw SamplerError("internal: no codes from the prior pass") }
        // Real codes lie in the code box already for the shipped pipelines; clip in case.
        let clipped = Tensor(shape: [codes.count, codes.dim], values: codes.values)
        loaded.pipeline.box.project(clipped)
        let boxed = PointSet(flat: clipped.array, dim: codes.dim)
        let rec = try loaded.generate(boxed)
        return CodePrior(codes: boxed, realEmbeddings: real.embeddings, realActivations: real.activations,
                         embeddings: rec.embeddings, activations: rec.activations, sources: real.indices)
    }

    /// Runs every band of `request` into `folder` (resuming what it holds).
    public static func run(_ request: SampleRequest, loaded: LoadedPipeline, folder: SampleFolder,
                           progress: @escaping (_ step: Int?, _ accepted: Int, _ phase: String?) -> Void) throws -> SampleOutcome {
        let p = loaded.pipeline
        folder.setWeights(loaded.weightFiles())   // before the segment's clock starts
        folder.beginSegment(command: request.command, tool: request.tool, commit: request.commit)
        var notes: [String] = [], facts: [[String: Double]] = []
        var bandsShort = 0
        var prior: CodePrior? = request.prior
        for (b, bands) in request.bandSets.enumerated() {
            try p.setNeurons(zip(request.neurons, bands).map { ($0, $1) })
            let existing = folder.samples(band: b)
            if existing.count >= request.n {
                if existing.count > request.n {
                    notes.append("band \(b) \(bands): the folder holds \(existing.count) samples, more than -n \(request.n); nothing was sampled (the folder keeps all \(existing.count))")
                }
                facts.append([:]); continue
            }
            var settings = SamplerSettings()
            settings.variant = request.variant
            settings.count = request.n; settings.walkers = request.k; settings.seed = request.seed &+ UInt64(b) &* 7919
            settings.maxSteps = request.maxSteps; settings.giveUpSteps = request.stallSteps; settings.initLow = loaded.initLow; settings.initHigh = loaded.initHigh
            request.tune(&settings)
            let wantsPrior = (request.method == .inverseSet && request.variant == .data && settings.usePrior) || request.method == .ppgn
            if wantsPrior, request.priorDataset != nil || loaded.spec.data?.dataset != nil {
                if prior == nil {
                    progress(nil, folder.manifest.samples.count, "reading the code prior")
                    prior = try Self.prior(loaded, dataset: request.priorDataset, count: request.priorCount)
                } else {
                    // Same codes and reconstructions; activations of this band's neurons are the same too.
                }
            }
            let sampler = InverseSetSampler(pipeline: p, settings: settings, prior: settings.usePrior ? prior : nil)
            let write: ([Sample], SamplerState?) throws -> Void = { batch, state in
                try folder.append(batch, band: b, state: state) { s in
                    guard let img = s.image else { return nil }
                    return loaded.display(Tensor(shape: [1, img.count], values: img), 0)
                }
                progress(nil, folder.manifest.samples.count, nil)
            }
            let result: SamplerResult
            switch request.method {
            case .am:
                result = try Baselines.activationMaximisation(sampler, onAccept: { try write($0, nil) })
            case .ppgn:
                var shares = Baselines.PPGNShares()
                let unit = prior.map { pr in pr.codes.values.reduce(Float(0)) { $0 + abs($1) } / Float(max(pr.codes.values.count, 1)) }
                result = try Baselines.ppgn(sampler, settings: request.ppgn, codeUnit: unit, shares: &shares,
                                            onAccept: { try write($0, nil) })
                notes.append(String(format: "band %d: PPGN step shares: prior %.2g, condition %.2g, noise %.2g (mean |term| of eps1 (E(G(h)) - h), eps2 d log p / dh and the noise)",
                                    b, shares.prior, shares.condition, shares.noise))
            case .inverseSet:
                result = try sampler.run(existing: existing, resume: folder.states[b], onAccept: write) { pr in
                    let closest = zip(request.neurons, pr.closest).map { "\($0)~\(String(format: "%.3g", $1))" }.joined(separator: " ")
                    progress(pr.step, folder.manifest.samples.count,
                             "\(pr.phase), \(pr.feasibleWalkers)/\(request.k) walkers in band" + (pr.accepted == 0 ? ", closest \(closest)" : ""))
                }
            }
            folder.setSteps(result.steps, band: b)
            facts.append(result.notes)
            if result.nonFiniteResets > 0 {
                notes.append("band \(b) \(bands): \(result.nonFiniteResets) time(s) a walker's activations or features were NaN or Inf; it was stopped and restarted from a fresh code (no such sample is written)")
            }
            if !result.reachedTarget {
                bandsShort += 1
                let closest = zip(request.neurons, result.closest).map { "\($0.text.split(separator: "=").first ?? "") reached \($1)" }.joined(separator: ", ")
                let why = result.stalled
                    ? "stopped after \(result.steps) steps, none in the band, the closest activation no nearer for \(request.stallSteps) steps (--stall-steps 0 never stops early)"
                    : "only \(folder.samples(band: b).count) of \(request.n) samples after \(result.steps) steps"
                notes.append("band \(b) \(bands): \(why); closest activations reached: \(closest); `inverse-set stats --blobs BLOB` shows the values real images reach")
                if !result.closest.isEmpty { folder.setClosest(result.closest, band: b) }
            }
        }
        let records = folder.manifest.samples
        let inBand = records.isEmpty ? 0 : Double(records.filter { r in
            zip(r.activations, request.bandSets[r.band]).allSatisfy { $1.contains($0) }
        }.count) / Double(records.count)
        let diversity = Metrics.meanPairwiseDistance(folder.embeddings)
        let outcome = SampleOutcome(accepted: records.count, inBand: inBand, diversity: diversity, steps: folder.totalSteps,
                                    seconds: folder.totalSeconds, trunkPassesPerStep: p.netPassesPerEvaluation,
                                    bandsShort: bandsShort, notes: notes, facts: facts)
        folder.setSummary(["accepted": Double(outcome.accepted), "in_band": inBand, "diversity": diversity,
                           "steps": Double(outcome.steps), "seconds": outcome.seconds,
                           "trunk_passes_per_step": outcome.trunkPassesPerStep])
        try folder.flush()
        return outcome
    }
}
