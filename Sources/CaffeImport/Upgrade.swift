import GraphIR

/// Upgrades of old Caffe net definitions to the current format, as BVLC
/// Caffe's `upgrade_proto.cpp` does them, on parameter trees:
///
/// - V0 (`layers { layer { type: "conv" ... } }`) -> V1,
/// - V1 (`layers { type: CONVOLUTION blobs_lr: 1 }`) -> current `layer`,
/// - `input` / `input_dim` / `input_shape` -> an Input layer named "input".
enum Upgrade {
    static func upgradeNet(_ net: ParamMessage, file: String) throws -> ParamMessage {
        var net = net
        let v1 = net.messages("layers")
        if !v1.isEmpty {
            if !net.messages("layer").isEmpty {
                throw ImportError.network(file: file, "the net mixes 'layer' (current) and 'layers' (V1) entries; use one format")
            }
            var upgraded: [ParamMessage] = []
            // V0 padding layers are folded into the convolution that reads them.
            let v1Layers = try foldV0Padding(v1, file: file)
            for l in v1Layers { upgraded.append(try upgradeV1(l, file: file)) }
            net.remove("layers")
            for l in upgraded { net.append("layer", .message(l)) }
        }
        try upgradeInputs(&net, file: file)
        return net
    }

    // MARK: inputs

    private static func upgradeInputs(_ net: inout ParamMessage, file: String) throws {
        let names = (try? net.strings("input")) ?? []
        guard !names.isEmpty else { return }
        let shapes = net.messages("input_shape")
        let dims = (try? net.ints("input_dim")) ?? []
        var param = ParamMessage(schema: CaffeSchemaRegistry.shared.schema("caffe.InputParameter"))
        let shapeSchema = CaffeSchemaRegistry.shared.schema("caffe.BlobShape")
        if !shapes.isEmpty {
            guard shapes.count == names.count else {
                throw ImportError.network(file: file, "\(names.count) inputs but \(shapes.count) input_shape entries; give one input_shape per input")
            }
            for s in shapes { param.append("shape", .message(s)) }
        } else if !dims.isEmpty {
            guard dims.count == 4 * names.count else {
                throw ImportError.network(file: file, "input_dim must give 4 numbers (N, C, H, W) per input: \(names.count) inputs but \(dims.count) input_dim values")
            }
            for i in names.indices {
                var s = ParamMessage(schema: shapeSchema)
                for d in dims[(4 * i)..<(4 * i + 4)] { s.append("dim", .int(Int64(d))) }
                param.append("shape", .message(s))
            }
        } else {
            throw ImportError.network(file: file, "net input '\(names[0])' has no shape: add input_shape { dim: ... } or four input_dim lines")
        }
        var layer = ParamMessage(schema: CaffeSchemaRegistry.shared.layerParameter)
        layer.append("name", .string("input"))
        layer.append("type", .string("Input"))
        for n in names { layer.append("top", .string(n)) }
        layer.append("input_param", .message(param))
        let rest = net.fields.filter { $0.name == "layer" }
        net.remove("input"); net.remove("input_shape"); net.remove("input_dim")
        net.remove("layer")
        net.append("layer", .message(layer))
        for f in rest { net.fields.append(f) }
    }

    // MARK: V1 -> current

    /// V1LayerType enum names -> current type strings.
    static let v1TypeNames: [String: String] = [
        "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
        "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
        "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
        "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
        "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
        "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct",
        "LRN": "LRN", "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
        "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
        "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
        "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
        "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
    ]

    static func upgradeV1(_ v1In: ParamMessage, file: String) throws -> ParamMessage {
        var v1 = v1In
        if v1.has("layer") { v1 = try upgradeV0(v1, file: file) }
        let reg = CaffeSchemaRegistry.shared
        var out = ParamMessage(schema: reg.layerParameter, location: v1.location)
        let paramSchema = reg.schema("caffe.ParamSpec")
        var specs: [ParamMessage] = []
        func spec(_ i: Int) -> Int {
            while specs.count <= i { specs.append(ParamMessage(schema: paramSchema)) }
            return i
        }
        for f in v1.fields {
            switch f.name {
            case "type":
                let name: String
                switch f.value {
                case .enumValue(let n, _), .identifier(let n), .string(let n): name = n
                default: name = f.value.description
                }
                guard let t = v1TypeNames[name] else {
                    throw ImportError.network(file: file, "V1 layer '\((try? v1.string("name")) ?? "?")' has unknown type \(name)")
                }
                out.fields.append(ParamField(name: "type", value: .string(t), location: f.location))
            case "param":
                break   // names become ParamSpec entries below
            case "blobs_lr", "weight_decay", "blob_share_mode":
                break
            default:
                if reg.layerParameter.field(f.name) != nil { out.fields.append(f) }
                else if f.name != "layer" {
                    throw ImportError.network(file: file, "V1 field '\(f.name)' has no current equivalent")
                }
            }
        }
        // param names, blobs_lr, weight_decay, blob_share_mode -> ParamSpec.
        for (i, v) in v1.values("param").enumerated() { specs[spec(i)].set("name", v) }
        for (i, v) in v1.values("blobs_lr").enumerated() { specs[spec(i)].set("lr_mult", v) }
        for (i, v) in v1.values("weight_decay").enumerated() { specs[spec(i)].set("decay_mult", v) }
        for (i, v) in v1.values("blob_share_mode").enumerated() {
            if case .enumValue(let n, let num) = v { specs[spec(i)].set("share_mode", .enumValue(name: n, number: num)) }
        }
        for s in specs { out.append("param", .message(s)) }
        return out
    }

