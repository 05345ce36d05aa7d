/// A learnable parameter blob as stored in a model file: shape and values.
///
/// A reference type so that layers sharing a parameter by name
/// (`param { name: "w" }`) hold the very same storage.
public final class WeightBlob: @unchecked Sendable {
    public var shape: Shape
    public var data: [Float]
    public init(shape: Shape, data: [Float]) {
        precondition(shape.count == data.count, "weight shape \(shape) does not hold \(data.count) values")
        self.shape = shape; self.data = data
    }
    public convenience init(shape: Shape, value: Float = 0) {
        self.init(shape: shape, data: [Float](repeating: value, count: shape.count))
    }
}

/// Training attributes of one parameter blob (Caffe's `ParamSpec`).
public struct ParamSpec: Sendable, Equatable {
    /// Blobs with the same non-empty name are one shared parameter.
    public var name: String?
    public var lrMult: Float
    public var decayMult: Float
    public init(name: String? = nil, lrMult: Float = 1, decayMult: Float = 1) {
        self.name = name; self.lrMult = lrMult; self.decayMult = decayMult
    }
}

/// One value in the graph: a version of a named blob. Every top of every
/// layer is a new value, so an in-place layer (top == bottom) gives the blob a
/// new version while the previous one stays addressable.
public struct ValueID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let index: Int
    public init(_ index: Int) { self.index = index }
    public static func < (a: ValueID, b: ValueID) -> Bool { a.index < b.index }
    public var description: String { "%\(index)" }
}

public struct Value: Sendable {
    /// The Caffe blob name this value is a version of.
    public var blob: String
    /// 0 for the first writer, then 1, 2, ... for each in-place writer.
    public var version: Int
    /// Index of the producing node (the Input layer for net inputs).
    public var producer: Int
    /// Index among the producer's outputs.
    public var outputIndex: Int
}

/// One layer instance.
public struct Node: Sendable {
    public var name: String
    public var type: String
    public var inputs: [ValueID]
    public var outputs: [ValueID]
    /// The layer's whole parameter message (Caffe's LayerParameter minus
    /// name/type/bottom/top/blobs): `params.message("convolution_param")`.
    public var params: ParamMessage
    /// Learnable blobs, in Caffe's order (0 = weights, 1 = bias, ...). Empty
    /// until weights are loaded or initialised.
    public var weights: [WeightBlob]
    public var paramSpecs: [ParamSpec]
    /// Loss weight per output (Caffe's `loss_weight`; losses default to 1).
    public var lossWeights: [Float]
    /// Caffe's `propagate_down` per input, when given.
    public var propagateDown: [Bool]
    public var location: SourceLocation?

    public init(name: String, type: String, inputs: [ValueID], outputs: [ValueID],
                params: ParamMessage = ParamMessage(), weights: [WeightBlob] = [],
                paramSpecs: [ParamSpec] = [], lossWeights: [Float] = [], propagateDown: [Bool] = [],
                location: SourceLocation? = nil) {
        self.name = name; self.type = type; self.inputs = inputs; self.outputs = outputs
        self.params = params; self.weights = weights; self.paramSpecs = paramSpecs
        self.lossWeights = lossWeights; self.propagateDown = propagateDown; self.location = location
    }
}

/// A weights file whose blobs were copied into a graph's layers by layer
/// name, with what did not fit, so a caller can refuse or warn.
public struct WeightSource: Sendable {
    public var file: String
    /// Layers of the graph that took their blobs from this file.
    public var matchedLayers: [String]
    /// Layers of the file with blobs that no layer of the graph is named after.
    public var unmatchedLayers: [String]
    /// One line per problem with the values themselves (NaN or infinite weights).
    public var warnings: [String]
    /// The file's own net name (NetParameter.name).
    public var netName = ""
    /// `inverse-set init` marks the files it fills from fillers in their net
    /// name, so random weights are recognised wherever they are loaded.
    public static let randomMarker = "[random weights written by inverse-set init"
    /// The file holds weights that `inverse-set init` drew from fillers.
    public var isRandom: Bool { netName.contains(Self.randomMarker) }
    public init(file: String, matchedLayers: [String] = [], unmatchedLayers: [String] = [], warnings: [String] = []) {
        self.file = file; self.matchedLayers = matchedLayers
        self.unmatchedLayers = unmatchedLayers; self.warnings = warnings
    }
}

