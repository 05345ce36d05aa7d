import CaffeImport
import Foundation
import GraphIR
import ImageIO
import Layers
import Runtime
import SamplerIO

/// Shared plumbing of the subcommands: registry set-up, model loading.
enum Toolbox {
    static func registry(plugins: [String]) throws -> LayerRegistry {
        // ImageData layers (train, score) read PNG through ImageIO.
        let r = try builtinRegistry(imageDecoder: PNGFileDecoder())
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

    static func warn(_ text: String) {
        FileHandle.standardError.write(Data("inverse-set: warning: \(text.clippedForDisplay(limit: 2_000))\n".utf8))
    }
    static func note(_ text: String) {
        FileHandle.standardError.write(Data("inverse-set: note: \(text.clippedForDisplay(limit: 2_000))\n".utf8))
    }

    /// Warnings about the weights files attached to `graph`: layers of a file
    /// that match no layer of the net (Caffe ignores them silently), and
    /// NaN or infinite values.
    /// A pipeline file with its nets checked: unused layers of the weights
    /// files are warned about, and nets (or layers) without weights noted.
    /// Its nets compute on `threads` threads.
    static func loadPipeline(_ path: String, registry: LayerRegistry, allowMissingWeights: Bool, threads: Int) throws -> LoadedPipeline {
        let loaded = try LoadedPipeline.load(BuildInfo.pipeline(path), registry: registry, allowMissingWeights: allowMissingWeights,
                                             threads: threads)
        let p = loaded.pipeline
        for net in [p.generator, p.classifier] + (p.encoder.map { [$0] } ?? []) {
            warnAboutWeights(net.graph)
            noteFilledLayers(net, seed: 1)
        }
        return loaded
    }

    static func warnAboutWeights(_ graph: Graph) {
        for source in graph.weightSources {
            if source.isRandom {
                warn("\(source.file) holds random weights written by `inverse-set init`, not trained ones; outputs mean nothing until trained weights are given")
            }
            if !source.unmatchedLayers.isEmpty {
                warn("\(source.file): \(source.unmatchedLayers.count) layer(s) with weights match no layer of the net and are ignored: \(listForDisplay(source.unmatchedLayers))")
            }
            for w in source.warnings { warn(w) }
        }
    }

    /// Says where a built net's parameters came from when some were drawn
    /// from fillers: random weights must never pass for trained ones.
    static func noteFilledLayers(_ net: Net, seed: UInt64) {
        guard !net.filledLayers.isEmpty else { return }
        let what = "\(net.filledLayers.count) layer(s) (\(listForDisplay(net.filledLayers, limit: 8))) use random weights from their fillers (seed \(seed))"
        if net.graph.weightSources.isEmpty {
            note("no --weights given: \(what); outputs mean nothing until trained weights are given")
        } else {
            warn("--allow-missing-weights: \(what)")
        }
    }

    /// Warns when an input array holds NaN or infinite values.
    static func warnAboutNonFinite(_ t: Tensor, file: String, input: String) {
        var bad = 0
        for i in 0..<t.count where !t[i].isFinite { bad += 1 }
        if bad > 0 {
            warn("\(file): \(bad) of the \(t.count) values fed to input '\(input)' are NaN or infinite; every output that depends on them will be too")
        }
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

    static func makeDirectory(_ path: String, option: String = "--out") throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
            throw RuntimeError.input("\(path): is a file, not a folder; choose another \(option)")
        }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw RuntimeError.input("\(path): cannot create the output folder (\((error as NSError).localizedFailureReason ?? error.localizedDescription))")
        }
    }

    static func writeText(_ s: String, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(s.utf8)) else {
            throw RuntimeError.input("\(path): cannot be written")
        }
    }
}

/// The ImageData layer's decoder for PNG files, ImageIO's reader behind
/// Runtime's decoder protocol. It lives here, where both are known: neither
/// ImageIO nor the layers depend on the other.
struct PNGFileDecoder: ImageFileDecoder {
    func decodeImage(atPath path: String) throws -> DecodedImage {
        let img = try PNGImage.read(path)
        return DecodedImage(width: img.width, height: img.height, channels: img.channels,
                            pixels: img.pixels.map { Float($0) })
    }
}
