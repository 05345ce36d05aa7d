import CaffeImport
import Foundation
import GraphIR
import ImageIO
import Layers
import Runtime

/// The input formats the tool reads from users, each with the path its bytes
/// take through the tool (parse, then what `inspect`, `run` or a data layer do next).
enum InputFormat: String, CaseIterable {
    case prototxt, caffemodel, npy, png
}

/// Runs one input through the readers. Whatever the bytes, the outcome must be
/// "parsed" or a clean error; a signal (crash, stack overflow, abort) is a bug.
enum Probes {
    static let registry: LayerRegistry? = try? builtinRegistry()

    /// nil: parsed; else the error's message.
    static func run(_ format: InputFormat, _ bytes: [UInt8]) -> String? {
        do {
            switch format {
            case .prototxt: try prototxt(bytes)
            case .caffemodel: try caffemodel(bytes)
            case .npy: _ = try NPY.decode(bytes, file: "fuzz.npy")
            case .png: try png(bytes)
            }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// `inspect`'s path: parse, upgrade, build the graph, infer every shape.
    static func prototxt(_ bytes: [UInt8]) throws {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw ProbeError("not UTF-8") }
        let file = "fuzz.prototxt"
        let def = try CaffeModel.upgrade(try CaffeModel.parseText(text, file: file), file: file)
        let graph = try CaffeModel.buildGraph(def, file: file)
        guard let registry else { throw ProbeError("no registry") }
        _ = try Net(graph: graph, registry: registry, lazyParameters: true)
    }

    /// A caffemodel holds a whole net: decode, upgrade, build it with the
    /// weights it carries (shape-checked against its layers).
    static func caffemodel(_ bytes: [UInt8]) throws {
        let file = "fuzz.caffemodel"
        let def = try CaffeModel.upgrade(try CaffeModel.decodeBinary(bytes, type: "caffe.NetParameter", file: file), file: file)
        let graph = try CaffeModel.buildGraph(def, file: file)
        guard let registry else { throw ProbeError("no registry") }
        _ = try Net(graph: graph, registry: registry, lazyParameters: true)
    }

    /// `run --input x.png`'s path: decode, then Caffe preprocessing to a 1x3x24x24 input.
    static func png(_ bytes: [UInt8]) throws {
        let image = try PNGImage.decode(bytes, origin: "fuzz.png")
        let pre = Preprocessor(channelSwap: [2, 1, 0], rawScale: 255, scale: 1, mean: nil, meanValues: [104, 117, 123],
                               centerCrop: bytes.count % 2 == 0)
        _ = try pre.tensor(from: image, shape: Shape([1, 3, 24, 24]))
    }
}

struct ProbeError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
