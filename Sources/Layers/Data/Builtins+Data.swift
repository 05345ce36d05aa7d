/// Data layers: batches from files on disk (tops data and label).
let dataLayerClasses: [any BuiltinLayer.Type] = [IDXDataLayer.self, ImageDataLayer.self]
