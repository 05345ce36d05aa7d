import Foundation
import GraphIR

/// The Caffe files of a DeepSiM-style generator for a classifier (what
/// `inverse-set train-generator` writes and trains):
///
/// - the encoder E: the classifier cut at the code blob (e.g. fc6 after its
///   ReLU), frozen; Dropout layers are left out (they would be active in
///   training);
/// - the generator G: code -> fully connected 1024 -> fully connected to a
///   small map (channels x b x b) -> one 4x4 stride-2 deconvolution per
///   doubling (channels halving) -> the image channels -> sliced to the
///   image size when the doublings overshoot it -> Sigmoid (images in
///   [0, 1]) scaled to the data's range; leaky ReLU (0.3) in between;
/// - the comparator: a second copy of E (weights shared by `param` name)
///   reading G's image;
/// - phase A: image loss + `featureWeight` x the code's feature loss;
///   phase B (adversarial): the same, plus `scoresWeight` x the loss of the
///   classifier's scores (the input of its final Softmax) through E and the
///   comparator, and a discriminator (`discriminatorNet`).
public struct GeneratorRecipe {
    /// The data source of the training net.
    public enum Source: Equatable {
        /// An IDX image file (IDXData).
        case idx(String)
        /// An ImageData list ("path label" lines) with its root folder.
        case imageList(String, root: String)
        /// Input layers fed by the caller (arrays from an .npy file).
        case fed
    }

    public var classifier: ParamMessage
    public var classifierFile: String
    /// The classifier's image input blob.
    public var inputBlob: String
    public var code: String
    public var scores: String?
    public var channels: Int, height: Int, width: Int
    public var codeDim: Int
    /// Parameter blobs per classifier layer, by name.
    public var parameterCounts: [String: Int]
    public var source: Source
    /// The data layer's scale: the images are pixel x scale; G's range is
    /// [0, 256 x scale] (1 for the usual 1/256).
    public var scale: Double = 0.00390625
    public var batch = 64
    public var seed = 2
    public var featureWeight = 0.02
    public var scoresWeight = 0.3
    public var iterations = 6000
    public var adversarialRounds = 3000
    /// Folder the files go to, as the solvers will name them (relative to
    /// the current directory, as Caffe's solver paths are).
    public var folder: String

    /// Reads the classifier's deploy prototxt and checks the code and scores
    /// blobs. `graph` is the classifier loaded with its weights (they give
    /// each layer's parameter count); `codeDim` (values per image of the
    /// code blob) comes from the caller, who can run the net.
    public init(classifierDeploy: String, graph: Graph, code: String, scores: String?, codeDim: Int,
                folder: String, source: Source) throws {
        classifierFile = classifierDeploy
        classifier = try CaffeModel.upgrade(try CaffeModel.readPrototxt(classifierDeploy), file: classifierDeploy)
        guard graph.inputs.count == 1, let input = graph.inputs.first,
              let shape = graph.inputShapes[input], shape.dims.count == 4 else {
            throw ImportError.file(classifierDeploy, "must read one 4-d image input (N x C x H x W) to train a generator for it")
        }
        inputBlob = graph.values[input.index].blob
        var names: [String] = [], seen = Set<String>()
        for v in graph.values where seen.insert(v.blob).inserted { names.append(v.blob) }
        guard seen.contains(code) else {
            throw ImportError.file(classifierDeploy, "has no blob '\(code)' for the code (--code); its blobs: \(names.joined(separator: ", "))")
        }
        if let scores, !seen.contains(scores) {
            throw ImportError.file(classifierDeploy, "has no blob '\(scores)' for the scores (--scores); its blobs: \(names.joined(separator: ", ")); give 'none' to leave the scores term out")
        }
        var counts: [String: Int] = [:]
        for node in graph.nodes { counts[node.name] = node.weights.count }
        parameterCounts = counts
        self.code = code
        self.scores = scores
        channels = shape.dims[1]; height = shape.dims[2]; width = shape.dims[3]
        self.codeDim = codeDim
        self.folder = folder
        self.source = source
    }

