import ArgumentParser
import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler

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

        PNG inputs: several files for one input (--input data=a.png,b.png or the flag repeated) make one batch, one image per item. Their preprocessing comes from the flags, else from a pipeline file (*.json) in the prototxt's folder that uses this net as its classifier (its data.preprocess), else Caffe's ImageNet defaults for a 3-channel input (--raw-scale 255 --channel-swap 2,1,0); a 1-channel input needs --raw-scale. When an output is a class vector, the top 5 classes of each item are printed (names from --labels or that pipeline's labels file).

        Example: inverse-set run Models/fashion/classifier_deploy.prototxt --weights Models/fashion/classifier.caffemodel --input data=sneaker.png --out out/run
        """.reflowed)

    @Argument(help: "Network definition (.prototxt).") var prototxt: String
    @Option(help: "Trained weights (.caffemodel); without it, the layers' fillers initialise weights.") var weights: String?
    @Option(name: .customLong("input"), help: "NAME=FILE: an input blob from .npy (float32) or .png (see the preprocessing options).")
    var inputs: [String] = []
    @Option(help: "Output folder.") var out: String
    @Option(name: .customLong("top-diff"), help: "BLOB=FILE.npy: gradient seeded on a blob (repeatable).")
    var topDiffs: [String] = []
    @Flag(name: .customLong("param-grads"), help: "Also write parameter gradients.") var paramGrads = false
    @Option(help: "Seed of the fillers when no weights are given.") var seed: UInt64 = 0
    @Option(help: "Class names, one per line, for the top-5 of a class-vector output (default: the labels of a pipeline next to the prototxt).")
    var labels: String?
    @OptionGroup var preprocessing: PreprocessOptions
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            let registry = try common.makeRegistry()
            let graph = try Toolbox.load(prototxt, weights: weights)
            var feeds: [String: Tensor] = [:]
            var files: [String: [String]] = [:], order: [String] = []
            for (name, list) in try Toolbox.pairs(inputs, option: "input") {
                if files[name] == nil { order.append(name) }
                files[name, default: []] += list.split(separator: ",").map(String.init)
            }
            let nearby = PreprocessOptions.pipelineUsing(prototxt)
            for name in order {
                guard let v = graph.value(named: name), graph.inputs.contains(v) else {
                    let names = graph.inputs.map { graph.values[$0.index].blob }
                    throw RuntimeError.input("'\(name)' is not an input of \(prototxt) (inputs: \(names.joined(separator: ", ")))")
                }
                let t = try preprocessing.load(files[name] ?? [], declared: graph.inputShapes[v], input: name, pipeline: nearby)
                for file in files[name] ?? [] { Toolbox.warnAboutNonFinite(t, file: file, input: name) }
                feeds[name] = t
            }
            let net = try Net(graph: graph, registry: registry, seed: seed,
                              allowMissingWeights: missingWeights.allowMissingWeights, threads: common.computeThreads)
            Toolbox.warnAboutWeights(graph)
            Toolbox.noteFilledLayers(net, seed: seed)
            try net.forward(feeds)
            try Toolbox.makeDirectory(out)
            let classNames = try labels.map { try Run.readLabels($0) } ?? nearby?.labels ?? []
            for output in graph.outputs {
                guard let t = net.tensor(output) else { continue }
                let pngs = files.values.first { $0.contains { $0.lowercased().hasSuffix(".png") } } ?? []
                for line in Run.topClasses(t, blob: graph.values[output.index].blob, names: classNames, items: pngs) { print(line) }
            }
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

extension Run {
    static func readLabels(_ path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw RuntimeError.input("\(path): cannot read the labels file") }
        return text.split(separator: "\n").map(String.init)
    }

    /// "item 0 (a.png): Sneaker (7) 17.2, Sandal (5) 9.1, ..." per item of a
    /// class-vector output (N x C, C >= 2), nothing for other blobs.
    static func topClasses(_ t: Tensor, blob: String, names: [String], items: [String]) -> [String] {
        let s = t.shape
        guard s.rank >= 2, s.count(from: 2) == 1, s[1] >= 2 else { return [] }
        let c = s[1]
        return (0..<s[0]).map { i in
            let row = (0..<c).map { t[i * c + $0] }
            let top = row.indices.sorted { row[$0] > row[$1] }.prefix(5)
            let what = i < items.count ? " (\(items[i]))" : ""
            return "\(blob) top-5 of item \(i)\(what): " + top.map { k in
                (k < names.count ? "\(names[k]) (\(k))" : "\(k)") + String(format: " %.4g", row[k])
            }.joined(separator: ", ")
        }
    }
}

/// Caffe's usual preprocessing of an image input (PNG): resize, crop, channel
/// order, scale, mean.
struct PreprocessOptions: ParsableArguments {
    @Option(help: "Mean file (.npy of shape C,H,W or C; or a .binaryproto) subtracted after scaling to 0-255.") var mean: String?
    @Option(name: .customLong("mean-values"), help: "Per-channel mean, comma-separated (in the net's channel order).") var meanValues: String?
    @Option(help: "Multiply pixel values by this after mean subtraction (Caffe's input_scale; default 1).") var scale: Float?
    @Option(name: .customLong("raw-scale"), help: "Pixel range before mean subtraction (Caffe's raw_scale: 255 for 0-255 images, 1 for [0, 1]).") var rawScale: Float?
    @Option(name: .customLong("channel-swap"), help: "Channel order as indices into RGB, e.g. 2,1,0 for BGR (Caffe's default for ImageNet models).") var channelSwap: String?
    @Flag(name: .customLong("center-crop"), help: "Resize the short side then crop the centre, instead of resizing to the exact input size.") var centerCrop = false

    /// The pipeline file in the prototxt's folder whose classifier is this prototxt.
    static func pipelineUsing(_ prototxt: String) -> (path: String, spec: PipelineSpec, labels: [String])? {
        let url = URL(fileURLWithPath: prototxt).standardizedFileURL
        let dir = url.deletingLastPathComponent()
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return nil }
        for name in names.sorted() where name.hasSuffix(".json") {
            let path = dir.appendingPathComponent(name).path
            guard let data = FileManager.default.contents(atPath: path),
                  let spec = try? JSONDecoder().decode(PipelineSpec.self, from: data),
                  dir.appendingPathComponent(spec.classifier.prototxt).standardizedFileURL == url else { continue }
            let labels = spec.labels.flatMap { try? String(contentsOfFile: dir.appendingPathComponent($0).path, encoding: .utf8) }
                .map { $0.split(separator: "\n").map(String.init) } ?? []
            return (path, spec, labels)
        }
        return nil
    }

    /// `files` (all .npy: the first one as it is; PNGs: one batch item each)
    /// as the tensor fed to `input`.
    func load(_ files: [String], declared: Shape?, input: String,
              pipeline: (path: String, spec: PipelineSpec, labels: [String])?) throws -> Tensor {
        guard let first = files.first else { throw RuntimeError.input("--input \(input)= names no file") }
        if files.allSatisfy({ $0.lowercased().hasSuffix(".npy") }) {
            guard files.count == 1 else { throw RuntimeError.input("--input \(input): give one .npy file (it holds the whole batch)") }
            return try NPY.read(first)
        }
        for f in files where !f.lowercased().hasSuffix(".png") {
            throw RuntimeError.input("\(f): inputs must be .npy or .png (several PNGs make one batch)")
        }
        let dims = declared?.dims ?? [1, 3, 0, 0]
        guard dims.count == 4 || dims.count == 3 else {
            throw RuntimeError.input("input '\(input)' has shape \(declared.map { "\($0)" } ?? "?"); an image needs (N, C, H, W)")
        }
        let (c, h, w) = (dims[dims.count - 3], dims[dims.count - 2], dims[dims.count - 1])
        // An input declared (C, H, W) has no batch axis: it takes one image.
        if dims.count == 3 && files.count > 1 {
            throw RuntimeError.input("input '\(input)' is declared \(declared.map { "\($0)" } ?? "?") (C, H, W: one image, no batch axis) but \(files.count) PNGs were given; give one, or declare the input (N, C, H, W)")
        }
        let pre = try preprocessor(channels: c, input: input, pipeline: pipeline)
        let one = c * h * w
        let batch = Tensor(shape: dims.count == 3 ? [c, h, w] : [files.count, c, h, w])
        for (i, f) in files.enumerated() {
            let image = try PNGImage.read(f)
            let t = try pre.tensor(from: image, shape: Shape([1, c, h, w]))
            (batch.data + i * one).update(from: t.data, count: one)
        }
        return batch
    }

    /// The flags; else a pipeline's data.preprocess; else ImageNet's defaults
    /// for 3 channels; a 1-channel input without flags is refused.
    func preprocessor(channels c: Int, input: String, pipeline: (path: String, spec: PipelineSpec, labels: [String])?) throws -> Preprocessor {
        var rawScale = self.rawScale, channelSwap = self.channelSwap, scale = self.scale, meanPath = mean
        var meanPerChannel: [Float]? = nil
        let flags = self.rawScale != nil || self.channelSwap != nil || self.scale != nil || mean != nil || meanValues != nil
        if !flags, let (path, spec, _) = pipeline {
            let p = spec.data?.preprocess ?? PipelineSpec.PreprocessSpec()
            let dir = (path as NSString).deletingLastPathComponent
            rawScale = p.raw_scale ?? 1; scale = p.scale ?? 1
            channelSwap = p.channel_swap.map { $0.map(String.init).joined(separator: ",") } ?? "0,1,2"
            meanPath = p.mean_file.map { $0.hasPrefix("/") ? $0 : dir + "/" + $0 }
            meanPerChannel = p.mean_values
            Toolbox.note("preprocessing of \(path) (data.preprocess): raw scale \(rawScale!), channel order \(channelSwap!)\(meanPath.map { ", mean \($0)" } ?? "")")
        } else if !flags {
            guard c == 3 else {
                throw RuntimeError.input("input '\(input)' has \(c) channel(s) and no preprocessing was given: pass --raw-scale 1 if the net was trained on images in [0, 1] (as Models/fashion), or --raw-scale 255 for 0-255 (add --mean or --mean-values if it subtracted a mean)")
            }
            Toolbox.note("3-channel input '\(input)': Caffe's ImageNet preprocessing (--raw-scale 255 --channel-swap 2,1,0, no mean); pass the flags if the net was trained otherwise")
        }
        let swap = try (channelSwap ?? "2,1,0").split(separator: ",").map { s -> Int in
            guard let i = Int(s.trimmingCharacters(in: .whitespaces)), (0..<3).contains(i) else {
                throw RuntimeError.input("--channel-swap expects indices 0-2, got '\(channelSwap ?? "")'")
            }
            return i
        }
        var meanTensor: Tensor? = nil
        if let meanPath { meanTensor = try MeanFile.read(meanPath) }
        if let meanValues {
            meanPerChannel = try meanValues.split(separator: ",").map { s in
                guard let v = Float(s.trimmingCharacters(in: .whitespaces)) else {
                    throw RuntimeError.input("--mean-values expects numbers, got '\(meanValues)'")
                }
                return v
            }
        }
        return Preprocessor(channelSwap: swap, rawScale: rawScale ?? 255, scale: scale ?? 1, mean: meanTensor,
                            meanValues: meanPerChannel, centerCrop: centerCrop)
    }
}
