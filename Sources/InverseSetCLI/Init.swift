import ArgumentParser
import CaffeImport
import Foundation
import Runtime

/// `inverse-set init NET.prototxt --out W.caffemodel [--seed S] [--weights FROM[,FROM2]]`
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a .caffemodel with weights drawn from the layers' fillers (for nets whose trained weights you do not have).",
        discussion: """
        With --weights, layers found by name in those caffemodels keep their trained weights
        and only the others are filled (net surgery: e.g. extract the generator of a training
        net into a deploy-only caffemodel).
        """)

    @Argument(help: "Network definition (.prototxt).") var prototxt: String
    @Option(help: "Output .caffemodel.") var out: String
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Copy weights by layer name from these caffemodels (comma-separated) before filling the rest.")
    var weights: String?
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            let registry = try common.makeRegistry()
            var graph = try Toolbox.load(prototxt, weights: nil)
            for w in (weights ?? "").split(separator: ",").map(String.init) where !w.isEmpty {
                try CaffeModel.attachWeights(&graph, from: w)
            }
            let copied = graph.nodes.filter { !$0.weights.isEmpty }.map(\.name)
            let net = try Net(graph: graph, registry: registry, seed: seed)
            try CaffeModel.writeCaffemodel(net.exportWeights(), to: out)
            let n = net.layers.reduce(0) { $0 + $1.parameters.reduce(0) { $0 + $1.count } }
            let filled = zip(graph.nodes, net.layers).filter { $0.0.weights.isEmpty && !$0.1.parameters.isEmpty }.map(\.0.name)
            var line = "wrote \(out): \(n) parameters"
            if weights != nil { line += "; copied \(copied.count) layer(s)" }
            line += filled.isEmpty ? "" : "; filled \(filled.joined(separator: ", ")) (seed \(seed))"
            print(line)
        }
    }
}

/// `inverse-set layers`
struct ListLayers: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "layers",
        abstract: "List the registered layer types, built-in and from plugins.")
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
