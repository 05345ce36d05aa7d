import Foundation
import Testing
import CaffeImport
import GraphIR
import ImageIO
import Runtime
import TestSupport

/// One case made by real Caffe: `meta.json` (input and blob shapes, whether
/// it has a backward pass) and npy files named by prefix (in_, fwd_,
/// topdiff_, grad_, pgrad_<layer>_<i>).
struct FixtureMeta: Decodable {
    var inputs: [String: [Int]]
    var blobs: [String: [Int]]
    var backward: String?

    static func read(_ dir: String) throws -> FixtureMeta {
        try JSONDecoder().decode(FixtureMeta.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/meta.json")))
    }
}

/// The npy files of a case with this prefix, as (blob name, path).
func fixtureFiles(_ dir: String, prefix: String) -> [(name: String, path: String)] {
    let all = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    return all.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".npy") }.sorted().map {
        (NPY.unescape(String($0.dropFirst(prefix.count).dropLast(4))), dir + "/" + $0)
    }
}

/// Runs `graph` on a fixture case and compares with Caffe: every blob shape
/// (split blobs are Caffe internals), forward blobs within 1e-4, input and
/// parameter gradients within 1e-3, relative to max(1, max|ref|).
/// `onlyBlobs` limits the forward comparison (and skips the shape check);
/// `skipInputGrads` names input gradients not to compare. Returns the net and
/// the input gradients.
@discardableResult
func checkFixture(dir: String, graph: Graph, registry: LayerRegistry, name: String,
                  onlyBlobs: Set<String>? = nil, skipInputGrads: Set<String> = [],
                  convolution: ConvolutionAlgorithm = .automatic) throws -> (Net, [String: Tensor]) {
    let meta = try FixtureMeta.read(dir)
    let net = try Net(graph: graph, registry: registry)
    net.context.convolution = convolution
    var feeds: [String: Tensor] = [:]
    for (input, path) in fixtureFiles(dir, prefix: "in_") { feeds[input] = try NPY.read(path) }
    try net.forward(feeds)
    for (blob, dims) in meta.blobs where !blob.contains("_split_") && onlyBlobs == nil {
        #expect(try net.shape(blob) == Shape(dims), "\(name): shape of \(blob)")
    }
    for (blob, path) in fixtureFiles(dir, prefix: "fwd_") where !blob.contains("_split_") {
        if let only = onlyBlobs, !only.contains(blob) { continue }
        let ref = try NPY.read(path)
        let ours = try #require(try net.blob(blob), "\(name): blob \(blob)")
        try #require(ours.count == ref.count, "\(name): size of \(blob)")
        let err = relativeError(ours.array, ref.array)
        #expect(err <= 1e-4, "\(name): forward \(blob) off by \(err)")
    }
    var inputGrads: [String: Tensor] = [:]
    let topDiffs = fixtureFiles(dir, prefix: "topdiff_")
    guard !topDiffs.isEmpty, meta.backward != nil else { return (net, inputGrads) }
    var seeds: [ValueID: Tensor] = [:]
    for (blob, path) in topDiffs { seeds[try net.resolve(blob)] = try NPY.read(path) }
    let pgradFiles = fixtureFiles(dir, prefix: "pgrad_")
    net.zeroParamGrads()
    let grads = try net.backward(seeds: seeds, gradientsFor: graph.inputs, paramGrads: !pgradFiles.isEmpty)
    for (input, path) in fixtureFiles(dir, prefix: "grad_") {
        let ours = try #require(grads[try net.resolve(input)], "\(name): gradient of \(input)")
        inputGrads[input] = ours
        if skipInputGrads.contains(input) { continue }
        let err = relativeError(ours.array, try NPY.read(path).array)
        #expect(err <= 1e-3, "\(name): gradient of \(input) off by \(err)")
    }
    for (key, path) in pgradFiles {
        // pgrad_<layer>_<i>: the layer name may itself contain '_'.
        guard let us = key.lastIndex(of: "_"), let idx = Int(key[key.index(after: us)...]) else { continue }
        let layer = String(key[..<us])
        let li = try #require(graph.nodeIndex(named: layer), "\(name): layer \(layer)")
        let pg = net.paramGrads[li]
        try #require(idx < pg.count, "\(name): param grad \(idx) of \(layer)")
        let ref = try NPY.read(path)
        try #require(pg[idx].count == ref.count, "\(name): size of param grad \(layer)[\(idx)]")
        let err = relativeError(pg[idx].array, ref.array)
        #expect(err <= 1e-3, "\(name): param gradient \(layer)[\(idx)] off by \(err)")
    }
    return (net, inputGrads)
}