    /// The scores blob by default: the input of the classifier's final
    /// Softmax, if it ends with one.
    public static func defaultScores(_ deploy: String) throws -> String? {
        let net = try CaffeModel.upgrade(try CaffeModel.readPrototxt(deploy), file: deploy)
        guard let last = net.messages("layer").last, (try? last.string("type")) == "Softmax" else { return nil }
        return try last.strings("bottom").first
    }

    // MARK: - Layers

    /// The classifier's layers from its input up to `blob` (and the in-place
    /// layers on it), without Input and Dropout layers.
    func layers(upTo blob: String) -> [ParamMessage] {
        var out: [ParamMessage] = []
        var reached = false
        for layer in classifier.messages("layer") {
            let type = (try? layer.string("type")) ?? ""
            let tops = (try? layer.strings("top")) ?? [], bottoms = (try? layer.strings("bottom")) ?? []
            if reached && !(tops == [blob] && bottoms == [blob]) { break }
            if type == "Input" || type == "Dropout" { continue }
            out.append(layer)
            if tops.contains(blob) { reached = true }
        }
        return out
    }

    /// A classifier layer, frozen and with its parameters named for sharing;
    /// with `suffix`, renamed (layer and blobs; the input becomes `image`).
    func frozen(_ layer: ParamMessage, suffix: String = "", image: String = "gen", stopAt: String? = nil) -> ParamMessage {
        var l = ParamMessage(schema: layer.schema)
        let name = (try? layer.string("name")) ?? ""
        let input = inputBlob
        func rename(_ b: String) -> String { suffix.isEmpty ? b : (b == input ? image : b + suffix) }
        for f in layer.fields {
            switch f.name {
            case "name": l.append("name", .string(name + suffix))
            case "bottom", "top":
                if case .string(let b) = f.value { l.append(f.name, .string(rename(b))) }
            case "param", "include", "exclude", "propagate_down", "loss_weight": continue
            default: l.append(f.name, f.value)
            }
        }
        // Parameters shared by name, never learned.
        var fields = l.fields
        let insertAt = fields.lastIndex { $0.name == "top" || $0.name == "bottom" }.map { $0 + 1 } ?? fields.count
        var params: [ParamField] = []
        for k in 0..<(parameterCounts[name] ?? 0) {
            let suffixes = ["w", "b"]
            var p = ParamMessage()
            p.append("name", .string("\(name)_\(k < 2 ? suffixes[k] : "p\(k)")"))
            p.append("lr_mult", .double(0))
            p.append("decay_mult", .double(0))
            params.append(ParamField(name: "param", value: .message(p)))
        }
        fields.insert(contentsOf: params, at: insertAt)
        l.fields = fields
        if (try? layer.string("type")) == "BatchNorm" {
            var bn = l.message("batch_norm_param")
            bn.set("use_global_stats", .bool(true))
            l.set("batch_norm_param", .message(bn))
        }
        return l
    }

    // MARK: - Generator

    /// Doublings and base size: the smallest b <= 8 with b x 2^k >= size.
    var geometry: (doublings: Int, base: Int) {
        let size = max(height, width)
        var k = 0
        while (size + (1 << k) - 1) >> k > 8 { k += 1 }
        if k == 0 { k = 1 }
        return (k, (size + (1 << k) - 1) >> k)
    }

    /// Channels of the base map: 32 x 2^(k-1), at most 256.
    var baseChannels: Int { min(256, 32 << (geometry.doublings - 1)) }

    /// The images' range: [0, 256 x scale].
    public var range: Double { 256 * scale }

