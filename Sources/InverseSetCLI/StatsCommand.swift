import ArgumentParser
import Foundation
import Sampler
import SamplerIO

/// `inverse-set stats [--pipeline P] [--dataset D] --blobs fc8,fc6,conv5`
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Per-unit activation statistics of classifier blobs over a dataset, for choosing bands.",
        discussion: """
        For every unit of each blob (a feature map's channels at the centre, at --position Y,X or
        averaged with --position mean, as neuron specs address them): min, percentiles 1 to 99,
        max, mean and the fraction of exact zeros, over the dataset's images (default: the
        pipeline's data.dataset, test split). Prints a table per blob, or one JSON object with
        --json. Bands between two percentiles reach real images: e.g. p90 to p99.

        Example: inverse-set stats --blobs fc8,fc6 --units 0-9
        """.reflowed)

    @Option(help: "Pipeline file whose classifier and preprocessing are used.") var pipeline: String = BuildInfo.defaultPipeline
    @Option(help: "Dataset (default: the pipeline's data.dataset).") var dataset: String?
    @Option(help: "Split of an IDX folder (default: test).") var split: String = "test"
    @Option(help: "Comma-separated classifier blobs.") var blobs: String
    @Option(help: "centre (default), mean, or Y,X for feature maps.") var position: String = "centre"
    @Option(help: "Units to print, e.g. 0-9,17 (default: all; --json always has all).") var units: String?
    @Option(help: "Use only the first N images.") var limit: Int?
    @Flag(help: "Print JSON instead of tables.") var json = false
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            let registry = try common.makeRegistry()
            let loaded = try Toolbox.loadPipeline(pipeline, registry: registry, allowMissingWeights: missingWeights.allowMissingWeights, threads: common.computeThreads)
            let data = try loaded.dataset(dataset, split: split)
            let pos: NeuronSpec.Position
            switch position {
            case "centre", "center": pos = .centre
            case "mean": pos = .mean
            default:
                let p = position.split(separator: ",").compactMap { Int($0) }
                guard p.count == 2, p.allSatisfy({ $0 >= 0 }) else { throw SamplerError("--position must be centre, mean or Y,X, not '\(position)'") }
                pos = .at(p[0], p[1])
            }
            let names = blobs.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !names.isEmpty else { throw SamplerError("--blobs needs at least one blob, e.g. --blobs fc8,fc6") }
            let stats = try BlobStatistics.compute(loaded, data: data, blobs: names, position: pos, limit: limit)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys]
                enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                print(String(decoding: try enc.encode(stats), as: UTF8.self))
                return
            }
            let wanted = try units.map(Self.parseUnits)
            print("\(stats.images) images of \(stats.dataset)")
            for b in stats.blobs {
                print("\n\(b.blob) \(b.shape) (\(b.position))")
                print("  unit       min        p1       p10       p50       p90       p99       max   zeros")
                for u in b.units where wanted.map({ $0.contains(u.unit) }) ?? true {
                    let cols = [u.min, u.p1, u.p10, u.p50, u.p90, u.p99, u.max].map { String(format: "%9.3g", $0) }.joined(separator: " ")
                    print(String(format: "  %4d ", u.unit) + cols + String(format: "  %5.1f%%", 100 * u.zero))
                }
            }
        }
    }

    /// "0-9,17" -> {0, ..., 9, 17}.
    static func parseUnits(_ s: String) throws -> Set<Int> {
        var out = Set<Int>()
        for part in s.split(separator: ",") {
            let r = part.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            if r.count == 1, let a = r[0], a >= 0 { out.insert(a) }
            else if r.count == 2, let a = r[0], let b = r[1], a >= 0, a <= b { out.formUnion(a...b) }
            else { throw SamplerError("units '\(s)': expected a list like 0-9,17") }
        }
        return out
    }
}
