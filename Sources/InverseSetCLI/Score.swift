import ArgumentParser
import CaffeImport
import Foundation
import GraphIR
import ImageIO
import Runtime

/// `inverse-set score NET.prototxt --weights W[,W2] --iterations N [--stats BLOB]...`
/// Caffe's `caffe test`: runs a TEST-phase net fed by its data layers and
/// averages every output over the batches; optionally collects per-channel
/// activation statistics of chosen blobs (what code bounds and bands are
/// made from).
struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score a network on its test data (Caffe's `caffe test`) and collect activation statistics.",
        discussion: """
        The net is built in the TEST phase and fed by its own data layers (IDXData, ImageData);
        every output blob of up to 64 values (Accuracy, losses, ...) is averaged over --iterations batches, as
        `caffe test -model NET -weights W -iterations N` does. Several weight files are
        comma-separated and copied by layer name in order (later files win).
        --stats BLOB collects, per channel of BLOB (axis 1; over the batch and any spatial
        axes), the minimum, maximum, mean and standard deviation, written to
        DIR/BLOB.{min,max,mean,std}.txt (whitespace-separated, one value per channel) with
        --stats-out DIR, and DIR/BLOB.upper.txt = min(max, mean + 3 std), a robust upper
        bound for code boxes. The last line of stdout is a JSON object: "iterations", "outputs"
        (name -> mean) and, with --stats, "stats" (blob -> file prefix).

        Example: inverse-set score Models/fashion/classifier_train.prototxt --weights Models/fashion/classifier.caffemodel --iterations 100
        """.reflowed)

    @Argument(help: "Network definition (.prototxt) with data layers for the TEST phase.") var prototxt: String
    @Option(help: "Trained weights (.caffemodel); comma-separated for several.") var weights: String?
    @Option(help: "Number of batches to run.") var iterations: Int = 50
    @Option(help: "Collect per-channel statistics of this blob (repeatable).") var stats: [String] = []
    @Option(help: "Folder for the statistics files (default: the current folder).") var statsOut: String = "."
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    /// Output blobs with more elements per batch are not averaged as scores.
    static let maxScoreSize = 64

    func run() throws {
        try reportingErrors {
            guard iterations > 0 else { throw RuntimeError.input("--iterations must be at least 1, got \(iterations)") }
            let registry = try common.makeRegistry()
            var graph = try Toolbox.load(prototxt, weights: nil)
            try Toolbox.attachWeights(&graph, list: weights)
            guard graph.inputs.isEmpty else {
                let names = graph.inputs.map { graph.values[$0.index].blob }.joined(separator: ", ")
                throw RuntimeError.input("\(prototxt): the net reads Input blobs (\(names)) that nothing feeds; score needs a net with data layers (IDXData, ImageData); use `run` to feed arrays")
            }
            let net = try Net(graph: graph, registry: registry, phase: .test,
                              allowMissingWeights: missingWeights.allowMissingWeights, threads: common.computeThreads)
            Toolbox.warnAboutWeights(graph)
            Toolbox.noteFilledLayers(net, seed: 0)
            let statValues = try stats.map { b -> ValueID in try net.resolve(b) }
            let plan = try net.plan(seeds: [], gradientsFor: [], keep: graph.outputs + statValues)
            var collectors = stats.map { _ in ChannelStats() }
            var sums: [(String, Double)] = []
            for i in 0..<iterations {
                try net.forward([:], plan: plan)
                var k = 0
                for v in graph.outputs {
                    // Scores (accuracy, losses) are small; a large output blob
                    // (features) is what --stats is for.
                    guard let t = net.tensor(v), t.count <= Score.maxScoreSize else { continue }
                    let name = graph.values[v.index].blob
                    for e in 0..<t.count {
                        let label = t.count == 1 ? name : "\(name)[\(e)]"
                        if i == 0 { sums.append((label, 0)) }
                        sums[k].1 += Double(t[e])
                        k += 1
                    }
                }
                for (j, v) in statValues.enumerated() {
                    if let t = net.tensor(v) { collectors[j].add(t) }
                }
                if (i + 1) % 10 == 0 || i + 1 == iterations {
                    FileHandle.standardError.write(Data("\rbatch \(i + 1)/\(iterations)".utf8))
                }
            }
            FileHandle.standardError.write(Data("\n".utf8))
            var outputs: [String: Double] = [:]
            for (name, s) in sums {
                let mean = s / Double(iterations)
                outputs[name] = mean
                print("\(name) = \(String(format: "%.6g", mean))")
            }
            var files: [String: String] = [:]
            if !stats.isEmpty { try Toolbox.makeDirectory(statsOut, option: "--stats-out") }
            for (j, blob) in stats.enumerated() {
                let prefix = statsOut + "/" + NPY.fileSafe(blob)
                try collectors[j].write(prefix: prefix)
                files[blob] = prefix
                print("\(blob): per-channel min/max/mean/std over \(collectors[j].samples) values each -> \(prefix).{min,max,mean,std,upper}.txt")
            }
            var summary: [String: Any] = ["iterations": iterations, "outputs": outputs]
            if !files.isEmpty { summary["stats"] = files }
            let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

/// Streaming per-channel statistics (axis 1; all other axes pooled), in
/// double precision with Welford's update.
struct ChannelStats {
    var minimum: [Float] = [], maximum: [Float] = [], mean: [Double] = [], m2: [Double] = []
    var samples = 0

    mutating func add(_ t: Tensor) {
        let dims = t.shape.dims
        let n = dims.first ?? 1, c = dims.count > 1 ? dims[1] : 1
        let inner = dims.count > 2 ? dims[2...].reduce(1, *) : 1
        if minimum.isEmpty {
            minimum = Array(repeating: .infinity, count: c)
            maximum = Array(repeating: -.infinity, count: c)
            mean = Array(repeating: 0, count: c)
            m2 = Array(repeating: 0, count: c)
        }
        let p = t.data
        for ch in 0..<min(c, minimum.count) {
            var count = samples
            var mu = mean[ch], s2 = m2[ch], lo = minimum[ch], hi = maximum[ch]
            for b in 0..<n {
                let base = (b * c + ch) * inner
                for k in 0..<inner {
                    let x = p[base + k]
                    lo = min(lo, x); hi = max(hi, x)
                    count += 1
                    let d = Double(x) - mu
                    mu += d / Double(count)
                    s2 += d * (Double(x) - mu)
                }
            }
            mean[ch] = mu; m2[ch] = s2; minimum[ch] = lo; maximum[ch] = hi
        }
        samples += n * inner
    }

    func write(prefix: String) throws {
        func line<T>(_ xs: [T], _ f: (T) -> String) -> String { xs.map(f).joined(separator: " ") + "\n" }
        try Toolbox.writeText(line(minimum) { String(format: "%.6g", Double($0)) }, to: prefix + ".min.txt")
        try Toolbox.writeText(line(maximum) { String(format: "%.6g", Double($0)) }, to: prefix + ".max.txt")
        try Toolbox.writeText(line(mean) { String(format: "%.6g", $0) }, to: prefix + ".mean.txt")
        try Toolbox.writeText(line(standardDeviations) { String(format: "%.6g", $0) }, to: prefix + ".std.txt")
        try Toolbox.writeText(line(upperBounds) { String(format: "%.6g", $0) }, to: prefix + ".upper.txt")
    }

    /// The sample standard deviation per channel.
    var standardDeviations: [Double] { m2.map { samples > 1 ? ($0 / Double(samples - 1)).squareRoot() : 0 } }

    /// A robust upper bound per channel: mean + 3 std, never above the maximum seen.
    var upperBounds: [Double] {
        zip(zip(mean, standardDeviations), maximum).map { ms, hi in min(Double(hi), ms.0 + 3 * ms.1) }
    }
}