    func generatorLayers(deploy: Bool) -> [String] {
        let (k, b) = geometry
        let c0 = baseChannels
        var out: [String] = []
        out.append(#"layer { name: "defc7" type: "InnerProduct" bottom: "\#(code)" top: "defc7"\#(deploy ? "" : " propagate_down: false")"#)
        out.append(#"        inner_product_param { num_output: 1024 weight_filler { type: "msra" } } }"#)
        out.append(#"layer { name: "relu_defc7" type: "ReLU" bottom: "defc7" top: "defc7" relu_param { negative_slope: 0.3 } }"#)
        out.append(#"layer { name: "defc6" type: "InnerProduct" bottom: "defc7" top: "defc6""#)
        out.append(#"        inner_product_param { num_output: \#(c0 * b * b) weight_filler { type: "msra" } } }"#)
        out.append(#"layer { name: "relu_defc6" type: "ReLU" bottom: "defc6" top: "defc6" relu_param { negative_slope: 0.3 } }"#)
        out.append(#"layer { name: "reshape" type: "Reshape" bottom: "defc6" top: "map" reshape_param { shape { dim: 0 dim: \#(c0) dim: \#(b) dim: \#(b) } } }"#)
        var bottom = "map", ch = c0
        for i in stride(from: k - 1, through: 0, by: -1) {
            let outCh = i == 0 ? channels : max(16, ch / 2)
            let name = "deconv\(i)"
            out.append(#"layer { name: "\#(name)" type: "Deconvolution" bottom: "\#(bottom)" top: "\#(name)""#)
            out.append(#"        convolution_param { num_output: \#(outCh) kernel_size: 4 stride: 2 pad: 1 weight_filler { type: "msra" } } }"#)
            if i > 0 {
                out.append(#"layer { name: "relu_\#(name)" type: "ReLU" bottom: "\#(name)" top: "\#(name)" relu_param { negative_slope: 0.3 } }"#)
            }
            bottom = name; ch = outCh
        }
        let full = b << k
        for (axis, size) in [(2, height), (3, width)] where full > size {
            let name = axis == 2 ? "crop_rows" : "crop_columns"
            out.append(#"layer { name: "\#(name)" type: "Slice" bottom: "\#(bottom)" top: "\#(name)" top: "\#(name)_rest" slice_param { axis: \#(axis) slice_point: \#(size) } }"#)
            out.append(#"layer { name: "\#(name)_silence" type: "Silence" bottom: "\#(name)_rest" }"#)
            bottom = name
        }
        if abs(range - 1) < 1e-12 {
            out.append(#"layer { name: "gen" type: "Sigmoid" bottom: "\#(bottom)" top: "gen" }"#)
        } else {
            out.append(#"layer { name: "sigmoid" type: "Sigmoid" bottom: "\#(bottom)" top: "sigmoid" }"#)
            out.append(#"layer { name: "gen" type: "Power" bottom: "sigmoid" top: "gen" power_param { scale: \#(range) } }"#)
        }
        return out
    }

    // MARK: - Files

    /// The data layer: shuffled (seeded) batches for training, or the
    /// data in order for the statistics pass.
    func dataLayer(batch: Int, shuffled: Bool) -> String {
        let order = shuffled ? " shuffle: true" : ""
        switch source {
        case .idx(let path):
            return #"""
                layer { name: "train_data" type: "IDXData" top: "\#(inputBlob)"
                        idx_data_param { source: \#(CaffeModel.quoted(path)) batch_size: \#(batch)\#(order) scale: \#(CaffeModel.textValue(.double(scale)))\#(shuffled ? " seed: \(seed)" : "") } }
                """#
        case .imageList(let list, let root):
            return #"""
                layer { name: "train_data" type: "ImageData" top: "\#(inputBlob)" top: "label"
                        transform_param { scale: \#(CaffeModel.textValue(.double(scale))) }
                        image_data_param { source: \#(CaffeModel.quoted(list)) root_folder: \#(CaffeModel.quoted(root)) batch_size: \#(batch)\#(order) is_color: \#(channels == 3) new_height: \#(height) new_width: \#(width) } }
                layer { name: "silence_label" type: "Silence" bottom: "label" }
                """#
        case .fed:
            return #"layer { name: "train_data" type: "Input" top: "\#(inputBlob)" input_param { shape { dim: \#(batch) dim: \#(channels) dim: \#(height) dim: \#(width) } } }"#
        }
    }

    func header(_ what: String) -> String {
        "# \(what)\n# Written by `inverse-set train-generator` for \(classifierFile) (code '\(code)'); see docs/train-generator.md.\n"
    }

    func encoderAndComparator(through blob: String) -> [String] {
        let e = layers(upTo: blob)
        var out = e.map { "layer { \(CaffeModel.textFormat(frozen($0))) }" }
        // E's code takes no gradient from G (propagate_down on defc7 says so).
        out += generatorLayers(deploy: false)
        out += e.map { "layer { \(CaffeModel.textFormat(frozen($0, suffix: "_f"))) }" }
        return out
    }

    /// Phase A's training net: image loss and the code's feature loss.
    public var trainNet: String {
        generatorTrainNet("Training net of the generator, phase A (image and feature losses)", withScores: false)
    }

    /// Phase B's training net: phase A's plus the scores term (when the
    /// classifier has scores); the adversarial term comes from the discriminator.
    public var adversarialTrainNet: String {
        generatorTrainNet("Training net of the generator, phase B (adversarial fine-tuning with discriminator_train.prototxt)",
                          withScores: true)
    }

    /// Data, E and the comparator up to the code (and the scores), G, and
    /// the Euclidean losses between them.
    func generatorTrainNet(_ title: String, withScores: Bool) -> String {
        let scores = withScores ? self.scores : nil
        var lines = [header(title), "name: \"Generator\"", dataLayer(batch: batch, shuffled: true)]
        lines += encoderAndComparator(through: scores ?? code)
        lines.append(#"layer { name: "image_loss" type: "EuclideanLoss" bottom: "gen" bottom: "\#(inputBlob)" top: "image_loss" }"#)
        for (name, blob, weight) in [("feature_loss", code, featureWeight)] + (scores.map { [("scores_loss", $0, scoresWeight)] } ?? []) {
            lines.append(#"layer { name: "\#(name)" type: "EuclideanLoss" bottom: "\#(blob)_f" bottom: "\#(blob)" top: "\#(name)""#)
            lines.append(#"        propagate_down: true propagate_down: false loss_weight: \#(CaffeModel.textValue(.double(weight))) }"#)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The generator alone: code in, image out.
    public var deployNet: String {
        var lines = [header("The generator: code '\(code)' (\(codeDim) values) -> image \(channels)x\(height)x\(width) in [0, \(CaffeModel.textValue(.double(range)))]"),
                     "name: \"Generator\"",
                     #"layer { name: "code" type: "Input" top: "\#(code)" input_param { shape { dim: 1 dim: \#(codeDim) } } }"#]
        lines += generatorLayers(deploy: true)
        return lines.joined(separator: "\n") + "\n"
    }

    /// The discriminator: 3x3 convolutions 16 (stride 1), 32, 64 (stride 2),
    /// 64 (stride 1), then stride-2 convolutions of 128 while the map is
    /// larger than 8, leaky ReLU (0.2), global average pooling, fully
    /// connected 128 and 2, SoftmaxWithLoss (label 1 = real, 0 = generated).
    public var discriminatorNet: String {
        var lines = [header("Discriminator of the adversarial phase: real (label 1) or generated (label 0)"),
                     "name: \"Discriminator\"",
                     #"layer { name: "data" type: "Input" top: "data" input_param { shape { dim: \#(batch) dim: \#(channels) dim: \#(height) dim: \#(width) } } }"#,
                     #"layer { name: "label" type: "Input" top: "label" input_param { shape { dim: \#(batch) } } }"#]
        var convs: [(Int, Int)] = [(16, 1), (32, 2), (64, 2), (64, 1)]
        var size = (max(height, width) + 3) / 4
        while size > 8 { convs.append((128, 2)); size = (size + 1) / 2 }
        var bottom = "data"
        for (i, (n, s)) in convs.enumerated() {
            let name = "dconv\(i + 1)"
            lines.append(#"layer { name: "\#(name)" type: "Convolution" bottom: "\#(bottom)" top: "\#(name)""#)
            lines.append(#"        convolution_param { num_output: \#(n) kernel_size: 3 pad: 1\#(s > 1 ? " stride: \(s)" : "") weight_filler { type: "msra" } } }"#)
            lines.append(#"layer { name: "drelu\#(i + 1)" type: "ReLU" bottom: "\#(name)" top: "\#(name)" relu_param { negative_slope: 0.2 } }"#)
            bottom = name
        }
        lines.append(#"layer { name: "dpool" type: "Pooling" bottom: "\#(bottom)" top: "dpool" pooling_param { pool: AVE global_pooling: true } }"#)
        lines.append(#"layer { name: "dfc1" type: "InnerProduct" bottom: "dpool" top: "dfc1" inner_product_param { num_output: 128 weight_filler { type: "msra" } } }"#)
        lines.append(#"layer { name: "drelu_fc1" type: "ReLU" bottom: "dfc1" top: "dfc1" relu_param { negative_slope: 0.2 } }"#)
        lines.append(#"layer { name: "dfc2" type: "InnerProduct" bottom: "dfc1" top: "dfc2" inner_product_param { num_output: 2 weight_filler { type: "msra" } } }"#)
        lines.append(#"layer { name: "discriminator_loss" type: "SoftmaxWithLoss" bottom: "dfc2" bottom: "label" top: "discriminator_loss" }"#)
        return lines.joined(separator: "\n") + "\n"
    }

    func path(_ file: String) -> String { folder.isEmpty ? file : (folder as NSString).appendingPathComponent(file) }

    /// An Adam solver file: `lines` (schedule, display, iterations,
    /// snapshots) between the net and the snapshot prefix.
    func adamSolver(_ title: String, net: String, lr: String, beta1: String, _ lines: [String],
                    prefix: String, seed: Int) -> String {
        header(title) + ([
            "net: \(CaffeModel.quoted(path(net)))", "type: \"Adam\"", "base_lr: \(lr)", "momentum: \(beta1)",
            "momentum2: 0.999", "delta: 1e-8",
        ] + lines + ["snapshot_prefix: \(CaffeModel.quoted(path(prefix)))", "random_seed: \(seed)"])
            .joined(separator: "\n") + "\n"
    }

    /// Phase A's solver: Adam 0.001, a tenfold drop at 3/4 of the iterations.
    public var solver: String {
        adamSolver("Solver of the generator, phase A", net: "generator_train.prototxt", lr: "0.001", beta1: "0.9", [
            "lr_policy: \"multistep\"", "stepvalue: \(iterations * 3 / 4)", "gamma: 0.1", "display: 100",
            "max_iter: \(iterations)", "snapshot: \(iterations)",
        ], prefix: "work/generator", seed: seed)
    }

    /// Phase B's solvers: Adam 2e-4 with beta1 0.5 for both nets (the usual
    /// choice for adversarial training), snapshots every 500 rounds.
    public var adversarialSolver: String {
        adamSolver("Solver of the generator, phase B (with --discriminator discriminator_solver.prototxt)",
                   net: "generator_adversarial_train.prototxt", lr: "0.0002", beta1: "0.5", [
            "lr_policy: \"fixed\"", "display: 100", "max_iter: \(adversarialRounds)", "snapshot: 500",
        ], prefix: "work/generator_adversarial", seed: seed)
    }

    public var discriminatorSolver: String {
        adamSolver("Solver of the discriminator, phase B", net: "discriminator_train.prototxt", lr: "0.0002", beta1: "0.5", [
            "weight_decay: 0.0004", "lr_policy: \"fixed\"", "display: 0", "max_iter: \(adversarialRounds)",
        ], prefix: "work/discriminator", seed: seed + 1)
    }

    /// The encoder alone on the training data in order, for the code statistics.
    public func statisticsNet(batch: Int) -> String {
        var lines = [header("The encoder on the training data, for the code statistics"), "name: \"CodeStatistics\""]
        lines.append(dataLayer(batch: batch, shuffled: false))
        lines += layers(upTo: code).map { "layer { \(CaffeModel.textFormat(frozen($0))) }" }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every file, by name.
    public var files: [(name: String, text: String)] {
        [("generator_train.prototxt", trainNet), ("generator_solver.prototxt", solver),
         ("generator_adversarial_train.prototxt", adversarialTrainNet),
         ("generator_adversarial_solver.prototxt", adversarialSolver),
         ("discriminator_train.prototxt", discriminatorNet), ("discriminator_solver.prototxt", discriminatorSolver),
         ("generator_deploy.prototxt", deployNet)]
    }
}
