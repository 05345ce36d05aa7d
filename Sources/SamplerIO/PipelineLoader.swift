import CaffeImport
import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler

/// Reads a pipeline.json and builds the `Pipeline` (nets loaded, glue and
/// code box resolved; paths relative to the file).
public struct LoadedPipeline {
    public var path: String
    public var spec: PipelineSpec
    public var pipeline: Pipeline
    public var directory: String
    public var initLow: [Float]
    public var initHigh: [Float]
    /// G's output (sample i of a batch) as a picture.
    public var display: (Tensor, Int) -> PNGImage
    /// Class names of the classifier's output units ([] without a labels file).
    public var labels: [String]
    /// Dataset images -> f's input (the pipeline's data.preprocess).
    public var preprocessor: Preprocessor

    /// A path of the pipeline file (relative to its folder unless absolute).
    public func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : (directory.isEmpty ? p : directory + "/" + p) }

    /// `allowMissingWeights`: let layers that the named weights files do not
    /// cover start from their fillers (otherwise such a net is refused).
    /// `threads`: the compute threads of its nets and of the sampler's GEMMs.
    public static func load(_ path: String, registry: LayerRegistry, allowMissingWeights: Bool = false,
                            threads: Int = defaultComputeThreads) throws -> LoadedPipeline {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SamplerError("\(path): no such pipeline file")
        }
        let spec: PipelineSpec
        do { spec = try JSONDecoder().decode(PipelineSpec.self, from: data) } catch {
            throw SamplerError("\(path): not a valid pipeline file: \(error)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        func rel(_ p: String) -> String { p.hasPrefix("/") ? p : (dir.isEmpty ? p : dir + "/" + p) }
        func load(_ n: PipelineSpec.NetSpec) throws -> Graph {
            if let w = n.weights.map(rel), !FileManager.default.fileExists(atPath: w) {
                let readme = dir.isEmpty ? "README.md" : dir + "/README.md"
                let how = FileManager.default.fileExists(atPath: readme) ? "; \(readme) says how to get it (or to make random weights with `inverse-set init`)" : ""
                throw SamplerError("\(w): no such file (weights of \(n.prototxt), named by \(path))\(how)")
            }
            return try CaffeModel.load(prototxt: rel(n.prototxt), weights: n.weights.map(rel))
        }
        let gGraph = try load(spec.generator)
        let fGraph = try load(spec.classifier)
        let G = try Net(graph: gGraph, registry: registry, seed: 1, allowMissingWeights: allowMissingWeights,   // seed as `inverse-set init`'s default
                        threads: threads)
        let f = try Net(graph: fGraph, registry: registry, seed: 1, allowMissingWeights: allowMissingWeights, threads: threads)
        let encoder: EncoderSource
        if let cut = spec.encoder.cut {
            encoder = .cut(cut)
        } else if let proto = spec.encoder.prototxt, let out = spec.encoder.output {
            encoder = .net(try load(.init(prototxt: proto, weights: spec.encoder.weights)), input: spec.encoder.input, output: out)
        } else {
            throw SamplerError("\(path): encoder needs {\"cut\": BLOB} or {\"prototxt\", \"output\"}")
        }
        // Code box and initial range.
        let gIn = spec.generator.input.flatMap { gGraph.value(named: $0) } ?? gGraph.inputs.first
        guard let gIn else { throw SamplerError("\(path): the generator has no input") }
        let d = G.shapes[gIn.index].count(from: 1)
        let cs = spec.codes ?? PipelineSpec.CodeSpec()
        var upper: [Float]? = nil
        if let f = cs.upper_bound_file {
            guard let text = try? String(contentsOfFile: rel(f), encoding: .utf8) else { throw SamplerError("\(rel(f)): cannot read the code upper-bound file") }
            let vals = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "," }).compactMap { Float($0) }
            guard vals.count == d else { throw SamplerError("\(rel(f)): has \(vals.count) bounds; the generator's code has \(d) dimensions") }
            upper = vals
        }
        let box = CodeBox(size: d, low: cs.low ?? -.infinity, high: cs.high ?? .infinity, upper: upper)
        let il = cs.init_low ?? max(cs.low ?? 0, 0), ih = cs.init_high ?? 1
        let initLow = (0..<d).map { j in upper.map { il * $0[j] } ?? il }
        let initHigh = (0..<d).map { j in upper.map { ih * $0[j] } ?? ih }
        // Glue.
        var glue = Glue()
        let gOutShape: Shape = try {
            if let o = spec.generator.output, let v = gGraph.value(named: o) { return G.shapes[v.index] }
            guard let v = gGraph.outputs.first else { throw SamplerError("\(path): the generator has no output") }
            return G.shapes[v.index]
        }()
        let per = gOutShape.count(from: 1), channels = gOutShape.rank > 1 ? gOutShape[1] : 1
        if let gs = spec.glue {
            if let c = gs.crop {
                guard c.count == 4 else { throw SamplerError("\(path): glue.crop is [y, x, height, width]") }
                glue.crop = (c[0], c[1], c[2], c[3])
            }
            glue.channelSwap = gs.channel_swap
            glue.scale = gs.scale ?? 1
            glue.offset = gs.offset
            if let clip = gs.clip {
                func perElement(_ v: [Float]) throws -> [Float] {
                    if v.count == 1 { return Array(repeating: v[0], count: per) }
                    guard v.count == channels else { throw SamplerError("\(path): glue clip bounds need 1 or \(channels) values") }
                    return (0..<per).map { v[$0 / (per / channels)] }
                }
                if let mf = clip.mean_file {
                    let mean = try meanPerElement(rel(mf), per: per, channels: channels)
                    let range = clip.range ?? 255
                    glue.clipLow = mean.map { -$0 }
                    glue.clipHigh = mean.map { range - $0 }
                } else {
                    glue.clipLow = try clip.low.map(perElement)
                    glue.clipHigh = try clip.high.map(perElement)
                }
            }
        }
        let pipeline = try Pipeline(generator: G, generatorInput: spec.generator.input, generatorOutput: spec.generator.output,
                                    classifier: f, classifierInput: spec.classifier.input, encoder: encoder,
                                    glue: glue, box: box, registry: registry, allowMissingWeights: allowMissingWeights)
        // Display mapping of G's output to RGB.
        let ds = spec.display ?? PipelineSpec.DisplaySpec()
        var dmean: [Float]? = nil
        if let mf = ds.mean_file { dmean = try meanPerElement(rel(mf), per: per, channels: channels) }
        else if let m = ds.mean { dmean = (0..<per).map { m[min($0 / max(1, per / channels), m.count - 1)] } }
        let swap = ds.channel_swap
        let dscale = ds.scale ?? 1
        let low = ds.low, high = ds.high
        let h = gOutShape.rank > 2 ? gOutShape[2] : 1, w = gOutShape.rank > 3 ? gOutShape[3] : 1
        let display: (Tensor, Int) -> PNGImage = { t, i in
            var buf = Array(UnsafeBufferPointer(start: t.data + i * per, count: per))
            if let m = dmean { for j in 0..<per { buf[j] += m[j] } }
            return buf.withUnsafeBufferPointer { b in
                if let low, let high {
                    return Preprocessor.image(fromCHW: b.baseAddress!, channels: channels, height: h, width: w, low: low, high: high)
                }
                return Preprocessor.image(from: b.baseAddress!, channels: channels, height: h, width: w,
                                          channelSwap: swap ?? Array(0..<channels), rawScale: dscale, mean: nil, scale: 1)
            }
        }
        var labels: [String] = []
        if let l = spec.labels, let text = try? String(contentsOfFile: rel(l), encoding: .utf8) {
            labels = text.split(separator: "\n").map(String.init)
        }
        let pre = spec.data?.preprocess ?? PipelineSpec.PreprocessSpec()
        let preMean = try pre.mean_file.map { try MeanFile.read(rel($0)) }
        let preprocessor = Preprocessor(channelSwap: pre.channel_swap ?? [], rawScale: pre.raw_scale ?? 1,
                                        scale: pre.scale ?? 1, mean: preMean, meanValues: pre.mean_values,
                                        centerCrop: pre.center_crop ?? false)
        return LoadedPipeline(path: path, spec: spec, pipeline: pipeline, directory: dir, initLow: initLow, initHigh: initHigh,
                              display: display, labels: labels, preprocessor: preprocessor)
    }

    /// A mean image (C,H,W) or per-channel mean (C) as one value per element.
    public static func meanPerElement(_ path: String, per: Int, channels: Int) throws -> [Float] {
        let m = try NPY.read(path)
        if m.count == per { return m.array }
        if m.count == channels { return (0..<per).map { m[$0 / (per / channels)] } }
        throw SamplerError("\(path): mean has shape \(m.shape); the generator's output has \(channels) channels and \(per) values per sample")
    }
}
