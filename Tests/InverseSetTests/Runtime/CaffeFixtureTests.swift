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

    struct Meta: Decodable {
        var inputs: [String: [Int]]
        var blobs: [String: [Int]]
        var backward: String?
    }

    static func files(_ dir: String, prefix: String) -> [(name: String, path: String)] {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return all.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".npy") }.sorted().map {
            (NPY.unescape(String($0.dropFirst(prefix.count).dropLast(4))), dir + "/" + $0)
        }
    }

    @Test("fixtures exist", .tags(.fixtures))
    func fixturesPresent() {
        #expect(Self.cases.count >= 58)
    }

    @Test("matches real Caffe", .tags(.fixtures), arguments: cases)
    func fixture(_ name: String) throws {
        let dir = Paths.fixture(name)
        let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/meta.json")))
        let graph = try CaffeModel.load(prototxt: dir + "/net.prototxt", weights: Self.weightsPath(name))
        try check(dir: dir, graph: graph, meta: meta, name: name)
    }

    /// The legacy V1 LeNet (V1 prototxt with input_dim header, V1 caffemodel
    /// with 4-d legacy blob headers) must reproduce real_lenet.
    @Test("legacy V1 LeNet equals real_lenet", .tags(.fixtures))
    func v1Lenet() throws {
        let v1 = Paths.fixture("v1_lenet")
        let graph = try CaffeModel.load(prototxt: v1 + "/lenet_v1.prototxt",
                                        weights: v1 + "/lenet_v1_legacyblobs.caffemodel")
        let ref = Paths.fixture("real_lenet")
        let meta = try JSONDecoder().decode(Meta.self, from: Data(contentsOf: URL(fileURLWithPath: ref + "/meta.json")))
        try check(dir: ref, graph: graph, meta: meta, name: "v1_lenet", onlyBlobs: ["prob"])
        // Same weights as the current-format model.
        let cur = try CaffeModel.load(prototxt: Paths.models + "/lenet_mnist/lenet.prototxt",
                                      weights: Paths.models + "/lenet_mnist/lenet_iter_10000.caffemodel")
        for node in cur.nodes where !node.weights.isEmpty {
            let old = try #require(graph.node(named: node.name))
            #expect(old.weights.map(\.data) == node.weights.map(\.data), "weights of \(node.name)")
        }
    }

    func check(dir: String, graph: Graph, meta: Meta, name: String, onlyBlobs: Set<String>? = nil) throws {
        let net = try Net(graph: graph, registry: try builtinRegistry())
        var feeds: [String: Tensor] = [:]
        for (input, path) in Self.files(dir, prefix: "in_") { feeds[input] = try NPY.read(path) }
        try net.forward(feeds)
        // Shapes of every blob Caffe reported (split blobs are Caffe internals).
        for (blob, dims) in meta.blobs where !blob.contains("_split_") && onlyBlobs == nil {
            #expect(try net.shape(blob) == Shape(dims), "\(name): shape of \(blob)")
        }
        for (blob, path) in Self.files(dir, prefix: "fwd_") where !blob.contains("_split_") {
            if let only = onlyBlobs, !only.contains(blob) { continue }
            let ref = try NPY.read(path)
            let ours = try #require(try net.blob(blob), "\(name): blob \(blob)")
            #expect(ours.shape.count == ref.shape.count, "\(name): size of \(blob)")
            guard ours.count == ref.count else { continue }
            let err = relativeError(ours.array, ref.array)
            #expect(err <= 1e-4, "\(name): forward \(blob) off by \(err)")
        }
        let topDiffs = Self.files(dir, prefix: "topdiff_")
        guard !topDiffs.isEmpty, meta.backward != nil else { return }
        var seeds: [ValueID: Tensor] = [:]
        for (blob, path) in topDiffs { seeds[try net.resolve(blob)] = try NPY.read(path) }
        let pgradFiles = Self.files(dir, prefix: "pgrad_")
        net.zeroParamGrads()
        let grads = try net.backward(seeds: seeds, gradientsFor: graph.inputs, paramGrads: !pgradFiles.isEmpty)
        for (input, path) in Self.files(dir, prefix: "grad_") {
            let ref = try NPY.read(path)
            let id = try net.resolve(input)
            let ours = try #require(grads[id], "\(name): gradient of \(input)")
            let err = relativeError(ours.array, ref.array)
            #expect(err <= 1e-3, "\(name): gradient of \(input) off by \(err)")
        }
        for (key, path) in pgradFiles {
            // pgrad_<layer>_<i>: the layer name may itself contain '_'.
            guard let us = key.lastIndex(of: "_"), let idx = Int(key[key.index(after: us)...]) else { continue }
            let layer = String(key[..<us])
            let li = try #require(graph.nodeIndex(named: layer), "\(name): layer \(layer)")
            let ref = try NPY.read(path)
            let pg = net.paramGrads[li]
            try #require(idx < pg.count, "\(name): param grad \(idx) of \(layer)")
            let err = relativeError(pg[idx].array, ref.array)
            #expect(err <= 1e-3, "\(name): param gradient \(layer)[\(idx)] off by \(err)")
        }
    }
}

extension Tag {
    @Tag static var fixtures: Self
}
