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

/// What a fixture's float32 results are judged against.
enum FixtureTruth {
    /// Real Caffe's files (float32 too): the default.
    case caffe
    /// A float64 re-computation of the same net (`Float64Reference`), for
    /// deep nets where two float32 implementations differ by rounding alone;
    /// Caffe's files are then compared with it too, and both figures reported.
    case float64
}

/// One compared array: our error and Caffe's, against the truth in use.
struct FixtureFigure: CustomStringConvertible {
    var what: String
    /// |ours - Caffe| / max(1, max|Caffe|).
    var oursVsCaffe: Double
    /// Against float64, when computed.
    var oursVsFloat64: Double?
    var caffeVsFloat64: Double?
    /// The same two against float64 relative to max|float64| alone (no floor
    /// of 1: small gradients of deep nets show their real relative error).
    var oursVsFloat64Scaled: Double?
    var caffeVsFloat64Scaled: Double?
    var description: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.2e", $0) } ?? "-" }
        var text = "\(what): ours-Caffe \(f(oursVsCaffe)), ours-float64 \(f(oursVsFloat64)), Caffe-float64 \(f(caffeVsFloat64))"
        if oursVsFloat64Scaled != nil {
            text += " (of max|float64|: ours \(f(oursVsFloat64Scaled)), Caffe \(f(caffeVsFloat64Scaled)))"
        }
        return text
    }
}

/// Runs `graph` on a fixture case and compares with Caffe: every blob shape
/// (split blobs are Caffe internals), forward blobs within 1e-4, input and
/// parameter gradients within 1e-3, relative to max(1, max|ref|).
/// `onlyBlobs` limits the forward comparison (and skips the shape check);
/// `skipInputGrads` names input gradients not to compare. Returns the net and
/// the input gradients.
///
/// With `truth: .float64` the forward blobs and input gradients are judged
/// against a float64 re-computation instead (same tolerances), and
/// `figures` receives, per array, our error and Caffe's against it next to
/// the ours-vs-Caffe figure. (Parameter gradients are still compared with Caffe.)
@discardableResult
func checkFixture(dir: String, graph: Graph, registry: LayerRegistry, name: String,
                  onlyBlobs: Set<String>? = nil, skipInputGrads: Set<String> = [],
                  convolution: ConvolutionAlgorithm = .automatic,
                  truth: FixtureTruth = .caffe, figures: UnsafeMutablePointer<[FixtureFigure]>? = nil) throws -> (Net, [String: Tensor]) {
    let meta = try FixtureMeta.read(dir)
    let net = try Net(graph: graph, registry: registry)
    net.context.convolution = convolution
    var feeds: [String: Tensor] = [:]
    for (input, path) in fixtureFiles(dir, prefix: "in_") { feeds[input] = try NPY.read(path) }
    try net.forward(feeds)
    let reference = truth == .float64 ? try Float64Reference(net) : nil
    let exact = try reference?.forward(feeds)
    func judge(_ what: String, ours: [Float], caffe: [Float], exact: [Double]?, tolerance: Double) {
        let oursCaffe = relativeError(ours, caffe)
        guard let exact else {
            #expect(oursCaffe <= tolerance, "\(name): \(what) off by \(oursCaffe)")
            figures?.pointee.append(FixtureFigure(what: what, oursVsCaffe: oursCaffe))
            return
        }
        let truth = exact.map { Float($0) }
        let oursExact = relativeError(ours, truth), caffeExact = relativeError(caffe, truth)
        #expect(oursExact <= tolerance, "\(name): \(what) off float64 by \(oursExact) (Caffe: \(caffeExact), ours vs Caffe: \(oursCaffe))")
        figures?.pointee.append(FixtureFigure(what: what, oursVsCaffe: oursCaffe, oursVsFloat64: oursExact, caffeVsFloat64: caffeExact,
                                              oursVsFloat64Scaled: scaledError(ours, truth), caffeVsFloat64Scaled: scaledError(caffe, truth)))
    }
    for (blob, dims) in meta.blobs where !blob.contains("_split_") && onlyBlobs == nil {
        #expect(try net.shape(blob) == Shape(dims), "\(name): shape of \(blob)")
    }
    let forwardFiles = fixtureFiles(dir, prefix: "fwd_")
    // A case without Caffe's outputs would compare nothing and pass.
    #expect(!forwardFiles.isEmpty, "\(name): no fwd_*.npy files in \(dir)")
    if meta.backward != nil {
        #expect(!fixtureFiles(dir, prefix: "topdiff_").isEmpty, "\(name): meta.json has a backward pass but \(dir) holds no topdiff_*.npy")
    }
    for (blob, path) in forwardFiles where !blob.contains("_split_") {
        if let only = onlyBlobs, !only.contains(blob) { continue }
        let ref = try NPY.read(path)
        let ours = try #require(try net.blob(blob), "\(name): blob \(blob)")
        try #require(ours.count == ref.count, "\(name): size of \(blob)")
        let id = try net.resolve(blob)
        judge("forward \(blob)", ours: ours.array, caffe: ref.array, exact: exact.map { $0[id.index] }, tolerance: 1e-4)
    }
    var inputGrads: [String: Tensor] = [:]
    let topDiffs = fixtureFiles(dir, prefix: "topdiff_")
    guard !topDiffs.isEmpty, meta.backward != nil else { return (net, inputGrads) }
    var seeds: [ValueID: Tensor] = [:]
    for (blob, path) in topDiffs { seeds[try net.resolve(blob)] = try NPY.read(path) }
    let pgradFiles = fixtureFiles(dir, prefix: "pgrad_")
    net.zeroParamGrads()
    let grads = try net.backward(seeds: seeds, gradientsFor: graph.inputs, paramGrads: !pgradFiles.isEmpty)
    var exactGrads: [[Double]]? = nil
    if let reference, let exact {
        var s64: [ValueID: [Double]] = [:]
        for (v, t) in seeds { s64[v] = t.array.map(Double.init) }
        exactGrads = try reference.backward(exact, seeds: s64)
    }
    for (input, path) in fixtureFiles(dir, prefix: "grad_") {
        let id = try net.resolve(input)
        let ours = try #require(grads[id], "\(name): gradient of \(input)")
        inputGrads[input] = ours
        if skipInputGrads.contains(input) { continue }
        judge("gradient of \(input)", ours: ours.array, caffe: try NPY.read(path).array,
              exact: exactGrads.map { $0[id.index] }, tolerance: 1e-3)
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
