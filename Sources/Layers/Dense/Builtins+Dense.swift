/// Layers built on GEMM and windows: Convolution, Deconvolution,
/// InnerProduct, Pooling, LRN.
let denseLayerClasses: [any BuiltinLayer.Type] = [
    ConvolutionLayer.self, DeconvolutionLayer.self, InnerProductLayer.self, PoolingLayer.self, LRNLayer.self,
]
