import ArgumentParser
import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler
import SamplerIO

/// `inverse-set sample [--pipeline P.json] --neuron SPEC ... --range Z1:Z2 ... --out DIR`
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Sample the inverse set of one or more neurons: diverse generated images whose activations lie in a band.",
        discussion: """
        Neurons: fc8:980 (vector unit, 0-based), conv5:12 (channel at the centre), conv5:12@3,9,
        conv5:12:mean, pre(fc6):17 (before in-place layers), each optionally =Z1:Z2 for its own band.
        Several --neuron flags constrain all of them at once (intersection of inverse sets).
        Several --range flags run one band after another, one row of the sheet per band.

        The default method (inverse-set, variant data) starts its walkers from the codes of real
        images of the pipeline's dataset (data.dataset, training split) and keeps the samples
        realistic and spaced apart; --variant paper runs the paper's algorithm as published.
        When the pipeline names a dataset (or with --dataset), the report judges the samples
        against the real images in the band (test split; see `inverse-set evaluate`).

        Output (written as produced; rerun the same command to resume, or with a larger -n to
        extend): DIR/sheet.png, DIR/samples/NNNN.png, DIR/samples.json, DIR/state.json,
        DIR/codes.npy, DIR/embeddings.npy, DIR/report.html, DIR/evaluation.json (docs/outputs.md).
        The last line printed is a JSON summary: {"accepted", "in_band", "diversity", "steps",
        "seconds", "trunk_passes_per_step"} (steps and seconds over all segments of the folder).
        Exit status: 0 when every band got its n samples; 2 when a band did not within
        --max-steps (what was found is kept, and stderr names the closest activations reached);
        1 on an error.
        """)

    @Option(help: "Pipeline file naming G, f and E (default: Models/fashion/pipeline.json).")
    var pipeline: String = "Models/fashion/pipeline.json"
    @Option(name: .customLong("neuron"), help: "Neuron spec (repeatable).") var neurons: [String] = []
    @Option(name: .customLong("range"), help: "Band Z1:Z2 for neurons without their own (repeatable: one run per band).")
    var ranges: [String] = []
    @Option(name: .short, help: "Samples per band.") var n: Int = 50
    @Option(name: .short, help: "Walkers (batch size).") var k: Int = 10
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "inverse-set, am (activation maximisation) or ppgn.") var method: String = "inverse-set"
    @Option(help: "inverse-set's variant: data (default) or paper.") var variant: String = "data"
    @Option(name: .customLong("max-steps"), help: "Give up after this many gradient steps per band.") var maxSteps: Int = 3000
    @Option(help: "Dataset for the evaluation in the report (default: the pipeline's data.dataset, test split).")
    var dataset: String?
    @Option(name: .customLong("prior"), help: "Dataset whose codes start the walkers (default: the pipeline's data.dataset, training split).")
    var priorDataset: String?
    @Option(name: .customLong("prior-count"), help: "Images of the prior (default: the pipeline's data.prior_count, else 10000).")
    var priorCount: Int?
    @Flag(name: .customLong("no-evaluate"), help: "Skip the evaluation against the dataset.") var noEvaluate = false
    @Option(name: .customLong("ppgn-eps1"), help: "PPGN: weight of the prior term E(G(h)) - h (reference default 1e-5).") var ppgnEps1: Float = 1e-5
    @Option(name: .customLong("ppgn-eps2"), help: "PPGN: weight of the condition term d log p(y|G(h)) / dh (default 1).") var ppgnEps2: Float = 1
    @Option(name: .customLong("ppgn-eps3"), help: "PPGN: standard deviation of the noise (reference default 1e-17).") var ppgnEps3: Float = 1e-17
    @Option(name: .customLong("ppgn-lr"), help: "PPGN: step length in units of the mean |code| (default 1).") var ppgnLR: Float = 1
    @Option(name: .customLong("ppgn-reset"), help: "PPGN: restart chains every N steps (default: 100 for hidden units, never for class units).") var ppgnReset: Int?
    @Option(name: .customLong("tune"), help: .hidden) var tune: [String] = []
    @Option(help: "Output folder.") var out: String
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            guard let m = SampleRequest.Method(rawValue: method) else {
                throw SamplerError("--method must be inverse-set, am or ppgn, not '\(method)'")
            }
            guard let v = SamplerSettings.Variant(rawValue: variant) else {
                throw SamplerError("--variant must be data or paper, not '\(variant)'")
            }
            guard n > 0, k > 0 else { throw SamplerError("-n and -k must be positive") }
            guard !neurons.isEmpty else { throw SamplerError("give at least one --neuron, e.g. --neuron fc8:3") }
            let specs = try neurons.map { try NeuronSpec(parsing: $0) }
            let ranges = try self.ranges.map { try Band(parsing: $0) }
            if let missing = specs.first(where: { $0.band == nil }), ranges.isEmpty {
                throw SamplerError("neuron '\(missing)' has no band: add --range Z1:Z2 or write it as SPEC=Z1:Z2")
            }
            // One run per --range (or a single run when every neuron has its own band).
            let bandSets: [[Band]] = ranges.isEmpty ? [specs.compactMap(\.band)] : ranges.map { r in specs.map { $0.band ?? r } }
            let registry = try common.makeRegistry()
            let loaded = try Toolbox.loadPipeline(pipeline, registry: registry, allowMissingWeights: missingWeights.allowMissingWeights)
            var request = SampleRequest(neurons: specs, bandSets: bandSets)
            request.n = n; request.k = k; request.seed = seed; request.method = m; request.variant = v
            request.maxSteps = maxSteps; request.priorDataset = priorDataset; request.priorCount = priorCount
            request.command = CommandLine.arguments
            request.tune = try Self.tuning(tune)
            // The reference PPGN scripts reset hidden-unit chains every 100 steps, class chains never.
            try loaded.pipeline.setNeurons(zip(specs, bandSets[0]).map { ($0, $1) })
            if Self.neuronLabels(loaded.pipeline, classNames: loaded.labels).contains("") { request.ppgn.resetEvery = 100 }
            if let r = ppgnReset { request.ppgn.resetEvery = max(0, r) }
            request.ppgn.eps1 = ppgnEps1; request.ppgn.eps2 = ppgnEps2; request.ppgn.eps3 = ppgnEps3; request.ppgn.lr = ppgnLR
            let settings = SampleFolder.Settings(pipeline: pipeline, method: method, variant: m == .inverseSet ? variant : nil,
                                                 k: k, seed: seed, neurons: neurons, ranges: self.ranges, maxSteps: maxSteps)
            let folder = try SampleFolder(dir: out, settings: settings, n: n, neurons: neurons, bands: bandSets,
                                          tool: toolVersion)
            let progress = Progress(total: n * bandSets.count)
            let outcome = try SamplingRun.run(request, loaded: loaded, folder: folder) { step, accepted, phase in
                progress.update(step: step, accepted: accepted, phase: phase)
            }
            progress.finish()
            var evaluation: FolderEvaluation? = nil
            if !noEvaluate && (dataset != nil || loaded.spec.data?.dataset != nil) {
                FileHandle.standardError.write(Data("inverse-set: evaluating against the dataset\n".utf8))
                evaluation = try FolderEvaluation.evaluate(folder: folder, loaded: loaded, neurons: specs, dataset: dataset, split: nil)
                try evaluation!.write(to: out)
            }
            try Report.write(folder: folder, context: Report.Context(neurons: neurons, labels: Self.neuronLabels(loaded.pipeline, classNames: loaded.labels),
                                                                      classNames: loaded.labels, notes: outcome.notes, facts: outcome.facts),
                             evaluation: evaluation)
            for note in outcome.notes { FileHandle.standardError.write(Data("inverse-set: note: \(note)\n".utf8)) }
            print("sheet: \(out)/sheet.png  report: \(out)/report.html")
            let summary: [String: Any] = ["accepted": outcome.accepted, "in_band": outcome.inBand, "diversity": outcome.diversity,
                                          "steps": outcome.steps, "seconds": (outcome.seconds * 100).rounded() / 100,
                                          "trunk_passes_per_step": outcome.trunkPassesPerStep]
            let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            if outcome.bandsShort > 0 { throw ExitCode(2) }
        }
    }

    /// `--tune key=value` overrides of the data variant's settings (for the
    /// ablations of docs/sampler.md).
    static func tuning(_ items: [String]) throws -> @Sendable (inout SamplerSettings) -> Void {
        var setters: [@Sendable (inout SamplerSettings) -> Void] = []
        for item in items {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw SamplerError("--tune expects KEY=VALUE, got '\(item)'") }
            let (key, value) = (parts[0], parts[1])
            func number<T: LosslessStringConvertible>(_: T.Type) throws -> T {
                guard let v = T(value) else { throw SamplerError("--tune \(key): '\(value)' is not a number") }
                return v
            }
            switch key {
            case "prior": let v = try number(Int.self); setters.append { $0.usePrior = v != 0 }
            case "lifetime": let v = try number(Int.self); setters.append { $0.lifetime = v }
            case "max_walk": let v = try number(Int.self); setters.append { $0.maxWalk = v }
            case "spacing": let v = try number(Float.self); setters.append { $0.spacing = v }
            case "bandwidth": let v = try number(Float.self); setters.append { $0.bandwidth = v }
            case "squared": let v = try number(Int.self); setters.append { $0.squaredObjective = v != 0 }
            case "step": let v = try number(Float.self); setters.append { $0.stepTarget = v }
            case "realism": let v = try number(Int.self); setters.append { $0.realism = v != 0 }
            case "realism_k": let v = try number(Int.self); setters.append { $0.realismK = v }
            case "realism_quantile": let v = try number(Double.self); setters.append { $0.realismQuantile = v }
            case "stratify": let v = try number(Int.self); setters.append { $0.stratify = v != 0 }
            case "realism_in_band": let v = try number(Int.self); setters.append { $0.realismInBand = v != 0 }
            case "realism_recon": let v = try number(Int.self); setters.append { $0.realismOnReconstructions = v != 0 }
            default: throw SamplerError("--tune: unknown key '\(key)' (prior, lifetime, max_walk, spacing, bandwidth, squared, step, realism, realism_k, realism_quantile, realism_in_band, realism_recon, stratify)")
            }
        }
        let all = setters
        return { s in for f in all { f(&s) } }
    }
}

