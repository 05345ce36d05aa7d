import CaffeImport
import Foundation
import GraphIR
import Layers
import Runtime

/// Shared plumbing of the subcommands: registry set-up, model loading.
enum Toolbox {
    static func registry(plugins: [String]) throws -> LayerRegistry {
        let r = try builtinRegistry()
        var all = plugins
        if let env = ProcessInfo.processInfo.environment["INVERSE_SET_PLUGINS"], !env.isEmpty {
            all += env.split(separator: ":").map(String.init)
        }
        for p in all { try PluginLoader.load(path: p, into: r) }
        return r
    }

    static func load(_ prototxt: String, weights: String?, phase: String = "TEST") throws -> Graph {
        try CaffeModel.load(prototxt: prototxt, weights: weights, state: NetState(phase: phase))
    }

    /// The files of a comma-separated --weights list (Caffe's `-weights a,b`).
    static func weightFiles(_ list: String?) -> [String] {
        (list ?? "").split(separator: ",").map(String.init).filter { !$0.isEmpty }
    }

    /// Copies weights by layer name from each file of a --weights list, in order.
    static func attachWeights(_ graph: inout Graph, list: String?) throws {
        for w in weightFiles(list) { try CaffeModel.attachWeights(&graph, from: w) }
    }

    /// Parses NAME=VALUE pairs of a repeatable option.
    static func pairs(_ items: [String], option: String) throws -> [(String, String)] {
        try items.map { s in
            guard let eq = s.firstIndex(of: "="), eq != s.startIndex else {
                throw RuntimeError.input("--\(option) expects NAME=FILE, got '\(s)'")
            }
            return (String(s[..<eq]), String(s[s.index(after: eq)...]))
        }
    }

    static func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw RuntimeError.input("\(path): cannot create the output folder (\(error.localizedDescription))")
        }
    }

    static func writeText(_ s: String, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(s.utf8)) else {
            throw RuntimeError.input("\(path): cannot be written")
        }
    }
}