/// Errors in the structure of a graph, independent of any file format.
public enum GraphError: Error, CustomStringConvertible, Sendable {
    case unknownBlob(String, layer: String, location: SourceLocation?)
    case duplicateTop(String, layer: String, previous: String, location: SourceLocation?)
    case duplicateLayerName(String, location: SourceLocation?)
    /// One layer names the same top twice (also a legacy header listing an input twice).
    case repeatedTop(String, layer: String, location: SourceLocation?)
    case noSuchBlob(String, known: [String])
    case invalid(String)

    public var description: String {
        func at(_ l: SourceLocation?) -> String { l.map { "\($0): " } ?? "" }
        switch self {
        case let .unknownBlob(b, layer, loc):
            return "\(at(loc))layer '\(layer.clippedForDisplay())' reads blob '\(b.clippedForDisplay())', which no earlier layer produces (check the bottom name and the layer order)"
        case let .duplicateTop(b, layer, prev, loc):
            let blob = b.clippedForDisplay()
            return "\(at(loc))layer '\(layer.clippedForDisplay())' writes blob '\(blob)', which layer '\(prev.clippedForDisplay())' already produces; only an in-place layer (with '\(blob)' also as its bottom) may write it again"
        case let .duplicateLayerName(n, loc):
            return "\(at(loc))two layers are named '\(n.clippedForDisplay())'; layer names must be unique"
        case let .repeatedTop(b, layer, loc):
            return "\(at(loc))layer '\(layer.clippedForDisplay())' names top '\(b.clippedForDisplay())' twice; each top of a layer must be a different blob"
        case let .noSuchBlob(b, known):
            return "no blob or layer output named '\(b.clippedForDisplay())'; known blobs: \(listForDisplay(known))"
        case let .invalid(m):
            return m
        }
    }
}

/// A network as a list of layers in execution order, with SSA-style values.
///
/// Caffe-free: the importer builds it, the runtime executes it, `inspect`
/// prints it. Blob names resolve to their *latest* version (what pycaffe's
/// `net.blobs[name]` returns); a layer's own output before later in-place
/// layers is `output(ofLayer:)`.
public struct Graph: Sendable {
    public var name: String
    public var nodes: [Node] = []
    public var values: [Value] = []
    /// Values fed from outside (the tops of Input layers), in order.
    public var inputs: [ValueID] = []
    /// Declared shape of each input (from the Input layer or `input_shape`).
    public var inputShapes: [ValueID: Shape] = [:]
    /// Latest value of each blob name.
    public private(set) var latest: [String: ValueID] = [:]
    /// The weights files attached so far, in order (empty: no weights were
    /// given, so every parameter comes from a filler). `Net` refuses a graph
    /// whose files leave layers with parameters empty, unless told otherwise.
    public var weightSources: [WeightSource] = []

    public init(name: String = "") { self.name = name }

    /// Appends a layer whose bottoms and tops are blob names, resolving them
    /// with Caffe's rules: bottoms are the latest version; a top that is also
    /// a bottom is in place (new version); any other existing top is an error.
    @discardableResult
    public mutating func addLayer(name: String, type: String, bottoms: [String], tops: [String],
                                  params: ParamMessage = ParamMessage(),
                                  location: SourceLocation? = nil) throws -> Int {
        if nodes.contains(where: { $0.name == name }) {
            throw GraphError.duplicateLayerName(name, location: location)
        }
        var ins: [ValueID] = []
        for b in bottoms {
            guard let v = latest[b] else {
                throw GraphError.unknownBlob(b, layer: name, location: location)
            }
            ins.append(v)
        }
        // Caffe: a top named twice in one layer has "multiple sources". Checked
        // first, so that no value below refers to the node not yet appended.
        var seenTops = Set<String>()
        for t in tops where !seenTops.insert(t).inserted {
            throw GraphError.repeatedTop(t, layer: name, location: location)
        }
        // Every check before any change, so a throw leaves the graph as it was.
        var versions: [Int] = []
        for t in tops {
            var version = 0
            if let prev = latest[t] {
                guard bottoms.contains(t) else {
                    throw GraphError.duplicateTop(t, layer: name, previous: nodes[values[prev.index].producer].name,
                                                  location: location)
                }
                version = values[prev.index].version + 1
            }
            versions.append(version)
        }
        let nodeIndex = nodes.count
        var outs: [ValueID] = []
        for (i, (t, version)) in zip(tops, versions).enumerated() {
            let id = ValueID(values.count)
            values.append(Value(blob: t, version: version, producer: nodeIndex, outputIndex: i))
            latest[t] = id
            outs.append(id)
        }
        nodes.append(Node(name: name, type: type, inputs: ins, outputs: outs, params: params, location: location))
        return nodeIndex
    }

