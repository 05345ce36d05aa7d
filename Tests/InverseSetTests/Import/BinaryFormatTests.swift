import Foundation
import Testing
import CaffeImport
import GraphIR
import Layers
import Runtime
import TestSupport

/// Binary caffemodels: decoding, legacy blobs, bad files, the writer.
struct BinaryFormatTests {
    let lenetProto = Paths.models + "/lenet_mnist/lenet.prototxt"
    let lenetWeights = Paths.models + "/lenet_mnist/lenet_iter_10000.caffemodel"

    func tempFile(_ bytes: [UInt8], _ name: String = "x.caffemodel") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("invset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func message(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }

    @Test func lenetWeightsDecode() throws {
        let g = try CaffeModel.load(prototxt: lenetProto, weights: lenetWeights)
        let shapes = g.nodes.filter { !$0.weights.isEmpty }.map { "\($0.name):" + $0.weights.map(\.shape.description).joined(separator: ",") }
        #expect(shapes == ["conv1:20x1x5x5,20", "conv2:50x20x5x5,50", "ip1:500x800,500", "ip2:10x500,10"])
    }

    @Test func badFilesGiveClearErrors() throws {
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: lenetWeights)))
        let truncated = try tempFile(Array(good.prefix(good.count / 2)))
        let m1 = message { _ = try CaffeModel.load(prototxt: lenetProto, weights: truncated) }
        #expect(m1.contains(truncated) && m1.contains("truncated"), "\(m1)")
        #expect(m1.contains("layer["), "names the field path: \(m1)")

        // A length prefix that claims more bytes than the file holds: field 100 (layer), length 1000.
        let liar = try tempFile([0xA2, 0x06, 0xE8, 0x07, 0x0A, 0x01, 0x61])
        let m2 = message { _ = try CaffeModel.readCaffemodel(liar) }
        #expect(m2.contains("length prefix claims 1000 bytes but only 3 remain"), "\(m2)")

        let empty = try tempFile([])
        #expect(message { _ = try CaffeModel.readCaffemodel(empty) }.contains("file is empty"))
        #expect(message { _ = try CaffeModel.readPrototxt(try tempFile([], "e.prototxt")) }.contains("file is empty"))
        #expect(message { _ = try CaffeModel.readCaffemodel("/nonexistent/w.caffemodel") }.contains("/nonexistent/w.caffemodel: no such file"))
        #expect(message { _ = try CaffeModel.readCaffemodel(NSTemporaryDirectory()) }.contains("is a directory"))

        let garbage = try tempFile([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        let garbled = message { _ = try CaffeModel.readCaffemodel(garbage) }
        #expect(garbled.contains(garbage) && garbled.contains("byte 0"), "\(garbled)")
    }

    @Test func weightsThatDoNotFitThePrototxt() throws {
        // MTCNN O-Net weights loaded into LeNet's definition: conv1 differs.
        let g = try CaffeModel.load(prototxt: Paths.models + "/mtcnn/det3.prototxt", weights: lenetWeights)
        // LeNet's conv1 name matches det3's conv1; shapes 20x1x5x5 vs 32x3x3x3.
        let m = message { _ = try Net(graph: g, registry: try builtinRegistry()) }
        #expect(m.contains("layer 'conv1': weight blob 0 in the caffemodel has shape 20x1x5x5, but the prototxt needs 32x3x3x3"), "\(m)")
    }

    @Test func writerRoundTrips() throws {
        let g = try CaffeModel.load(prototxt: lenetProto, weights: lenetWeights)
        let path = try tempFile([], "round.caffemodel")
        try CaffeModel.writeCaffemodel(g, to: path)
        var back = try CaffeModel.load(prototxt: lenetProto)
        try CaffeModel.attachWeights(&back, from: path)
        for (a, b) in zip(g.nodes, back.nodes) {
            #expect(a.name == b.name)
            #expect(a.weights.map(\.shape) == b.weights.map(\.shape))
            #expect(a.weights.map(\.data) == b.weights.map(\.data))
        }
        // The written file also carries the structure: it loads as a net by itself.
        let model = try CaffeModel.readCaffemodel(path)
        #expect(model.messages("layer").map { try! $0.string("name") } == g.nodes.map(\.name))
    }

    /// Blobs stored as double_data (and with legacy num/channels/height/width
    /// headers) load as float weights of the declared shape.
    @Test func doubleDataAndLegacyHeaders() throws {
        let text = """
        name: "d"
        layer { name: "ip" type: "InnerProduct"
                blobs { shape { dim: 2 dim: 3 } double_data: 0.5 double_data: -1.25 double_data: 2
                        double_data: 3 double_data: 4.5 double_data: -6 }
                blobs { num: 1 channels: 1 height: 1 width: 2 data: 0.25 data: -0.75 } }
        """
        let tree = try CaffeModel.parseText(text, file: "d.prototxt", schema: CaffeSchemaRegistry.shared.netParameter)
        let path = try tempFile(try CaffeModel.encodeBinary(tree), "double.caffemodel")
        let prototxt = try tempFile(Array("""
        input: "x" input_shape { dim: 1 dim: 3 }
        layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 2 } }
        """.utf8), "double.prototxt")
        let g = try CaffeModel.load(prototxt: prototxt, weights: path)
        #expect(g.nodes[1].weights.map(\.data) == [[0.5, -1.25, 2, 3, 4.5, -6], [0.25, -0.75]])
        let net = try Net(graph: g, registry: try builtinRegistry())
        try net.forward(["x": Tensor(shape: [1, 3], values: [1, 1, 1])])
        #expect(try net.blob("y")!.array == [1.5, 0.75])
    }
    // The mutation test of every reader runs in a child process: MutationTests.
}
