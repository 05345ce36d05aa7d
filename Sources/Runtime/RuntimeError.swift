import GraphIR

/// Everything that can go wrong while building or running a net, with the
/// layer and blob it concerns and what to do about it.
public enum RuntimeError: Error, CustomStringConvertible, Sendable {
    /// A layer's parameters or inputs are unusable.
    case layer(name: String, type: String, message: String, location: SourceLocation?)
    case unknownLayerType(layer: String, type: String, known: [String], location: SourceLocation?)
    case duplicateRegistration(type: String, origin: String)
    case weightShape(layer: String, index: Int, expected: Shape, found: Shape)
    case weightCount(layer: String, expected: Int, found: Int)
    /// Weights files were given, but these layers with parameters got none from them.
    case missingWeights(files: [String], layers: [String], unmatched: [String])
    /// A buffer would exceed the memory budget (`MemoryBudget`).
    case overBudget(String)
    case input(String)
    case nonFinite(String)
    case plugin(path: String, message: String)

    public var description: String {
        func at(_ l: SourceLocation?) -> String { l.map { "\($0): " } ?? "" }
        switch self {
        case let .layer(name, type, message, loc):
            return "\(at(loc))layer '\(name.clippedForDisplay())' (\(type.clippedForDisplay())): \(message)"
        case let .unknownLayerType(layer, type, known, loc):
            return "\(at(loc))layer '\(layer.clippedForDisplay())' has type '\(type.clippedForDisplay())'\(didYouMean(type, known)), which no registered layer implements. "
                + "Known types: \(known.joined(separator: ", ")). "
                + "If it comes from a Caffe fork, load a plugin that implements it with --plugin PATH "
                + "(see docs/writing-a-layer-plugin.md)."
        case let .duplicateRegistration(type, origin):
            return "layer type '\(type)' is already registered (by \(origin)); pass replacing: true to override it"
        case let .weightShape(layer, index, expected, found):
            return "layer '\(layer.clippedForDisplay())': weight blob \(index) in the caffemodel has shape \(found), but the prototxt needs \(expected); the weights do not belong to this network definition"
        case let .weightCount(layer, expected, found):
            return "layer '\(layer.clippedForDisplay())': the caffemodel has \(found) weight blobs, but the layer needs \(expected)"
        case let .missingWeights(files, layers, unmatched):
            let from = files.map { $0.clippedForDisplay(limit: 200) }.joined(separator: ", ")
            let others = unmatched.isEmpty ? "" : " (its layers with weights that match no layer of the net: \(listForDisplay(unmatched, limit: 8)))"
            return "\(from) holds no weights for \(layers.count) layer(s) with parameters: \(listForDisplay(layers))\(others). "
                + "Weights are matched by layer name; if the file belongs to another network, give that network's caffemodel. "
                + "To run these layers with weights drawn from their fillers (fine-tuning, net surgery), pass --allow-missing-weights."
        case let .overBudget(m): return m
        case let .input(m): return m
        case let .nonFinite(m): return m
        case let .plugin(path, message): return "plugin '\(path)': \(message)"
        }
    }
}
