/// Layers built on GEMM and windows: Convolution, Deconvolution,
/// InnerProduct, Pooling, LRN.
let denseLayerClasses: [any BuiltinLayer.Type] = []