    // MARK: V0 -> V1

    /// V0 type strings -> V1 enum names.
    static let v0Types: [String: String] = [
        "accuracy": "ACCURACY", "bnll": "BNLL", "concat": "CONCAT", "conv": "CONVOLUTION", "data": "DATA",
        "dropout": "DROPOUT", "euclidean_loss": "EUCLIDEAN_LOSS", "flatten": "FLATTEN", "hdf5_data": "HDF5_DATA",
        "hdf5_output": "HDF5_OUTPUT", "im2col": "IM2COL", "images": "IMAGE_DATA", "infogain_loss": "INFOGAIN_LOSS",
        "innerproduct": "INNER_PRODUCT", "lrn": "LRN", "multinomial_logistic_loss": "MULTINOMIAL_LOGISTIC_LOSS",
        "pool": "POOLING", "relu": "RELU", "sigmoid": "SIGMOID", "softmax": "SOFTMAX", "softmax_loss": "SOFTMAX_LOSS",
        "split": "SPLIT", "tanh": "TANH", "window_data": "WINDOW_DATA",
    ]

    /// Converts a V1 entry whose `layer` field holds a V0 layer.
    static func upgradeV0(_ wrapper: ParamMessage, file: String) throws -> ParamMessage {
        let reg = CaffeSchemaRegistry.shared
        let v0 = wrapper.message("layer")
        var out = ParamMessage(schema: reg.v1LayerParameter, location: wrapper.location)
        for f in wrapper.fields where f.name != "layer" { out.fields.append(f) }
        let typeName = try v0.string("type")
        guard let v1Type = v0Types[typeName] else {
            throw ImportError.network(file: file, "V0 layer '\((try? v0.string("name")) ?? "?")' has type '\(typeName)', which has no V1 equivalent")
        }
        if v0.has("name") { out.set("name", v0.value("name")!) }
        if case .enumeration(let vals)? = reg.v1LayerParameter.field("type")?.kind, let n = vals[v1Type] {
            out.set("type", .enumValue(name: v1Type, number: n))
        }
        for b in v0.values("blobs") { out.append("blobs", b) }
        for v in v0.values("blobs_lr") { out.append("blobs_lr", v) }
        for v in v0.values("weight_decay") { out.append("weight_decay", v) }

        func sub(_ name: String) -> ParamMessage {
            ParamMessage(schema: reg.v1LayerParameter.field(name)?.messageSchema())
        }
        func copy(_ from: String, _ to: String, _ m: inout ParamMessage) {
            for v in v0.values(from) { m.append(to, v) }
        }
        switch typeName {
        case "conv":
            var p = sub("convolution_param")
            copy("num_output", "num_output", &p); copy("biasterm", "bias_term", &p)
            copy("weight_filler", "weight_filler", &p); copy("bias_filler", "bias_filler", &p)
            copy("pad", "pad", &p); copy("kernelsize", "kernel_size", &p); copy("group", "group", &p)
            copy("stride", "stride", &p)
            out.set("convolution_param", .message(p))
        case "innerproduct":
            var p = sub("inner_product_param")
            copy("num_output", "num_output", &p); copy("biasterm", "bias_term", &p)
            copy("weight_filler", "weight_filler", &p); copy("bias_filler", "bias_filler", &p)
            out.set("inner_product_param", .message(p))
        case "pool":
            var p = sub("pooling_param")
            copy("kernelsize", "kernel_size", &p); copy("stride", "stride", &p); copy("pad", "pad", &p)
            if case .enumValue(let n, let num)? = v0.value("pool") { p.set("pool", .enumValue(name: n, number: num)) }
            out.set("pooling_param", .message(p))
        case "dropout":
            var p = sub("dropout_param"); copy("dropout_ratio", "dropout_ratio", &p)
            out.set("dropout_param", .message(p))
        case "lrn":
            var p = sub("lrn_param")
            copy("local_size", "local_size", &p); copy("alpha", "alpha", &p); copy("beta", "beta", &p); copy("k", "k", &p)
            out.set("lrn_param", .message(p))
        case "concat":
            var p = sub("concat_param"); copy("concat_dim", "concat_dim", &p)
            out.set("concat_param", .message(p))
        case "data", "images", "window_data", "hdf5_data":
            break   // training inputs; not needed at deploy time
        default:
            break
        }
        return out
    }

    /// V0 nets express padding as separate "padding" layers before a
    /// convolution; Caffe folds their `pad` into the convolution.
    static func foldV0Padding(_ layers: [ParamMessage], file: String) throws -> [ParamMessage] {
        var out: [ParamMessage] = []
        var paddingOf: [String: (pad: ParamValue, bottom: ParamValue)] = [:]   // top -> pad
        for l in layers {
            let v0 = l.message("layer")
            if l.has("layer"), (try? v0.string("type")) == "padding" {
                guard let top = l.values("top").first, case .string(let t) = top,
                      let bottom = l.values("bottom").first, let pad = v0.value("pad") else {
                    throw ImportError.network(file: file, "V0 padding layer needs one bottom, one top and pad")
                }
                paddingOf[t] = (pad, bottom)
                continue
            }
            var l = l
            if l.has("layer"), (try? v0.string("type")) == "conv",
               case .string(let b)? = l.values("bottom").first, let p = paddingOf[b] {
                var inner = v0
                inner.set("pad", p.pad)
                l.set("layer", .message(inner))
                l.remove("bottom")
                l.fields.insert(ParamField(name: "bottom", value: p.bottom), at: 0)
            }
            out.append(l)
        }
        return out
    }
}
