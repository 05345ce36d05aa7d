import Foundation
import Layers
import Runtime
import Sampler
import SamplerIO
import Testing
import TestSupport

/// The sampler as a library, in-process, on the shipped Fashion-MNIST
/// pipeline with a small code prior (2,000 training images).
@Suite(.serialized)
final class SamplerLibraryTests {
    let loaded: LoadedPipeline
    let prior: CodePrior
    let band: Band

    init() throws {
        loaded = try LoadedPipeline.load(Paths.models + "/fashion/pipeline.json", registry: try builtinRegistry(), threads: 1)
        band = try Band(low: 10, high: 15)
        try loaded.pipeline.setNeurons([(try NeuronSpec(parsing: "fc8:7"), band)])
        prior = try SamplingRun.prior(loaded, dataset: nil, count: 2000)
    }

    func settings(_ variant: SamplerSettings.Variant, n: Int) -> SamplerSettings {
        var s = SamplerSettings()
        s.variant = variant; s.count = n; s.walkers = 10; s.seed = 3; s.maxSteps = 400
        s.initLow = loaded.initLow; s.initHigh = loaded.initHigh
        return s
    }

    typealias Commit = (samples: [Sample], state: SamplerState)

    func run(_ s: SamplerSettings, existing: [Sample] = [], resume: SamplerState? = nil) throws -> (SamplerResult, [Commit]) {
        var commits: [Commit] = []
        let sampler = InverseSetSampler(pipeline: loaded.pipeline, settings: s, prior: prior)
        let r = try sampler.run(existing: existing, resume: resume, onAccept: { commits.append(($0, $1)) })
        return (r, commits)
    }

    @Test func priorHoldsRealCodesAndTheirReconstructions() {
        #expect(prior.count == 2000)
        #expect(prior.codes.dim == 256 && prior.embeddings.dim == 256)
        // fc6 codes after ReLU: non-negative and mostly zero, as real codes are.
        let zeros = prior.codes.values.filter { $0 == 0 }.count
        #expect(prior.codes.values.allSatisfy { $0 >= 0 })
        #expect(Double(zeros) / Double(prior.codes.values.count) > 0.5)
        #expect(prior.sources == Array(0..<2000))
        // E is fc6 and the code is fc6: the code is the real embedding, clipped to the code box.
        let box = loaded.pipeline.box
        let mismatches = prior.codes.values.indices.filter { i in
            let j = i % 256
            return prior.codes.values[i] != min(max(prior.realEmbeddings.values[i], box.low[j]), box.high[j])
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) code values differ from the clipped embedding")
    }

