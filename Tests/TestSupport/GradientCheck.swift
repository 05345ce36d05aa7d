import CaffeImport
import GraphIR
import Layers
import Runtime

/// Builds a net of Input blobs `data`, `data2`, ... and one layer described by
/// `layerText` (the inside of a prototxt `layer { }` without name, bottoms
/// and tops), with tops `out`, `out2`, ...
public func singleLayerNet(_ layerText: String, inputShapes: [Shape], outputs: Int = 1,
                           phase: Phase = .test, seed: UInt64 = 1,
                           registry: LayerRegistry? = nil) throws -> Net {
    let inputNames = inputShapes.indices.map { $0 == 0 ? "data" : "data\($0 + 1)" }
    let outputNames = (0..<outputs).map { $0 == 0 ? "out" : "out\($0 + 1)" }
    var text = "layer { name: \"input\" type: \"Input\" "
    for n in inputNames { text += "top: \"\(n)\" " }
    text += "input_param { "
    for s in inputShapes { text += "shape { " + s.dims.map { "dim: \($0) " }.joined() + "} " }
    text += "} }\n"
    text += "layer { name: \"test\" "
    for n in inputNames { text += "bottom: \"\(n)\" " }
    for n in outputNames { text += "top: \"\(n)\" " }
    text += layerText + " }\n"
    let def = try CaffeModel.parseText(text, file: "<test>")
    let graph = try CaffeModel.buildGraph(def, state: NetState(phase: phase.rawValue), file: "<test>")
    let net = try Net(graph: graph, registry: registry ?? builtinRegistry(), phase: phase, seed: seed)
    // Random weights N(0, 0.5^2) unless the layer names its own fillers.
    if !layerText.contains("filler") {
        var rng = SplitMix64(seed: seed &+ 7)
        for layer in net.layers { for p in layer.parameters { for i in 0..<p.count { p[i] = 0.5 * rng.gaussian() } } }
    }
    return net
}

/// Runs one layer forward on the given inputs; returns its outputs and parameters.
public func forwardLayer(_ layerText: String, inputs: [Tensor], outputs: Int = 1, phase: Phase = .test,
                         seed: UInt64 = 1) throws -> (outputs: [Tensor], parameters: [Tensor]) {
    let net = try singleLayerNet(layerText, inputShapes: inputs.map(\.shape), outputs: outputs, phase: phase, seed: seed)
    try net.forward(feedDict(net, inputs))
    let outs = try (0..<outputs).map { try net.blob($0 == 0 ? "out" : "out\($0 + 1)")!.copy() }
    return (outs, net.layers.last!.parameters)
}

func feedDict(_ net: Net, _ inputs: [Tensor]) -> [String: Tensor] {
    var d: [String: Tensor] = [:]
    for (n, t) in zip(net.inputNames, inputs) { d[n] = t }
    return d
}

/// Finite-difference gradient check of one layer, in the manner of Caffe's
/// GradientChecker: the objective is J = sum_k w_k * out_k with fixed random
/// w; every input element (of `checkInputs`, default all) and every parameter
/// element is perturbed by +-stepsize; the central difference must agree with
/// the analytic gradient within threshold * max(|a|, |n|, 1). Points with
/// |x| within `kinkRange` of `kink` are skipped (ReLU-like corners).
///
/// Returns a description of each failure (empty when the check passes).
public func checkLayerGradients(_ layerText: String, inputShapes: [Shape], seed: UInt64 = 1,
                                registry: LayerRegistry? = nil,
                                stepsize: Double = 1e-2, threshold: Double = 1e-3,
                                kink: Float? = nil, kinkRange: Float = -1,
                                checkInputs: [Int]? = nil, positiveInputs: Bool = false,
                                outputs: Int = 1, checkParams: Bool = true,
                                inputs given: [Tensor]? = nil,
                                convolution: ConvolutionAlgorithm = .automatic) throws -> [String] {
    let net = try singleLayerNet(layerText, inputShapes: inputShapes, outputs: outputs, seed: seed, registry: registry)
    net.context.convolution = convolution
    var rng = SplitMix64(seed: seed &+ 11)
    let inputs: [Tensor] = given ?? inputShapes.map { s in
        let t = Tensor(shape: s)
        for i in 0..<t.count { t[i] = positiveInputs ? 0.2 + abs(rng.gaussian()) : rng.gaussian() }
        return t
    }
    let feeds = feedDict(net, inputs)
    let outIDs = try (0..<outputs).map { try net.resolve($0 == 0 ? "out" : "out\($0 + 1)") }
    try net.forward(feeds)
    let weights: [Tensor] = outIDs.map { id in
        let t = Tensor(shape: net.tensor(id)!.shape)
        for i in 0..<t.count { t[i] = rng.gaussian() }
        return t
    }
    func objective() throws -> Double {
        try net.forward(feeds)
        var j = 0.0
        for (id, w) in zip(outIDs, weights) {
            let o = net.tensor(id)!
            for i in 0..<o.count { j += Double(o[i]) * Double(w[i]) }
        }
        return j
    }
    let checked = checkInputs ?? Array(inputShapes.indices)
    let inputIDs = checked.map { net.graph.inputs[$0] }
    net.zeroParamGrads()
    var seeds: [ValueID: Tensor] = [:]
    for (id, w) in zip(outIDs, weights) { seeds[id] = w }
    let layer = net.layers.last!
    let grads = try net.backward(seeds: seeds, gradientsFor: inputIDs, paramGrads: checkParams)
    let paramGrads = checkParams ? net.paramGrads.last! : []

    var failures: [String] = []
    func compare(_ what: String, _ x: Tensor, _ analytic: Tensor) throws {
        for i in 0..<x.count {
            let v = x[i]
            if let k = kink, abs(v) > k - kinkRange, abs(v) < k + kinkRange { continue }
            x[i] = v + Float(stepsize)
            let plus = try objective()
            x[i] = v - Float(stepsize)
            let minus = try objective()
            x[i] = v
            let numeric = (plus - minus) / (2 * stepsize)
            let a = Double(analytic[i])
            let scale = max(abs(a), abs(numeric), 1)
            if abs(a - numeric) > threshold * scale {
                failures.append("\(what)[\(i)]: analytic \(a), numeric \(numeric) (x = \(v))")
            }
        }
    }
    for (k, id) in zip(checked, inputIDs) { try compare("input \(k)", inputs[k], grads[id]!) }
    for (j, p) in layer.parameters.enumerated() where checkParams && j < paramGrads.count {
        try compare("param \(j)", p, paramGrads[j])
    }
    return failures
}
