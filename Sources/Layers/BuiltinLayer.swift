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

/// Registers every built-in layer type into `registry`. `imageDecoder`
/// reads the image files of ImageData layers other than PGM/PPM (the tool
/// passes ImageIO's PNG decoder).
public func registerBuiltins(into registry: LayerRegistry, imageDecoder: (any ImageFileDecoder)? = nil) throws {
    for cls in builtinLayerClasses {
        for name in cls.typeNames {
            if cls == ImageDataLayer.self {
                try registry.register(name, origin: "built-in") { try ImageDataLayer($0, decoder: imageDecoder) }
            } else {
                try registry.register(name, origin: "built-in") { try cls.init($0) }
            }
        }
    }
}

/// A fresh registry holding the built-in layers.
public func builtinRegistry(imageDecoder: (any ImageFileDecoder)? = nil) throws -> LayerRegistry {
    let r = LayerRegistry()
    try registerBuiltins(into: r, imageDecoder: imageDecoder)
    return r
}
