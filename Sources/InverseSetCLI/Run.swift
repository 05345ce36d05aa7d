import ArgumentParser
import Foundation
import GraphIR
import ImageIO
import Runtime

/// `inverse-set run NET.prototxt [--weights W] --input NAME=FILE ... --out DIR
///  [--top-diff BLOB=FILE.npy ...] [--param-grads]`
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a network forward (and backward from given top diffs), writing every blob as .npy.",
        discussion: """
        Writes DIR/fwd_<blob>.npy for every blob (the value after the last in-place layer,
        as pycaffe's net.blobs). With --top-diff, runs backward from J = sum_b topdiff_b . b and
        writes DIR/grad_<input>.npy; with --param-grads also DIR/pgrad_<layer>_<i>.npy.
        Blob names unsafe in file names are percent-encoded (a/b -> a%2Fb).
        """)

    @Argument(help: "Network definition (.prototxt).") var prototxt: String
    @Option(help: "Trained weights (.caffemodel); without it, the layers' fillers initialise weights.") var weights: String?
    @Option(name: .customLong("input"), help: "NAME=FILE: an input blob from .npy (float32) or .png (see the preprocessing options).")
    var inputs: [String] = []
    @Option(help: "Output folder.") var out: String
    @Option(name: .customLong("top-diff"), help: "BLOB=FILE.npy: gradient seeded on a blob (repeatable).")
    var topDiffs: [String] = []
    @Flag(name: .customLong("param-grads"), help: "Also write parameter gradients.") var paramGrads = false
    @Option(help: "Seed of the fillers when no weights are given.") var seed: UInt64 = 0
    @OptionGroup var preprocessing: PreprocessOptions
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            let registry = try common.makeRegistry()
            let graph = try Toolbox.load(prototxt, weights: weights)
            var feeds: [String: Tensor] = [:]
            for (name, file) in try Toolbox.pairs(inputs, option: "input") {
                guard let v = graph.value(named: name), graph.inputs.contains(v) else {
                    let names = graph.inputs.map { graph.values[$0.index].blob }
                    throw RuntimeError.input("'\(name)' is not an input of \(prototxt) (inputs: \(names.joined(separator: ", ")))")
                }
                let declared = graph.inputShapes[v]
                let t = try preprocessing.load(file, declared: declared)
                Toolbox.warnAboutNonFinite(t, file: file, input: name)
                feeds[name] = t
            }
            let net = try Net(graph: graph, registry: registry, seed: seed,
                              allowMissingWeights: missingWeights.allowMissingWeights)
            Toolbox.warnAboutWeights(graph)
            Toolbox.noteFilledLayers(net, seed: seed)
            try net.forward(feeds)
            try Toolbox.makeDirectory(out)
            for blob in graph.blobNames {
                if let t = try net.blob(blob) { try NPY.write(t, to: "\(out)/fwd_\(NPY.fileSafe(blob)).npy") }
            }
            let diffs = try Toolbox.pairs(topDiffs, option: "top-diff")
            guard !diffs.isEmpty else { return }
            var seeds: [ValueID: Tensor] = [:]
            for (blob, file) in diffs {
                let id = try net.resolve(blob)
                let t = try NPY.read(file)
                Toolbox.warnAboutNonFinite(t, file: file, input: "top diff of \(blob)")
                guard t.count == net.shapes[id.index].count else {
                    throw RuntimeError.input("\(file): top diff for '\(blob)' has shape \(t.shape), the blob has \(net.shapes[id.index])")
                }
                seeds[id] = t
            }
            let grads = try net.backward(seeds: seeds, gradientsFor: graph.inputs, paramGrads: paramGrads)
            for input in graph.inputs {
                if let g = grads[input] {
                    try NPY.write(g, to: "\(out)/grad_\(NPY.fileSafe(graph.values[input.index].blob)).npy")
                }
            }
            if paramGrads {
                for (i, node) in graph.nodes.enumerated() {
                    for (j, g) in net.paramGrads[i].enumerated() {
                        try NPY.write(g, to: "\(out)/pgrad_\(NPY.fileSafe(node.name))_\(j).npy")
                    }
                }
            }
        }
    }
}

/// Caffe's usual preprocessing of an image input (PNG): resize, crop, channel
/// order, scale, mean.
struct PreprocessOptions: ParsableArguments {
    @Option(help: "Mean file (.npy of shape C,H,W or C; or a .binaryproto) subtracted after scaling to 0-255.") var mean: String?
    @Option(name: .customLong("mean-values"), help: "Per-channel mean, comma-separated (in the net's channel order).") var meanValues: String?
    @Option(help: "Multiply pixel values (0-255) by this after mean subtraction (Caffe's input_scale).") var scale: Float = 1
    @Option(name: .customLong("raw-scale"), help: "Pixel range before mean subtraction (Caffe's raw_scale; 255 keeps 0-255).") var rawScale: Float = 255
    @Option(name: .customLong("channel-swap"), help: "Channel order as indices into RGB, e.g. 2,1,0 for BGR (Caffe's default for ImageNet models).") var channelSwap: String = "2,1,0"
    @Flag(name: .customLong("center-crop"), help: "Resize the short side then crop the centre, instead of resizing to the exact input size.") var centerCrop = false

    func load(_ file: String, declared: Shape?) throws -> Tensor {
        if file.lowercased().hasSuffix(".npy") { return try NPY.read(file) }
        guard file.lowercased().hasSuffix(".png") else {
            throw RuntimeError.input("\(file): inputs must be .npy or .png")
        }
        let image = try PNGImage.read(file)
        let swap = try channelSwap.split(separator: ",").map { s -> Int in
            guard let i = Int(s.trimmingCharacters(in: .whitespaces)), (0..<3).contains(i) else {
                throw RuntimeError.input("--channel-swap expects indices 0-2, got '\(channelSwap)'")
            }
            return i
        }
        var meanTensor: Tensor? = nil
        if let mean { meanTensor = try MeanFile.read(mean) }
        var meanPerChannel: [Float]? = nil
        if let meanValues {
            meanPerChannel = try meanValues.split(separator: ",").map { s in
                guard let v = Float(s.trimmingCharacters(in: .whitespaces)) else {
                    throw RuntimeError.input("--mean-values expects numbers, got '\(meanValues)'")
                }
                return v
            }
        }
        let pre = Preprocessor(channelSwap: swap, rawScale: rawScale, scale: scale, mean: meanTensor,
                               meanValues: meanPerChannel, centerCrop: centerCrop)
        return try pre.tensor(from: image, shape: declared)
    }
}
