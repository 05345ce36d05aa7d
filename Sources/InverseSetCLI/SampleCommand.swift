import ArgumentParser
import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler

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
        Output (written as produced; rerun the same command to resume an interrupted run):
        DIR/sheet.png, DIR/samples/NNNN.png, DIR/samples.json, DIR/codes.npy, DIR/embeddings.npy,
        DIR/report.html. The last line printed is a JSON summary:
        {"accepted", "in_band", "diversity", "steps", "seconds", "trunk_passes_per_step"};
        trunk_passes_per_step counts the forward passes of f (and of a separate E) per evaluation
        of the K walkers: 1 when E is f cut at a blob, whose trunk then serves both.
        Exit status: 0 when every band got its n samples; 2 when a band did not within
        --max-steps (what was found is kept, and stderr names the closest activations reached);
        1 on an error. Walkers that produce NaN or Inf restart from fresh codes (reported on
        stderr); no such sample is written.
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
    @Option(name: .customLong("max-steps"), help: "Give up after this many gradient steps per band.") var maxSteps: Int = 3000
    @Option(help: "Output folder.") var out: String
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            guard ["inverse-set", "am", "ppgn"].contains(method) else {
                throw SamplerError("--method must be inverse-set, am or ppgn, not '\(method)'")
            }
            guard n > 0, k > 0 else { throw SamplerError("-n and -k must be positive") }
            guard !neurons.isEmpty else { throw SamplerError("give at least one --neuron, e.g. --neuron fc8:3") }
            let specs = try neurons.map { try NeuronSpec(parsing: $0) }
            let ranges = try self.ranges.map { try Band(parsing: $0) }
            if specs.contains(where: { $0.band == nil }) && ranges.isEmpty {
                throw SamplerError("neuron '\(specs.first { $0.band == nil }!)' has no band: add --range Z1:Z2 or write it as SPEC=Z1:Z2")
            }
            // One run per --range (or a single run when every neuron has its own band).
            let bandSets: [[Band]] = (ranges.isEmpty ? [nil] : ranges.map { Optional($0) }).map { r in
                specs.map { $0.band ?? r! }
            }
            let registry = try common.makeRegistry()
            let loaded = try LoadedPipeline.load(pipeline, registry: registry)
            let p = loaded.pipeline
            let config: [String: String] = [
                "pipeline": pipeline, "method": method, "n": String(n), "k": String(k), "seed": String(seed),
                "neurons": neurons.joined(separator: " "), "ranges": self.ranges.joined(separator: " "),
            ]
            let folder = try SampleFolder(dir: out, configuration: config, neurons: neurons, bands: bandSets)
            let started = Date()
            var totalSteps = 0
            var notes: [String] = []
            var bandsShort = 0   // bands that ended without n samples (exit code 2)
            let progress = Progress(total: n * bandSets.count)
            for (b, bands) in bandSets.enumerated() {
                try p.setNeurons(zip(specs, bands).map { ($0, $1) })
                let existing = folder.samples(band: b)
                if existing.count >= n { continue }
                var settings = SamplerSettings()
                settings.count = n; settings.walkers = k; settings.seed = seed &+ UInt64(b) &* 7919
                settings.maxSteps = maxSteps; settings.initLow = loaded.initLow; settings.initHigh = loaded.initHigh
                let sampler = InverseSetSampler(pipeline: p, settings: settings)
                let write: ([Sample]) throws -> Void = { batch in
                    try folder.append(batch, band: b) { s in
                        guard let img = s.image else { return nil }
                        return Tensor(shape: [1, img.count], values: img).withDisplay(loaded.display)
                    }
                    progress.update(accepted: folder.manifest.samples.count)
                }
                let result: SamplerResult
                switch method {
                case "am": result = try Baselines.activationMaximisation(sampler, onAccept: write)
                case "ppgn": result = try Baselines.ppgn(sampler, onAccept: write)
                default:
                    result = try sampler.run(existing: existing, onAccept: write) { pr in
                        progress.update(step: pr.step, accepted: folder.manifest.samples.count,
                                        phase: "\(pr.phase), \(pr.feasibleWalkers)/\(k) walkers in band")
                    }
                }
                totalSteps += result.steps
                if result.nonFiniteResets > 0 {
                    notes.append("band \(b) \(bands): \(result.nonFiniteResets) time(s) a walker's activations or features were NaN or Inf; it was stopped and restarted from a fresh code (no such sample is written)")
                }
                if !result.reachedTarget {
                    bandsShort += 1
                    let closest = zip(specs, result.closest).map { "\($0)=\($1)" }.joined(separator: ", ")
                    notes.append("band \(b) \(bands): only \(result.samples.count) of \(n) samples after \(result.steps) steps; closest activations reached: \(closest)")
                }
            }
            progress.finish()
            let allActs = folder.manifest.samples.map(\.activations)
            let allBands = folder.manifest.samples.map { bandSets[$0.band] }
            let inBand = allActs.isEmpty ? 0 : Double(zip(allActs, allBands).filter { a, bs in zip(a, bs).allSatisfy { $1.contains($0) } }.count) / Double(allActs.count)
            let diversity = Metrics.meanPairwiseDistance(folder.embeddings)
            let seconds = Date().timeIntervalSince(started)
            let perStep = p.netPassesPerEvaluation
            folder.manifest.summary = ["accepted": Double(folder.manifest.samples.count), "in_band": inBand,
                                       "diversity": diversity, "steps": Double(totalSteps), "seconds": seconds,
                                       "trunk_passes_per_step": perStep]
            try folder.flush()
            try Report.write(folder: folder, bandSets: bandSets, neurons: neurons, method: method, notes: notes,
                             labels: Self.neuronLabels(p, classNames: loaded.labels))
            for note in notes { FileHandle.standardError.write(Data("inverse-set: warning: \(note)\n".utf8)) }
            print("sheet: \(out)/sheet.png  report: \(out)/report.html")
            let summary: [String: Any] = ["accepted": folder.manifest.samples.count, "in_band": inBand, "diversity": diversity,
                                          "steps": totalSteps, "seconds": (seconds * 100).rounded() / 100,
                                          "trunk_passes_per_step": perStep]
            let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            if bandsShort > 0 { throw ExitCode(2) }
        }
    }
}

extension Tensor {
    func withDisplay(_ f: (Tensor, Int) -> PNGImage) -> PNGImage { f(self, 0) }
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
            let line = String(format: "\r[%@] %d/%d samples  step %d  %.1f/s  ETA %@  %@", bar, accepted, total, step, rate, etaText, phase)
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
