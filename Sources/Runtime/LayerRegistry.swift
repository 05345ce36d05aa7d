import Foundation
import GraphIR

/// The table of layer types: one explicit value, built at start-up.
///
/// Built-in layers register through the same `register` call that plugins
/// use (`registerBuiltins(into:)` in the Layers module). Thread-safe.
///
///     let registry = LayerRegistry()
///     try registerBuiltins(into: registry)
///     try registry.register("Mish") { ctx in try MishLayer(ctx) }
public final class LayerRegistry: @unchecked Sendable {
    public typealias Factory = (LayerContext) throws -> any Layer

    public struct Entry {
        public let type: String
        /// "built-in", or the path of the plugin library that registered it.
        public let origin: String
        public let factory: Factory
    }

    private var entries: [String: Entry] = [:]
    private var pluginError: String?
    private let lock = NSLock()

    /// The error a plugin's registration reported (see `PluginABI`).
    public var lastPluginError: String? {
        get { lock.withLock { pluginError } }
        set { lock.withLock { pluginError = newValue } }
    }

    public init() {}

    /// Registers `type`. Throws if it exists, unless `replacing` is true
    /// (so a user can swap in their own Convolution).
    public func register(_ type: String, origin: String = "built-in", replacing: Bool = false,
                         _ factory: @escaping Factory) throws {
        try lock.withLock {
            if let old = entries[type], !replacing {
                throw RuntimeError.duplicateRegistration(type: type, origin: old.origin)
            }
            entries[type] = Entry(type: type, origin: origin, factory: factory)
        }
    }

    public func unregister(_ type: String) {
        lock.withLock { _ = entries.removeValue(forKey: type) }
    }

    public func entry(_ type: String) -> Entry? { lock.withLock { entries[type] } }

    /// Registered types, sorted.
    public var types: [String] { lock.withLock { entries.keys.sorted() } }
    public var allEntries: [Entry] { lock.withLock { entries.values.sorted { $0.type < $1.type } } }

    /// Creates the layer for `ctx.node`, or explains that its type is unknown.
    public func make(_ ctx: LayerContext) throws -> any Layer {
        guard let e = entry(ctx.type) else {
            throw RuntimeError.unknownLayerType(layer: ctx.name, type: ctx.type, known: types,
                                                location: ctx.node.location)
        }
        do {
            return try e.factory(ctx)
        } catch let p as ParamError {
            throw ctx.error(p.description)
        }
    }
}