/// Progress on stderr: a bar when stderr is a terminal, periodic lines otherwise.
final class Progress {
    let total: Int
    let tty = isatty(2) != 0
    let start = Date()
    var lastPrint = Date.distantPast
    var step = 0, accepted = 0, phase = ""

    init(total: Int) { self.total = total }

    func update(step: Int? = nil, accepted: Int, phase: String? = nil) {
        if let step { self.step = step }
        if let phase { self.phase = phase }
        self.accepted = accepted
        let now = Date()
        guard now.timeIntervalSince(lastPrint) > (tty ? 0.2 : 5) else { return }
        lastPrint = now
        emit(final: false)
    }

    func emit(final: Bool) {
        let t = Date().timeIntervalSince(start)
        let rate = t > 0 ? Double(accepted) / t : 0
        let eta = rate > 0 ? Double(total - accepted) / rate : .infinity
        let etaText = eta.isFinite ? String(format: "%.0fs", eta) : "?"
        if tty {
            let width = 30, filled = total > 0 ? min(width, width * accepted / total) : 0
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let line = String(format: "\r[%@] %d/%d samples  step %d  %.1f/s  ETA %@  %@\u{1B}[K", bar, accepted, total, step, rate, etaText, phase)
            FileHandle.standardError.write(Data((line + (final ? "\n" : "")).utf8))
        } else {
            let line = String(format: "progress: %d/%d samples, step %d, %.1f samples/s, ETA %@ %@\n", accepted, total, step, rate, etaText, phase)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    func finish() { emit(final: true) }
}

extension SampleCommand {
    /// Class names for the neurons that are class units: a vector blob (no
    /// spatial axes) with exactly as many channels as the pipeline's label
    /// file has names (fc8, prob). Other neurons (fc6, conv5) get "".
    static func neuronLabels(_ p: Pipeline, classNames: [String]) -> [String] {
        p.neurons.map { n in
            let shape = p.classifier.shapes[n.value.index]
            guard !classNames.isEmpty, shape.rank >= 2, shape[1] == classNames.count, shape.count(from: 2) == 1,
                  n.spec.index < classNames.count else { return "" }
            return classNames[n.spec.index]
        }
    }
}
