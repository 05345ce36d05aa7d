import ArgumentParser
import CaffeImport
import Foundation
import Runtime

/// `inverse-set init NET.prototxt --out W.caffemodel [--seed S]`
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a .caffemodel with weights drawn from the layers' fillers (for nets whose trained weights you do not have).")

    @Argument(help: "Network definition (.prototxt).") var prototxt: String
    @Option(help: "Output .caffemodel.") var out: String
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            let registry = try common.makeRegistry()
            let graph = try Toolbox.load(prototxt, weights: nil)
            let net = try Net(graph: graph, registry: registry, seed: seed)
            try CaffeModel.writeCaffemodel(net.exportWeights(), to: out)
            let n = net.layers.reduce(0) { $0 + $1.parameters.reduce(0) { $0 + $1.count } }
            print("wrote \(out): \(n) parameters, seed \(seed)")
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
