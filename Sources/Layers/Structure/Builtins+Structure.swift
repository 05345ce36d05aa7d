/// Layers that move, combine or reduce data, and losses.
let structureLayerClasses: [any BuiltinLayer.Type] = [
    SoftmaxLayer.self, ConcatLayer.self, SliceLayer.self, SplitLayer.self, FlattenLayer.self,
    ReshapeLayer.self, CropLayer.self, TileLayer.self, ReductionLayer.self, ArgMaxLayer.self,
    SilenceLayer.self, EltwiseLayer.self, EuclideanLossLayer.self, SoftmaxWithLossLayer.self,
    SigmoidCrossEntropyLossLayer.self, AccuracyLayer.self,
]
