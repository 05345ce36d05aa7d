import Foundation
import Testing
import CaffeImport
import GraphIR
import ImageIO
import Layers
import Runtime
import TestSupport

/// Every case under Tests/Fixtures/caffe (made by real BVLC Caffe): shapes
/// from meta.json, every forward blob within 1e-4, every input and parameter
/// gradient within 1e-3 (relative to max(1, max|ref|)).
struct CaffeFixtureTests {
    static let cases: [String] = {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: Paths.fixtures)) ?? []).filter {
            fm.fileExists(atPath: Paths.fixture($0) + "/meta.json")
        }.sorted()
    }()

    /// Weights of the real_* cases live with the shipped models.
    static func weightsPath(_ name: String) -> String? {
        switch name {
        case "real_lenet": return Paths.models + "/lenet_mnist/lenet_iter_10000.caffemodel"
        case "real_mtcnn_onet": return Paths.models + "/mtcnn/det3.caffemodel"
        default:
            let p = Paths.fixture(name) + "/weights.caffemodel"
            return FileManager.default.fileExists(atPath: p) ? p : nil
        }
    }

    @Test("fixtures exist", .tags(.fixtures))
    func fixturesPresent() {
        #expect(Self.cases.count >= 58)
    }

    @Test("matches real Caffe", .tags(.fixtures), arguments: cases)
    func fixture(_ name: String) throws {
        try check(name, convolution: .automatic)
    }

    /// One fixture with the given convolution algorithm.
    func check(_ name: String, convolution: ConvolutionAlgorithm) throws {
        let dir = Paths.fixture(name)
        let graph = try CaffeModel.load(prototxt: dir + "/net.prototxt", weights: Self.weightsPath(name))
        try checkFixture(dir: dir, graph: graph, registry: try builtinRegistry(), name: "\(name) (\(convolution))",
                         convolution: convolution)
    }

    /// The legacy V1 LeNet (V1 prototxt with input_dim header, V1 caffemodel
    /// with 4-d legacy blob headers) must reproduce real_lenet.
    @Test("legacy V1 LeNet equals real_lenet", .tags(.fixtures))
    func v1Lenet() throws {
        let v1 = Paths.fixture("v1_lenet")
        let graph = try CaffeModel.load(prototxt: v1 + "/lenet_v1.prototxt",
                                        weights: v1 + "/lenet_v1_legacyblobs.caffemodel")
        let ref = Paths.fixture("real_lenet")
        try checkFixture(dir: ref, graph: graph, registry: try builtinRegistry(), name: "v1_lenet", onlyBlobs: ["prob"])
        // Same weights as the current-format model.
        let cur = try CaffeModel.load(prototxt: Paths.models + "/lenet_mnist/lenet.prototxt",
                                      weights: Paths.models + "/lenet_mnist/lenet_iter_10000.caffemodel")
        for node in cur.nodes where !node.weights.isEmpty {
            let old = try #require(graph.node(named: node.name))
            #expect(old.weights.map(\.data) == node.weights.map(\.data), "weights of \(node.name)")
        }
    }
}

extension Tag {
    @Tag static var fixtures: Self
}
