/// Layers that move, combine or reduce data, and losses.
let structureLayerClasses: [any BuiltinLayer.Type] = []
