import ArgumentParser
import Foundation
import ImageIO
import Sampler
import SamplerIO

/// `inverse-set diversity DIR`: recompute the metrics of any sample folder.
struct DiversityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diversity",
        abstract: "Recompute the metrics of a sample folder (fraction in band, mean pairwise E distance).",
        discussion: "Example: inverse-set diversity out/sneaker")
    @Argument(help: "A folder written by `inverse-set sample`.") var dir: String
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            _ = try common.makeRegistry()   // --plugin is accepted (and checked) by every subcommand
            let folder = try SampleFolder(existing: dir)
            let m = folder.manifest
            let rows = folder.embeddings
            let inBand = m.samples.isEmpty ? 0 : Double(m.samples.filter { r in
                zip(r.activations, m.bands[r.band]).allSatisfy { $1.contains($0) }
            }.count) / Double(m.samples.count)
            let summary: [String: Any] = ["samples": m.samples.count, "in_band": inBand,
                                          "diversity": Metrics.meanPairwiseDistance(rows)]
            print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
