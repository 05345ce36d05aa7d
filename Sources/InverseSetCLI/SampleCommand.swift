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
        Example: inverse-set sample --neuron fc8:7 --range 10:15 --out out/sneaker

        Neurons: fc8:980 (vector unit, 0-based), fc8:Sneaker (a class unit by its name in the pipeline's labels), conv5:12 (channel at the centre), conv5:12@3,9, conv5:12:mean, 'pre(fc6):17' (before in-place layers; quote it in a shell), each optionally =Z1:Z2 for its own band. Several --neuron flags constrain all of them at once (intersection of inverse sets). Several --range flags run one band after another, one row of the sheet per band.

        Bands are numbers (--range -2:3) or percentiles of the neuron over the dataset's test images (--range p90:p99, p99:max, min:p10): `inverse-set stats --blobs fc8` lists them. A band that nothing reaches stops early (--stall-steps) and names the closest activation reached.

        The default method (inverse-set, variant data) starts its walkers from the codes of real images of the pipeline's dataset (data.dataset, training split) and keeps the samples realistic and spaced apart; --variant paper runs the paper's algorithm as published (docs/algorithm.md). When the pipeline names a dataset (or with --dataset), the report judges the samples against the real images in the band (test split; see `inverse-set evaluate`).

        Output (written as produced; rerun the same command to resume, also after Ctrl-C, or with a larger -n to extend): DIR/sheet.png, DIR/samples/NNNN.png, DIR/samples.json, DIR/state.json, DIR/codes.npy, DIR/embeddings.npy, DIR/report.html, DIR/evaluation.json (docs/outputs.md). The last line printed is a JSON summary: {"accepted", "in_band", "diversity", "steps", "seconds", "trunk_passes_per_step"} (steps and seconds over all segments of the folder). Exit status: 0 when every band got its n samples; 2 when a band did not within --max-steps or stalled (what was found is kept, and stderr names the closest activations reached); 1 on an error; 130 after Ctrl-C.
        """.reflowed)

    @Option(help: "Pipeline file naming G, f and E (the shipped Fashion-MNIST one is found from any directory).")
    var pipeline: String = BuildInfo.defaultPipeline
    @Option(name: .customLong("neuron"), help: "Neuron spec, e.g. fc8:7 or fc8:Sneaker=10:15 (repeatable).") var neurons: [String]
    @Option(name: .customLong("range"), help: "Band Z1:Z2 or pA:pB (percentiles) for neurons without their own (repeatable: one run per band).")
    var ranges: [String] = []
    @Option(name: .short, help: "Samples per band.") var n: Int = 50
    @Option(name: .short, help: "Walkers (batch size).") var k: Int = 10
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "inverse-set, am (activation maximisation) or ppgn.") var method: String = "inverse-set"
    @Option(help: "inverse-set's variant: data (default) or paper.") var variant: String = "data"
    @Option(name: .customLong("max-steps"), help: "Give up after this many gradient steps per band.") var maxSteps: Int = 3000
    @Option(name: .customLong("stall-steps"), help: "Stop a band early when none of its samples was found and the closest activation has not come 1% nearer for this many steps (0: never).")
    var stallSteps: Int = 200
    @Option(help: "Dataset for the evaluation in the report and for percentile bands (default: the pipeline's data.dataset, test split).")
    var dataset: String?
    @Option(name: .customLong("prior"), help: "Dataset whose codes start the walkers (default: the pipeline's data.dataset, training split).")
    var priorDataset: String?
    @Option(name: .customLong("prior-count"), help: "Images of the prior (default: the pipeline's data.prior_count, else 10000).")
    var priorCount: Int?
    @Flag(name: .customLong("no-evaluate"), help: "Skip the evaluation against the dataset.") var noEvaluate = false
    @Option(help: "Sheet: tiles per row (default: a square grid, or up to 12 per band row).") var columns: Int?
    @Option(help: "Sheet: tile size in pixels (default: from the images, 64 to 128).") var tile: Int?
    @Flag(name: .customLong("label-tiles"), help: "Sheet: caption each tile with its activations (and the classifier's top class when the pipeline has labels).")
    var labelTiles = false
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
            guard columns.map({ $0 > 0 }) ?? true, tile.map({ $0 >= 8 && $0 <= 1024 }) ?? true else {
                throw SamplerError("--columns must be positive and --tile between 8 and 1024 pixels")
            }
            guard !neurons.isEmpty else { throw SamplerError("give at least one --neuron, e.g. --neuron fc8:3") }
            let registry = try common.makeRegistry()
            let loaded = try Toolbox.loadPipeline(pipeline, registry: registry, allowMissingWeights: missingWeights.allowMissingWeights, threads: common.computeThreads)
            // A neuron's own band may use percentiles: parse the spec without it then.
            var specs: [NeuronSpec] = [], ownBands: [String?] = []
            for text in neurons {
                let eq = text.lastIndex(of: "=")
                let own = eq.map { String(text[text.index(after: $0)...]) }
                let body = eq.map { String(text[..<$0]) } ?? text
                specs.append(try NeuronSpec(parsing: own.map(PercentileBands.usesPercentiles) == true ? body : text, labels: loaded.labels))
                ownBands.append(own)
            }
            if let missing = ownBands.firstIndex(where: { $0 == nil }), ranges.isEmpty {
                throw SamplerError("neuron '\(neurons[missing])' has no band: add --range Z1:Z2 (or pA:pB, percentiles) or write it as SPEC=Z1:Z2")
            }
            // One run per --range (or a single run when every neuron has its own band).
            let texts: [[String]] = ranges.isEmpty ? [ownBands.compactMap { $0 }] : ranges.map { r in ownBands.map { $0 ?? r } }
            let bandSets = try PercentileBands.resolve(loaded, neurons: specs, texts: texts, dataset: dataset, note: Toolbox.note)
            var request = SampleRequest(neurons: specs, bandSets: bandSets)
            request.n = n; request.k = k; request.seed = seed; request.method = m; request.variant = v
            request.maxSteps = maxSteps; request.stallSteps = max(0, stallSteps)
            request.priorDataset = priorDataset; request.priorCount = priorCount
            request.command = CommandLine.arguments
            request.tool = toolVersion; request.commit = BuildInfo.commit
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
            Interruption.announceOnCtrlC(folder: out)
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
            var context = Report.Context(neurons: neurons, labels: Self.neuronLabels(loaded.pipeline, classNames: loaded.labels),
                                         classNames: loaded.labels, notes: outcome.notes, facts: outcome.facts)
            context.columns = columns; context.tile = tile; context.tileLabels = labelTiles
            if labelTiles && evaluation == nil {
                context.topClasses = try loaded.topClasses(of: folder, restoring: zip(specs, bandSets[0]).map { ($0, $1) })
            }
            try Report.write(folder: folder, context: context, evaluation: evaluation)
            for note in outcome.notes { FileHandle.standardError.write(Data("inverse-set: note: \(note)\n".utf8)) }
            let sheet = FileManager.default.fileExists(atPath: out + "/sheet.png") ? "sheet: \(out)/sheet.png  " : "no sheet (no sample)  "
            print(sheet + "report: \(out)/report.html")
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

/// Ctrl-C during a run: the folder keeps every committed sample
/// (samples.json is replaced atomically), so the process says what was kept
/// and how to resume, and ends at once with status 130.
enum Interruption {
    nonisolated(unsafe) static var source: DispatchSourceSignal?

    static func announceOnCtrlC(folder: String) {
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler {
            struct Committed: Decodable { var samples: [SampleFolder.Record] }
            let kept = FileManager.default.contents(atPath: folder + "/samples.json")
                .flatMap { try? JSONDecoder().decode(Committed.self, from: $0) }?.samples.count ?? 0
            let command = CommandLine.arguments.map(Report.shellQuoted).joined(separator: " ")
            let text = "\ninverse-set: interrupted; \(folder) keeps \(kept) sample(s). Resume with the same command:\n  \(command)\n"
            _ = text.withCString { write(2, $0, strlen($0)) }
            _exit(130)
        }
        s.resume()
        source = s
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