    /// The latest value of a blob (after every in-place layer that writes it).
    public func value(named blob: String) -> ValueID? { latest[blob] }

    /// The value a layer wrote to its `index`-th top, before any later
    /// in-place layer changed it (e.g. fc6 before relu6).
    public func output(ofLayer layer: String, index: Int = 0) -> ValueID? {
        guard let n = nodes.first(where: { $0.name == layer }), index < n.outputs.count else { return nil }
        return n.outputs[index]
    }

    /// Resolves a user-facing name: a blob name first, then a layer name.
    public func resolve(_ name: String) throws -> ValueID {
        if let v = latest[name] { return v }
        if let v = output(ofLayer: name) { return v }
        throw GraphError.noSuchBlob(name, known: blobNames)
    }

    /// Blob names in order of first appearance.
    public var blobNames: [String] {
        var seen = Set<String>(), out: [String] = []
        for v in values where seen.insert(v.blob).inserted { out.append(v.blob) }
        return out
    }

    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }
    public func nodeIndex(named name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    /// Values that no node reads: Caffe's net outputs.
    public var outputs: [ValueID] {
        var read = Set<ValueID>()
        for n in nodes { read.formUnion(n.inputs) }
        // A blob whose later in-place version exists is not an output itself.
        return values.indices.map(ValueID.init).filter { id in
            !read.contains(id) && latest[values[id.index].blob] == id
        }
    }

    /// Consumers of each value (node indices), for fan-out and liveness.
    public func consumers() -> [[Int]] {
        var c = [[Int]](repeating: [], count: values.count)
        for (i, n) in nodes.enumerated() { for v in n.inputs { c[v.index].append(i) } }
        return c
    }

    /// The sub-graph needed to compute `blob` (a blob or layer name): every
    /// node it depends on, and no other. This is how an encoder E is made from
    /// a classifier f ("CaffeNet up to fc6"). In-place layers that write the
    /// blob after its producer are kept only when the latest version is asked
    /// for, so `cut(at: "fc6")` includes relu6 and `cut(at: layer "fc6")` does not.
    public func cut(at name: String) throws -> Graph {
        let target = try resolve(name)
        var needed = Set<Int>()
        var stack = [values[target.index].producer]
        while let n = stack.popLast() {
            guard needed.insert(n).inserted else { continue }
            for v in nodes[n].inputs { stack.append(values[v.index].producer) }
        }
        var g = Graph(name: self.name)
        g.weightSources = weightSources
        var mapped: [ValueID: ValueID] = [:]
        for (i, n) in nodes.enumerated() where needed.contains(i) {
            let bottoms = n.inputs.map { values[$0.index].blob }
            let tops = n.outputs.map { values[$0.index].blob }
            let idx = try g.addLayer(name: n.name, type: n.type, bottoms: bottoms, tops: tops,
                                     params: n.params, location: n.location)
            g.nodes[idx].weights = n.weights
            g.nodes[idx].paramSpecs = n.paramSpecs
            g.nodes[idx].lossWeights = n.lossWeights
            g.nodes[idx].propagateDown = n.propagateDown
            for (old, new) in zip(n.outputs, g.nodes[idx].outputs) { mapped[old] = new }
        }
        for input in inputs {
            if let id = mapped[input] {
                g.inputs.append(id)
                if let s = inputShapes[input] { g.inputShapes[id] = s }
            }
        }
        return g
    }
}
