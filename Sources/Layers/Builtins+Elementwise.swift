/// Element-wise and per-channel layers.
let elementwiseLayerClasses: [any BuiltinLayer.Type] = [ReLULayer.self]
