import GraphIR
import Runtime

/// Errors of the sampler: bad specs, unreachable bands, NaN, mismatched nets.
public struct SamplerError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Which neuron to constrain, as written on the command line:
///
///     fc8:980              unit 980 of a vector blob (0-based; the paper's 981)
///     conv5:12             channel 12 of a feature map, at the centre (H/2, W/2)
///     conv5:12@3,9         channel 12 at row 3, column 9
///     conv5:12:mean        the mean of channel 12 over all positions
///     pre(fc6):17          unit 17 of layer fc6's own output, before in-place ReLU
///     fc8:664=40:50        with its own band [40, 50]
///     fc8:Sneaker          a class unit by its name in the pipeline's labels file
public struct NeuronSpec: Sendable, Equatable, CustomStringConvertible {
    public enum Position: Sendable, Equatable { case centre, at(Int, Int), mean }
    public var blob: String
    /// Address the producing layer's output rather than the blob's last version.
    public var beforeInPlace: Bool
    public var index: Int
    public var position: Position
    public var band: Band?
    public let text: String

    /// `labels`: class names of the classifier's units, for units given by name.
    public init(parsing s: String, labels: [String] = []) throws {
        text = s
        var body = Substring(s)
        band = nil
        if let eq = body.lastIndex(of: "=") {
            band = try Band(parsing: String(body[body.index(after: eq)...]))
            body = body[..<eq]
        }
        beforeInPlace = false
        if body.hasPrefix("pre("), let close = body.firstIndex(of: ")") {
            beforeInPlace = true
            let name = body[body.index(body.startIndex, offsetBy: 4)..<close]
            body = name + body[body.index(after: close)...]
        }
        // The blob name may itself contain ':' only if nothing else does; split from the right.
        var parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        position = .centre
        if parts.count >= 3, parts.last == "mean" { position = .mean; parts.removeLast() }
        guard parts.count == 2, !parts[0].isEmpty else {
            throw SamplerError("neuron '\(s)': expected BLOB:INDEX, BLOB:CHANNEL@Y,X or BLOB:CHANNEL:mean (e.g. fc8:980, conv5:12@3,9)")
        }
        blob = parts[0]
        var idx = Substring(parts[1])
        if let at = idx.firstIndex(of: "@") {
            let yx = idx[idx.index(after: at)...].split(separator: ",")
            guard yx.count == 2, let y = Int(yx[0]), let x = Int(yx[1]), y >= 0, x >= 0 else {
                throw SamplerError("neuron '\(s)': position must be @ROW,COL with non-negative integers")
            }
            if position == .mean { throw SamplerError("neuron '\(s)': give either a position or :mean, not both") }
            position = .at(y, x)
            idx = idx[..<at]
        }
        if let i = Int(idx) {
            guard i >= 0 else { throw SamplerError("neuron '\(s)': '\(idx)' is not a non-negative index (indices are 0-based)") }
            index = i
        } else if let i = Self.unit(named: String(idx), in: labels) {
            index = i
        } else if labels.isEmpty || idx.isEmpty || idx.first!.isNumber || idx.first == "-" {
            throw SamplerError("neuron '\(s)': '\(idx)' is not a non-negative index (indices are 0-based)\(labels.isEmpty ? "; units are named only when the pipeline has a labels file" : "")")
        } else {
            throw SamplerError("neuron '\(s)': no class named '\(idx)'\(didYouMean(String(idx), labels)) in the pipeline's labels (\(listForDisplay(labels, limit: 12)))")
        }
    }

    public var description: String { text }

    /// The index of a class name, compared without case, spaces, '-' and '/'
    /// ("sneaker", "T-shirt/top" as "tshirttop").
    static func unit(named name: String, in labels: [String]) -> Int? {
        func key(_ s: String) -> String { String(s.lowercased().filter { $0.isLetter || $0.isNumber }) }
        let k = key(name)
        guard !k.isEmpty else { return nil }
        return labels.firstIndex { key($0) == k }
    }
}