    @Test func dataVariantSamplesAreInBandSpacedAndSpread() throws {
        let s = settings(.data, n: 60)
        let (r, commits) = try run(s)
        #expect(r.reachedTarget && r.samples.count == 60)
        let unit = Float(try #require(r.notes["unit"]))
        #expect(unit > 0)
        let all = commits.flatMap(\.samples)
        #expect(all.count == 60)
        for x in all {
            #expect(band.contains(x.activations[0]))
            #expect(x.start.map { (0..<2000).contains($0) } == true, "every walker starts from a prior image")
            #expect(x.walk >= 0 && x.walk <= 60)
        }
        // Accepted samples are at least `spacing` d^ apart in E.
        let e = PointSet(rows: all.map(\.embedding))
        let dist = e.distances(to: e)
        for i in 0..<60 { for j in 0..<i { #expect(Float(dist[i * 60 + j]) >= s.spacing * unit * 0.999) } }
        // Each third of the band holds at least a sixth of the samples.
        let q = SampleQuality(samples: e, real: e, activations: all.map(\.activations), bands: [band],
                              threads: loaded.pipeline.threads)
        #expect(q.thirds[0].allSatisfy { $0 >= 1.0 / 6 }, "\(q.thirds)")
        // Re-evaluated through the pipeline, the saved codes give the saved activations.
        let again = try loaded.generate(PointSet(rows: all.map(\.code)))
        for (a, x) in zip(again.activations, all) { #expect(abs(a[0] - x.activations[0]) <= 1e-3 * max(1, abs(a[0]))) }
    }

    @Test(arguments: [SamplerSettings.Variant.data, .paper])
    func resumingFromASavedStateContinuesTheWalkExactly(_ variant: SamplerSettings.Variant) throws {
        let s = settings(variant, n: 50)
        let (full, commits) = try run(s)
        #expect(full.reachedTarget)
        // Stop after the commit that brings the count to 20 or more, then resume.
        var kept: [Sample] = [], cut = 0
        for (i, c) in commits.enumerated() where kept.count < 20 { kept += c.samples; cut = i }
        let (resumed, later) = try run(s, existing: kept.map { var x = $0; x.image = nil; return x }, resume: commits[cut].state)
        let expected = commits[(cut + 1)...].flatMap(\.samples)
        let got = later.flatMap(\.samples)
        #expect(got.count == expected.count)
        for (a, b) in zip(got, expected) {
            #expect(a.code == b.code && a.step == b.step && a.walker == b.walker)
        }
        #expect(resumed.steps == full.steps)
    }

    @Test func paperVariantAcceptsEveryFeasibleStepAndStartsAtRandom() throws {
        let (r, commits) = try run(settings(.paper, n: 30))
        #expect(r.reachedTarget)
        let all = commits.flatMap(\.samples)
        #expect(all.allSatisfy { band.contains($0.activations[0]) && $0.start == nil })
        // Seeds are accepted only once all K walkers are in the band (eq. 5).
        #expect(commits.first?.samples.count == 10)
    }

    @Test func aBandNoRealImageReachesStillSamplesFromTheNearestCodes() throws {
        // fc8:7 above every training activation (max 24): the walkers start from the
        // codes nearest to the band and the augmented Lagrangian carries them in.
        try loaded.pipeline.setNeurons([(try NeuronSpec(parsing: "fc8:7"), try Band(low: 25, high: 30))])
        defer { try? loaded.pipeline.setNeurons([(try! NeuronSpec(parsing: "fc8:7"), band)]) }
        let nearPrior = try SamplingRun.prior(loaded, dataset: nil, count: 2000)
        var s = settings(.data, n: 10)
        s.maxSteps = 300
        let sampler = InverseSetSampler(pipeline: loaded.pipeline, settings: s, prior: nearPrior)
        let r = try sampler.run(onAccept: { _, _ in })
        #expect(r.samples.allSatisfy { $0.activations[0] >= 25 && $0.activations[0] <= 30 })
        #expect(!r.samples.isEmpty, "closest reached: \(r.closest)")
    }

    /// A band whose real activations nearly all sit at one end: conv5 channel 6
    /// is exactly 0 on most images, and [0, 0.0058] is its p95:p99.5 band. Walkers
    /// aiming at the empty upper thirds used to hold back every sample (36 of
    /// 50 after 300 steps); they now aim only at thirds the prior reaches.
    @Test func aBandWithItsRealImagesAtOneEndFills() throws {
        let edge = try Band(low: 0, high: 0.005846612)
        try loaded.pipeline.setNeurons([(try NeuronSpec(parsing: "conv5:6"), edge)])
        defer { try? loaded.pipeline.setNeurons([(try! NeuronSpec(parsing: "fc8:7"), band)]) }
        let edgePrior = try SamplingRun.prior(loaded, dataset: nil, count: 2000)
        var s = settings(.data, n: 50)
        s.maxSteps = 300
        let r = try InverseSetSampler(pipeline: loaded.pipeline, settings: s, prior: edgePrior).run(onAccept: { _, _ in })
        #expect(r.samples.count == 50, "\(r.samples.count) of 50 in \(r.steps) steps")
        #expect(r.samples.allSatisfy { edge.contains($0.activations[0]) })
    }

    @Test func ppgnFollowsTheReferenceTermsAndMovesFromADeadUnit() throws {
        // conv5:18 at the centre is 0 after ReLU for most codes: the chain reads the
        // layer's own output (before ReLU), as the reference does, so it still moves.
        try loaded.pipeline.setNeurons([(try NeuronSpec(parsing: "conv5:18"), try Band(low: 1, high: 2))])
        defer { try? loaded.pipeline.setNeurons([(try! NeuronSpec(parsing: "fc8:7"), band)]) }
        var s = settings(.data, n: 20)
        s.maxSteps = 200
        let sampler = InverseSetSampler(pipeline: loaded.pipeline, settings: s, prior: prior)
        var shares = Baselines.PPGNShares()
        var samples: [Sample] = []
        var ppgn = Baselines.PPGNSettings()
        ppgn.eps1 = 0.1; ppgn.eps3 = 0.01
        let r = try Baselines.ppgn(sampler, settings: ppgn, codeUnit: 0.2, shares: &shares, onAccept: { samples += $0 })
        #expect(r.samples.count == 20 && samples.count == 20)
        // Every 5th state of each of the 10 chains: steps 5 and 10.
        #expect(Set(samples.map(\.step)) == [5, 10])
        // The two states of each chain differ: the chain moves.
        for w in 0..<10 {
            let states = samples.filter { $0.walker == w }.map(\.code)
            #expect(states.count == 2 && states[0] != states[1], "chain \(w) did not move")
        }
        // Three terms, each with a visible share at these settings; the neurons are restored.
        #expect(shares.prior > 0.01 && shares.condition > 0.3 && shares.noise > 0.01, "\(shares)")
        #expect(loaded.pipeline.neurons.count == 1 && samples.allSatisfy { $0.activations.count == 1 })
        // Codes stay in the box.
        let box = loaded.pipeline.box
        #expect(samples.allSatisfy { x in x.code.indices.allSatisfy { x.code[$0] >= box.low[$0] && x.code[$0] <= box.high[$0] } })
    }
}
