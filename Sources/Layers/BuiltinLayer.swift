import GraphIR
import Runtime

/// A layer that ships with InverseSet. Each one lists the Caffe type names it
/// implements next to its code; `registerBuiltins` registers them all through
/// the same public `LayerRegistry.register` that plugins use.
public protocol BuiltinLayer: Layer {
    /// Caffe `type` strings this class implements (usually one).
    static var typeNames: [String] { get }
    init(_ ctx: LayerContext) throws
}

/// Every built-in layer class. Each group file (`Builtins+Group.swift`)
/// lists the classes of its layers.
let builtinLayerClasses: [any BuiltinLayer.Type] =
    [InputLayer.self] + denseLayerClasses + elementwiseLayerClasses + structureLayerClasses + dataLayerClasses

/// Registers every built-in layer type into `registry`.
public func registerBuiltins(into registry: LayerRegistry) throws {
    for cls in builtinLayerClasses {
        for name in cls.typeNames {
            try registry.register(name, origin: "built-in") { try cls.init($0) }
        }
    }
}

/// A fresh registry holding the built-in layers.
public func builtinRegistry() throws -> LayerRegistry {
    let r = LayerRegistry()
    try registerBuiltins(into: r)
    return r
}