/// An activation band [low, high] with low < high.
public struct Band: Sendable, Equatable, CustomStringConvertible, Codable {
    public var low: Float
    public var high: Float
    public init(low: Float, high: Float) throws {
        guard low.isFinite, high.isFinite else { throw SamplerError("band \(low):\(high) must be finite") }
        guard low < high else { throw SamplerError("band \(low):\(high) is empty: the first bound must be below the second (Z1 < Z2)") }
        self.low = low; self.high = high
    }
    /// `labels`: class names of the classifier's units, for units given by name.
    public init(parsing s: String, labels: [String] = []) throws {
        let p = s.split(separator: ":", omittingEmptySubsequences: false)
        guard p.count == 2, let a = Float(p[0]), let b = Float(p[1]) else {
            throw SamplerError("band '\(s)': expected Z1:Z2, e.g. 40:50")
        }
        try self.init(low: a, high: b)
    }
    public func contains(_ v: Float) -> Bool { v >= low && v <= high }
    public var description: String { "[\(low), \(high)]" }
}

/// A neuron located in a net: the value, and per sample the flat offsets and
/// weights whose weighted sum is the activation.
public struct ResolvedNeuron: Sendable {
    public var spec: NeuronSpec
    public var band: Band
    public var value: ValueID
    public var offsets: [Int]
    public var weights: [Float]
    /// Elements per sample in the blob.
    public var sampleSize: Int

    public init(_ spec: NeuronSpec, band: Band, in net: Net) throws {
        self.spec = spec
        self.band = band
        let g = net.graph
        if spec.beforeInPlace {
            guard let v = g.output(ofLayer: spec.blob) else {
                throw SamplerError("neuron '\(spec)': no layer named '\(spec.blob)'\(didYouMean(spec.blob, g.nodes.map(\.name))) (layers: \(listForDisplay(g.nodes.map(\.name), limit: 40)))")
            }
            value = v
        } else {
            guard let v = g.value(named: spec.blob) ?? g.output(ofLayer: spec.blob) else {
                throw SamplerError("neuron '\(spec)': the classifier has no blob '\(spec.blob)'\(didYouMean(spec.blob, g.blobNames)) (blobs: \(listForDisplay(g.blobNames, limit: 40)))")
            }
            value = v
        }
        let shape = net.shapes[value.index]
        guard shape.rank >= 2 else { throw SamplerError("neuron '\(spec)': blob '\(spec.blob)' has shape \(shape), with no sample axis") }
        sampleSize = shape.count(from: 1)
        let channels = shape[1]
        let spatial = shape.count(from: 2)
        guard spec.index < channels else {
            throw SamplerError("neuron '\(spec)': blob '\(spec.blob)' has shape \(shape); index \(spec.index) is out of range 0..<\(channels)")
        }
        if spatial == 1 {
            if case .at = spec.position { throw SamplerError("neuron '\(spec)': blob '\(spec.blob)' (shape \(shape)) has no spatial positions") }
            offsets = [spec.index]; weights = [1]
            return
        }
        guard shape.rank == 4 else {
            throw SamplerError("neuron '\(spec)': blob '\(spec.blob)' has shape \(shape); positions need N x C x H x W")
        }
        let h = shape[2], w = shape[3]
        let base = spec.index * spatial
        switch spec.position {
        case .centre:
            offsets = [base + (h / 2) * w + w / 2]; weights = [1]
        case .at(let y, let x):
            guard y < h, x < w else {
                throw SamplerError("neuron '\(spec)': position (\(y), \(x)) is outside the \(h)x\(w) map of '\(spec.blob)'")
            }
            offsets = [base + y * w + x]; weights = [1]
        case .mean:
            offsets = Array(base..<(base + spatial)); weights = Array(repeating: 1 / Float(spatial), count: spatial)
        }
    }

    /// The activation of sample `n` in `t`.
    public func activation(_ t: Tensor, sample n: Int) -> Float {
        var s: Float = 0
        let p = t.data + n * sampleSize
        for (o, w) in zip(offsets, weights) { s += w * p[o] }
        return s
    }

    /// Adds `g * d activation / d blob` for sample `n` into a gradient tensor.
    public func addGradient(_ g: Float, into t: Tensor, sample n: Int) {
        let p = t.data + n * sampleSize
        for (o, w) in zip(offsets, weights) { p[o] += g * w }
    }
}
