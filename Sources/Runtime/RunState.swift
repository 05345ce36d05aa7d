import GraphIR

/// A layer whose forward passes advance a state of its own beyond its
/// parameters: a data layer's item order and random stream. Saving it with a
/// snapshot lets a resumed run read the same batches an uninterrupted run
/// would have read.
public protocol StatefulLayer: Layer {
    /// The state as numbers (empty before the first forward pass).
    var runState: [UInt64] { get }
    /// Continues from `runState` of a layer built from the same definition;
    /// throws when the numbers do not fit (another dataset, say).
    func restoreRunState(_ state: [UInt64]) throws
}

/// What a net's forward passes have consumed so far: the random stream of
/// its execution context (Dropout) and the state of each stateful layer.
public struct NetRunState: Codable, Equatable, Sendable {
    public var random: UInt64
    /// Per stateful layer, by layer name.
    public var layers: [String: [UInt64]]
}

extension Net {
    /// The state to save with a snapshot for an exact resume.
    public func runState() -> NetRunState {
        var states: [String: [UInt64]] = [:]
        for (i, layer) in layers.enumerated() {
            if let s = layer as? any StatefulLayer { states[graph.nodes[i].name] = s.runState }
        }
        return NetRunState(random: context.rng.currentState, layers: states)
    }

    /// Continues from `state`, saved by `runState()` of a net built from the
    /// same definition.
    public func restoreRunState(_ state: NetRunState, file: String) throws {
        for (i, layer) in layers.enumerated() {
            guard let s = layer as? any StatefulLayer else { continue }
            let name = graph.nodes[i].name
            guard let saved = state.layers[name] else {
                throw RuntimeError.input("\(file) holds no state for data layer '\(name)': it was saved from another net definition")
            }
            do { try s.restoreRunState(saved) } catch {
                throw RuntimeError.layer(name: name, type: graph.nodes[i].type,
                                         message: "cannot continue from the state in \(file): \(error)", location: graph.nodes[i].location)
            }
        }
        context.rng = SplitMix64(seed: state.random)
    }
}
