/// Element-wise and per-channel layers.
let elementwiseLayerClasses: [any BuiltinLayer.Type] = [
    ReLULayer.self, PReLULayer.self, ELULayer.self, SigmoidLayer.self, TanHLayer.self,
    AbsValLayer.self, BNLLLayer.self, PowerLayer.self, ExpLayer.self, LogLayer.self,
    ClipLayer.self, SwishLayer.self, ThresholdLayer.self, DropoutLayer.self,
    BatchNormLayer.self, ScaleLayer.self, BiasLayer.self, MVNLayer.self,
]
