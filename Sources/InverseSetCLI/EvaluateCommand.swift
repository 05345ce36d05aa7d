import ArgumentParser
import Foundation
import Sampler
import SamplerIO

/// `inverse-set evaluate DIR [--dataset D] [--split S]`
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Judge a sample folder against the real images whose activations lie in its bands.",
        discussion: """
        The real inverse set is every image of the dataset (default: the pipeline's data.dataset,
        test split) inside the folder's bands, embedded by the pipeline's E. Prints, per band, for
        the samples and for the control G(code(x)) of those real images: precision and recall
        (k-NN balls, k = 3) and the same with balls capped at their 95th-percentile radius,
        density and coverage, near-duplicates and distinct count at the real set's median
        nearest-neighbour distance d, the E-norm ratio and the spread over the band's thirds
        (docs/evaluation.md). Writes DIR/evaluation.json and refreshes DIR/report.html. The last
        line printed is a JSON object with the first band's figures.
        D: a folder of IDX files, an IDX file, a folder of PNGs, a list of PNGs, or an .npy.

        Example: inverse-set evaluate out/sneaker --dataset /usr/share/datasets/fashion-mnist --split test
        """.reflowed)

    @Argument(help: "A folder written by `inverse-set sample`.") var dir: String
    @Option(help: "Dataset (default: the pipeline's data.dataset).") var dataset: String?
    @Option(help: "Split of an IDX folder or subfolder of a PNG folder (default: the pipeline's data.evaluation_split, else test).")
    var split: String?
    @Option(help: "Pipeline file (default: the one the folder was sampled with).") var pipeline: String?
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            let folder = try SampleFolder(existing: dir)
            let settings = folder.manifest.settings
            let registry = try common.makeRegistry()
            let loaded = try Toolbox.loadPipeline(pipeline ?? settings.pipeline, registry: registry, allowMissingWeights: missingWeights.allowMissingWeights, threads: common.computeThreads)
            let specs = try settings.neurons.map { try NeuronSpec(parsing: $0) }
            let ev = try FolderEvaluation.evaluate(folder: folder, loaded: loaded, neurons: specs, dataset: dataset, split: split)
            try ev.write(to: dir)
            try loaded.pipeline.setNeurons(zip(specs, folder.manifest.bands[0]).map { ($0, $1) })
            try Report.write(folder: folder, context: Report.Context(
                neurons: settings.neurons, labels: SampleCommand.neuronLabels(loaded.pipeline, classNames: loaded.labels),
                classNames: loaded.labels, notes: [], facts: []), evaluation: ev)
            for b in ev.bands {
                print("band \(b.band + 1) \(b.bands.map(\.description).joined(separator: " ")): \(b.realImages.count) real images of \(ev.evaluationImages), d = \(fmt(b.samples.d))")
                print(Self.table(b.samples, b.control))
            }
            let first = ev.bands.first
            var summary: [String: Any] = ["real_in_band": first?.realImages.count ?? 0]
            if let q = first?.samples, let c = first?.control {
                for (key, value, control) in Self.figures(q, c) {
                    summary[key] = value ?? NSNull()
                    summary["control_" + key] = control ?? NSNull()
                }
                summary["thirds"] = q.thirds.first ?? []
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    static func figures(_ q: SampleQuality, _ c: SampleQuality) -> [(String, Double?, Double?)] {
        [("precision", q.precision, c.precision), ("recall", q.recall, c.recall),
         ("capped_precision", q.cappedPrecision, c.cappedPrecision), ("capped_recall", q.cappedRecall, c.cappedRecall),
         ("density", q.density, c.density), ("coverage", q.coverage, c.coverage),
         ("near_duplicates", q.nearDuplicates, c.nearDuplicates), ("distinct_fraction", q.distinctFraction, c.distinctFraction),
         ("norm_ratio", q.normRatio, c.normRatio), ("in_band", q.inBand, c.inBand)]
    }

    static func table(_ q: SampleQuality, _ c: SampleQuality) -> String {
        var lines = ["  figure               samples   control"]
        for (name, a, b) in figures(q, c) {
            lines.append("  " + name.padding(toLength: 20, withPad: " ", startingAt: 0) + " " + fmt(a).leftPad(8) + "  " + fmt(b).leftPad(8))
        }
        lines.append("  thirds               " + (q.thirds.first ?? []).map { fmt($0) }.joined(separator: " / "))
        return lines.joined(separator: "\n")
    }
}

func fmt(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "-" }

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
