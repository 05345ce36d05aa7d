import ArgumentParser
import CaffeImport
import Foundation
import GraphIR
import Runtime

/// `inverse-set init NET.prototxt --out W.caffemodel [--seed S] [--weights FROM[,FROM2]]`
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a .caffemodel with weights drawn from the layers' fillers (for nets whose trained weights you do not have).",
        discussion: """
        With --weights, layers found by name in those caffemodels keep their trained weights and only the others are filled (net surgery: e.g. extract the generator of a training net into a deploy-only caffemodel).

        A file with filled layers is marked as random in its net name: every command that loads it warns, and sample reports show it. Name it so that it cannot pass for trained weights (random_*.caffemodel); a file listed in a SHA256SUMS next to it (the real weights of tools/fetch-paper-models) is never overwritten.

        Example: inverse-set init Models/caffenet/deploy.prototxt --out Models/caffenet-fc6/random_caffenet.caffemodel
        """.reflowed)

    @Argument(help: "Network definition (.prototxt).") var prototxt: String
    @Option(help: "Output .caffemodel.") var out: String
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Copy weights by layer name from these caffemodels (comma-separated) before filling the rest.")
    var weights: String?
    @Option(help: ArgumentHelp("Filler for weight blobs whose layer declares no weight_filler: msra, xavier, gaussian:STD, or caffe (Caffe's default, constant 0).",
                               discussion: "Deploy prototxts declare no fillers, so Caffe's rule would give all-zero weights."))
    var defaultFiller: String = "msra"
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            try Init.refuseToReplaceRealWeights(out)
            let registry = try common.makeRegistry()
            var graph = try Toolbox.load(prototxt, weights: nil)
            try Toolbox.attachWeights(&graph, list: weights)
            Toolbox.warnAboutWeights(graph)
            let copied = graph.nodes.filter { !$0.weights.isEmpty }.map(\.name)
            // Filling what the files leave out is what init is for (its output line lists those layers).
            let net = try Net(graph: graph, registry: registry, seed: seed,
                              defaultWeightFiller: try Init.filler(defaultFiller), allowMissingWeights: true,
                              threads: common.computeThreads)
            let n = net.layers.reduce(0) { $0 + $1.parameters.reduce(0) { $0 + $1.count } }
            let filled = zip(graph.nodes, net.layers).filter { $0.0.weights.isEmpty && !$0.1.parameters.isEmpty }.map(\.0.name)
            var exported = net.exportWeights()
            if !filled.isEmpty {
                exported.name = "\(graph.name) \(WeightSource.randomMarker) (seed \(seed), \(filled.count) of \(net.layers.filter { !$0.parameters.isEmpty }.count) layers with parameters)]"
            }
            try CaffeModel.writeCaffemodel(exported, to: out)
            var line = "wrote \(out): \(n) parameters"
            if weights != nil { line += "; copied \(copied.count) layer(s)" }
            line += filled.isEmpty ? "" : "; filled \(filled.joined(separator: ", ")) (seed \(seed))"
            print(line)
        }
    }
}

extension Init {
    /// `init` never replaces a file that a SHA256SUMS next to it lists: that
    /// name belongs to downloaded, trained weights.
    static func refuseToReplaceRealWeights(_ out: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDir), isDir.boolValue {
            throw RuntimeError.input("\(out): is a folder; give --out a file name (e.g. \(out)/random_weights.caffemodel)")
        }
        let url = URL(fileURLWithPath: out)
        let sums = url.deletingLastPathComponent().appendingPathComponent("SHA256SUMS").path
        guard let text = try? String(contentsOfFile: sums, encoding: .utf8) else { return }
        let listed = text.split(separator: "\n").contains { line in
            line.split(separator: " ", omittingEmptySubsequences: true).last.map { $0.hasPrefix("*") ? String($0.dropFirst()) : String($0) } == url.lastPathComponent
        }
        if listed {
            throw RuntimeError.input("\(out): \(sums) lists it as downloaded trained weights; init writes random weights, so give --out another name (e.g. random_\(url.lastPathComponent))")
        }
    }

    /// The FillerParameter of a --default-filler value (nil: Caffe's rule).
    static func filler(_ spec: String) throws -> ParamMessage? {
        var m = ParamMessage()
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        switch parts.first ?? "" {
        case "caffe": return nil
        case "msra", "xavier":
            guard parts.count == 1 else { break }
            m.set("type", .string(parts[0]))
            return m
        case "gaussian":
            guard parts.count == 2, let std = Double(parts[1]), std > 0 else { break }
            m.set("type", .string("gaussian"))
            m.set("std", .double(std))
            return m
        default: break
        }
        throw RuntimeError.input("--default-filler '\(spec)': expected msra, xavier, gaussian:STD (STD > 0) or caffe")
    }
}

/// `inverse-set layers`
struct ListLayers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "layers",
        abstract: "List the registered layer types, built-in and from plugins.",
        discussion: "Example: inverse-set layers --plugin .build/release/libMishPlugin.so")
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            let registry = try common.makeRegistry()
            let width = registry.types.map(\.count).max() ?? 0
            for e in registry.allEntries {
                print(e.type.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + e.origin)
            }
        }
    }
}
