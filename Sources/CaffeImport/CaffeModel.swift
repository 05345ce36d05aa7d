import Foundation
import GraphIR

/// Which layers of a net are active: Caffe's NetState (phase, level, stages).
public struct NetState: Sendable {
    public var phase: String
    public var level: Int
    public var stages: [String]
    public init(phase: String = "TEST", level: Int = 0, stages: [String] = []) {
        self.phase = phase; self.level = level; self.stages = stages
    }
}

/// Reading and writing Caffe models.
///
///     let graph = try CaffeModel.load(prototxt: "deploy.prototxt", weights: "net.caffemodel")
///
/// Text and binary files become the same parameter tree; legacy nets are
/// upgraded; layers are filtered by phase; the result is a Caffe-free `Graph`.
public enum CaffeModel {
    static var schemas: CaffeSchemaRegistry { .shared }

    // MARK: Files

    static func readFile(_ path: String) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ImportError.file(path, "no such file")
        }
        if isDir.boolValue { throw ImportError.file(path, "is a directory, not a model file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImportError.file(path, "cannot be read (check its permissions)")
        }
        return [UInt8](data)
    }

    /// Parses prototxt text as a message of `schema` (NetParameter by default).
    /// Unknown fields of a layer are kept for plugins; elsewhere they are errors.
    public static func parseText(_ text: String, file: String, schema: ParamSchema? = nil) throws -> ParamMessage {
        var parser = TextFormatParser(text: text, file: file)
        parser.openMessages = ["caffe.LayerParameter", "caffe.V1LayerParameter"]
        return try parser.parseMessage(schema: schema ?? schemas.netParameter)
    }

    /// Reads a `.prototxt` file as a NetParameter tree (not yet upgraded).
    public static func readPrototxt(_ path: String, schema: ParamSchema? = nil) throws -> ParamMessage {
        let bytes = try readFile(path)
        if bytes.allSatisfy({ $0 == 32 || $0 == 10 || $0 == 13 || $0 == 9 }) {
            throw ImportError.file(path, "file is empty; expected a Caffe network definition (prototxt)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            if bytes.contains(0) || bytes.first == 0x0a {
                throw ImportError.file(path, "is not text; if it is a binary .caffemodel, pass it with --weights")
            }
            throw ImportError.file(path, "is not valid UTF-8 text")
        }
        return try parseText(text, file: path, schema: schema)
    }

    /// Reads a binary `.caffemodel` (or any binary NetParameter) with protobuf-c.
    public static func readCaffemodel(_ path: String) throws -> ParamMessage {
        try BinaryFormat.decode(try readFile(path), schemaName: "caffe.NetParameter", file: path)
    }

    /// Decodes a binary message of any schema type (e.g. "caffe.BlobProto" for a mean file).
    public static func decodeBinary(_ bytes: [UInt8], type: String, file: String) throws -> ParamMessage {
        try BinaryFormat.decode(bytes, schemaName: type, file: file)
    }

    /// Reads a file that may be text or binary (by content).
    public static func readNetParameter(_ path: String) throws -> ParamMessage {
        let bytes = try readFile(path)
        if looksBinary(bytes) { return try BinaryFormat.decode(bytes, schemaName: "caffe.NetParameter", file: path) }
        return try readPrototxt(path)
    }

    static func looksBinary(_ b: [UInt8]) -> Bool {
        b.prefix(256).contains { $0 < 9 || ($0 > 13 && $0 < 32) }
    }

    // MARK: Networks

    /// Loads a network definition, and weights when given, into a graph.
    public static func load(prototxt: String, weights: String? = nil, state: NetState = NetState()) throws -> Graph {
        let def = try Upgrade.upgradeNet(try readPrototxt(prototxt), file: prototxt)
        var graph = try buildGraph(def, state: state, file: prototxt)
        if let weights { try attachWeights(&graph, from: weights) }
        return graph
    }

    /// Upgrades a V0/V1 net and the legacy input header to the current format.
    public static func upgrade(_ net: ParamMessage, file: String) throws -> ParamMessage {
        try Upgrade.upgradeNet(net, file: file)
    }

    /// Builds a graph from an upgraded NetParameter: phase filtering, blob
    /// resolution (in place, fan-out), parameter specs and any weights it holds.
    public static func buildGraph(_ net: ParamMessage, state: NetState = NetState(), file: String) throws -> Graph {
        var g = Graph(name: (try? net.string("name")) ?? "")
        var st = state
        // A `state` in the file sets phase/level/stages unless the caller overrides the phase.
        let fileState = net.message("state")
        if fileState.has("level") { st.level = (try? fileState.int("level")) ?? st.level }
        if fileState.has("stage") { st.stages = (try? fileState.strings("stage")) ?? st.stages }
        for layer in net.messages("layer") {
            guard try included(layer, state: st, file: file) else { continue }
            let name = try layer.string("name", default: "")
            let type = try layer.string("type", default: "")
            if type.isEmpty {
                throw ImportError.syntax(layer.location ?? SourceLocation(file: file, line: 0, column: 0),
                                         "layer '\(name)' has no type")
            }
            let bottoms = try layer.strings("bottom"), tops = try layer.strings("top")
            var params = layer
            for f in ["name", "type", "bottom", "top", "blobs", "param", "loss_weight", "propagate_down", "include", "exclude"] {
                params.remove(f)
            }
            let idx: Int
            do {
                idx = try g.addLayer(name: name, type: type, bottoms: bottoms, tops: tops, params: params,
                                     location: layer.location)
            } catch let e as GraphError {
                // The error already starts with file:line:col when the layer has one.
                if layer.location != nil { throw ImportError.located(e.description) }
                throw ImportError.network(file: file, e.description)
            }
            g.nodes[idx].paramSpecs = try layer.messages("param").map {
                ParamSpec(name: try $0.string("name", default: "").nilIfEmpty,
                          lrMult: try $0.float("lr_mult", default: 1), decayMult: try $0.float("decay_mult", default: 1))
            }
            g.nodes[idx].lossWeights = try layer.floats("loss_weight")
            g.nodes[idx].propagateDown = try layer.values("propagate_down").map {
                guard let i = $0.asInt64 else { throw ImportError.network(file: file, "layer '\(name)': propagate_down must be true or false") }
                return i != 0
            }
            let blobs = layer.messages("blobs")
            if !blobs.isEmpty {
                g.nodes[idx].weights = try blobs.enumerated().map { try weightBlob($1, what: "layer '\(name.clippedForDisplay())' blob \($0)", file: file) }
            }
            if type == "Input" {
                let shapes = try layer.message("input_param").messages("shape").map { Shape(try $0.ints("dim")) }
                for (k, v) in g.nodes[idx].outputs.enumerated() {
                    g.inputs.append(v)
                    if !shapes.isEmpty { g.inputShapes[v] = shapes.count == 1 ? shapes[0] : (k < shapes.count ? shapes[k] : shapes[0]) }
                }
            }
        }
        return g
    }

    /// Caffe's StateMeetsRule / FilterNet: include rules (any must match) or
    /// exclude rules (none may match).
    static func included(_ layer: ParamMessage, state: NetState, file: String) throws -> Bool {
        let inc = layer.messages("include"), exc = layer.messages("exclude")
        if !inc.isEmpty && !exc.isEmpty {
            throw ImportError.network(file: file, "layer '\((try? layer.string("name")) ?? "")' has both include and exclude rules; Caffe allows only one kind")
        }
        func meets(_ r: ParamMessage) throws -> Bool {
            if r.has("phase"), try r.enumName("phase") != state.phase { return false }
            if r.has("min_level"), state.level < (try r.int("min_level")) { return false }
            if r.has("max_level"), state.level > (try r.int("max_level")) { return false }
            for s in try r.strings("stage") where !state.stages.contains(s) { return false }
            for s in try r.strings("not_stage") where state.stages.contains(s) { return false }
            return true
        }
        if !inc.isEmpty { return try inc.contains { try meets($0) } }
        return try !exc.contains { try meets($0) }
    }

    /// A BlobProto as a weight blob: `shape` if present, else the legacy
    /// num/channels/height/width header (an unset dimension is 0, as in
    /// caffe.proto); `data` or `double_data`. `what` names the blob in errors.
    static func weightBlob(_ b: ParamMessage, what: @autoclosure () -> String, file: String) throws -> WeightBlob {
        let shape: Shape
        if b.has("shape") {
            shape = Shape(try b.message("shape").ints("dim"))
        } else if b.has("num") || b.has("channels") || b.has("height") || b.has("width") {
            shape = Shape([try b.int("num", default: 0), try b.int("channels", default: 0),
                           try b.int("height", default: 0), try b.int("width", default: 0)])
        } else {
            shape = Shape([])
        }
        var data = try b.floats("data")
        if data.isEmpty { data = try b.floats("double_data") }
        if shape.dims.isEmpty && !data.isEmpty {
            return WeightBlob(shape: Shape([data.count]), data: data)
        }
        guard let count = shape.checkedCount, count == data.count else {
            let needs = shape.checkedCount.map { "needs \($0) values" } ?? "is impossible (a negative or enormous dimension)"
            throw ImportError.network(file: file, "\(what()): shape \(shape.description.clippedForDisplay()) \(needs) but the file holds \(data.count)")
        }
        return WeightBlob(shape: shape, data: data)
    }

    /// Copies weights from a caffemodel into the graph's layers by layer name
    /// (Caffe's CopyTrainedLayersFrom), and records the file in
    /// `graph.weightSources`: which layers took blobs from it, which layers of
    /// the file match no layer of the graph (Caffe ignores them silently; the
    /// tool lists them as a warning), and blobs holding NaN or infinite values.
    /// Whether layers that got nothing may run on fillers is `Net`'s decision
    /// (`allowMissingWeights`).
    @discardableResult
    public static func attachWeights(_ graph: inout Graph, from path: String) throws -> WeightSource {
        let model = try Upgrade.upgradeNet(try readCaffemodel(path), file: path)
        var byName: [String: [WeightBlob]] = [:]
        var fileOrder: [String] = []
        var source = WeightSource(file: path)
        source.netName = (try? model.string("name", default: "")) ?? ""
        for layer in model.messages("layer") {
            let name = try layer.string("name", default: "")
            let blobs = layer.messages("blobs")
            guard !blobs.isEmpty else { continue }
            let weights = try blobs.enumerated().map { try weightBlob($1, what: "layer '\(name.clippedForDisplay())' blob \($0)", file: path) }
            if byName[name] == nil { fileOrder.append(name) }
            byName[name] = weights
        }
        var used = Set<String>()
        for i in graph.nodes.indices {
            let name = graph.nodes[i].name
            guard let weights = byName[name] else { continue }
            graph.nodes[i].weights = weights
            used.insert(name)
            source.matchedLayers.append(name)
            for (j, w) in weights.enumerated() {
                let bad = w.data.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
                if bad > 0 {
                    source.warnings.append("\(path): layer '\(name.clippedForDisplay())' blob \(j) holds \(bad) NaN or infinite value(s) of \(w.data.count); every output that depends on them will be NaN or infinite")
                }
            }
        }
        source.unmatchedLayers = fileOrder.filter { !used.contains($0) }
        graph.weightSources.append(source)
        return source
    }

    // MARK: Writing

    /// The graph as a current-format NetParameter tree (layers, parameters and weights).
    public static func netParameter(_ graph: Graph, includeWeights: Bool = true) -> ParamMessage {
        let reg = schemas
        var net = ParamMessage(schema: reg.netParameter)
        if !graph.name.isEmpty { net.append("name", .string(graph.name)) }
        for node in graph.nodes {
            var l = ParamMessage(schema: reg.layerParameter)
            l.append("name", .string(node.name))
            l.append("type", .string(node.type))
            for v in node.inputs { l.append("bottom", .string(graph.values[v.index].blob)) }
            for v in node.outputs { l.append("top", .string(graph.values[v.index].blob)) }
            for w in node.lossWeights { l.append("loss_weight", .double(Double(w))) }
            for spec in node.paramSpecs {
                var p = ParamMessage(schema: reg.schema("caffe.ParamSpec"))
                if let n = spec.name { p.append("name", .string(n)) }
                if spec.lrMult != 1 { p.append("lr_mult", .double(Double(spec.lrMult))) }
                if spec.decayMult != 1 { p.append("decay_mult", .double(Double(spec.decayMult))) }
                l.append("param", .message(p))
            }
            for b in node.propagateDown { l.append("propagate_down", .bool(b)) }
            if includeWeights {
                for w in node.weights {
                    var blob = ParamMessage(schema: reg.blobProto)
                    var shape = ParamMessage(schema: reg.schema("caffe.BlobShape"))
                    for d in w.shape.dims { shape.append("dim", .int(Int64(d))) }
                    blob.append("shape", .message(shape))
                    blob.append("data", .floatArray(w.data))
                    l.append("blobs", .message(blob))
                }
            }
            for f in node.params.fields { l.fields.append(f) }
            net.append("layer", .message(l))
        }
        return net
    }

    /// Writes the graph with its weights as a binary `.caffemodel` (current
    /// format, `BlobShape` shapes) that BVLC Caffe loads.
    public static func writeCaffemodel(_ graph: Graph, to path: String) throws {
        try writeAtomically(try WireWriter.encode(netParameter(graph)), to: path)
    }

    /// Encodes any schema'd message to protobuf binary.
    public static func encodeBinary(_ m: ParamMessage) throws -> [UInt8] { try WireWriter.encode(m) }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
