import GraphIR
import Runtime

/// Bounds on the codes: the generator expects codes inside a box (fc6 codes
/// are >= 0; PPGN also caps each dimension).
public struct CodeBox: Sendable {
    public var low: [Float]
    public var high: [Float]
    public init(size: Int, low: Float = -.infinity, high: Float = .infinity, upper: [Float]? = nil) {
        self.low = Array(repeating: low, count: size)
        self.high = upper ?? Array(repeating: high, count: size)
    }
    /// Projects row `i` of `codes` (K x d) into the box.
    public func project(_ codes: Tensor) {
        let d = low.count
        for i in 0..<(codes.count / max(d, 1)) {
            let p = codes.data + i * d
            for j in 0..<d { p[j] = min(max(p[j], low[j]), high[j]) }
        }
    }
}

/// Where E comes from: the classifier cut at a blob (shared trunk) or a separate net.
public enum EncoderSource {
    case cut(String)
    case net(Graph, input: String?, output: String)
}

/// What one forward pass of the pipeline produced for a batch of codes.
public struct Evaluation {
    /// activations[i][k]: neuron k of sample i.
    public var activations: [[Float]]
    /// E(x_i) flattened, K x D.
    public var embeddings: Tensor
    /// G's raw output (for display), K x C x H x W.
    public var generated: Tensor
}

/// G -> glue -> f (and E), forward and backward in one batch.
///
/// When E is f cut at a blob, f runs once and both the neuron blobs and the
/// E blob are read from it; the backward pass seeds both and runs once.
public final class Pipeline {
    public let generator: Net
    public let classifier: Net
    public let encoder: Net?
    public let glue: Glue
    public let box: CodeBox
    public var codeSize: Int { box.low.count }
    /// The compute threads of its nets (the generator's; a separate encoder
    /// gets the same), for the sampler's own GEMMs too.
    public var threads: Int { generator.context.threads }
    public private(set) var neurons: [ResolvedNeuron] = []
    /// Forward passes of f and of a separate E per evaluation of the walkers
    /// (a pass of G), counted by the nets themselves: 1 when E is f cut at a
    /// blob and the trunk serves both, 2 with a separate E.
    /// Passes of real images (`score`, `topClasses`) are not counted.
    public var netPassesPerEvaluation: Double {
        let evaluations = generator.forwardPasses - uncountedGeneratorPasses
        guard evaluations > 0 else { return 0 }
        return Double(classifier.forwardPasses + (encoder?.forwardPasses ?? 0) - uncountedPasses) / Double(evaluations)
    }
    private var uncountedPasses = 0, uncountedGeneratorPasses = 0

    let gIn: ValueID, gOut: ValueID, fIn: ValueID, eOut: ValueID, eIn: ValueID?
    private var gPlan: BackwardPlan?, fPlan: BackwardPlan?, ePlan: BackwardPlan?
    private var x: Tensor?
    private var lastGenerated: Tensor?

    public init(generator: Net, generatorInput: String?, generatorOutput: String?,
                classifier: Net, classifierInput: String?, encoder: EncoderSource,
                glue: Glue, box: CodeBox?, registry: LayerRegistry, allowMissingWeights: Bool = false) throws {
        self.generator = generator
        self.classifier = classifier
        self.glue = glue
        func input(_ net: Net, _ name: String?, _ role: String) throws -> ValueID {
            if let name {
                guard let v = net.graph.value(named: name), net.graph.inputs.contains(v) else {
                    throw SamplerError("\(role) has no input '\(name)' (inputs: \(net.inputNames.joined(separator: ", ")))")
                }
                return v
            }
            guard net.graph.inputs.count == 1 else {
                throw SamplerError("\(role) has \(net.graph.inputs.count) inputs (\(net.inputNames.joined(separator: ", "))); name one in the pipeline")
            }
            return net.graph.inputs[0]
        }
        gIn = try input(generator, generatorInput, "the generator")
        if let o = generatorOutput {
            guard let v = generator.graph.value(named: o) else {
                throw SamplerError("the generator has no blob '\(o)' (blobs: \(generator.graph.blobNames.joined(separator: ", ")))")
            }
            gOut = v
        } else {
            guard let v = generator.graph.outputs.first, generator.graph.outputs.count == 1 else {
                throw SamplerError("the generator has several outputs; name the image blob in the pipeline (\"output\")")
            }
            gOut = v
        }
        fIn = try input(classifier, classifierInput, "the classifier")
        switch encoder {
        case .cut(let blob):
            guard let v = classifier.graph.value(named: blob) ?? classifier.graph.output(ofLayer: blob) else {
                throw SamplerError("encoder cut: the classifier has no blob '\(blob)'")
            }
            self.encoder = nil; eOut = v; eIn = nil
        case .net(let g, let inName, let out):
            let e = try Net(graph: g, registry: registry, allowMissingWeights: allowMissingWeights,
                            threads: generator.context.threads)
            self.encoder = e
            eIn = try input(e, inName, "the encoder")
            guard let v = g.value(named: out) else { throw SamplerError("the encoder has no blob '\(out)'") }
            eOut = v
        }
        let codeShape = generator.shapes[gIn.index]
        let d = codeShape.count(from: 1)
        self.box = box ?? CodeBox(size: d)
        guard self.box.low.count == d else {
            throw SamplerError("the code box has \(self.box.low.count) dimensions; the generator's input '\(generator.graph.values[gIn.index].blob)' has \(d) per sample")
        }
        // Check that glue(G output) fits f's input.
        let gShape = generator.shapes[gOut.index]
        let xShape = try glue.outputShape(gShape)
        let fShape = classifier.shapes[fIn.index]
        guard xShape.dims.dropFirst() == fShape.dims.dropFirst() else {
            throw SamplerError("after the glue, the generator's output is \(Shape(Array(xShape.dims.dropFirst()))) per sample, but the classifier's input '\(classifier.graph.values[fIn.index].blob)' expects \(Shape(Array(fShape.dims.dropFirst()))); adjust the crop in the pipeline")
        }
    }

    /// Chooses the neurons to read and plans the backward passes for them.
    public func setNeurons(_ specs: [(NeuronSpec, Band)]) throws {
        neurons = try specs.map { try ResolvedNeuron($0.0, band: $0.1, in: classifier) }
        let seeds = Array(Set(neurons.map(\.value) + (encoder == nil ? [eOut] : [])))
        fPlan = try classifier.plan(seeds: seeds, gradientsFor: [fIn], keep: seeds)
        gPlan = try generator.plan(seeds: [gOut], gradientsFor: [gIn], keep: [gOut])
        if let e = encoder, let eIn { ePlan = try e.plan(seeds: [eOut], gradientsFor: [eIn], keep: [eOut]) }
    }

    private func codeShape(_ k: Int) -> Shape {
        var s = generator.shapes[gIn.index]
        s[0] = k
        return s
    }

    /// Runs G, the glue, f (and E) on K codes (K x d).
    public func forward(_ codes: Tensor) throws -> Evaluation {
        guard let gPlan, let fPlan else { throw SamplerError("internal: setNeurons was not called") }
        let k = codes.count / codeSize
        let c = Tensor(shape: codeShape(k), storage: codes.storage)
        try generator.forward([generator.graph.values[gIn.index].blob: c], plan: gPlan)
        let g = generator.tensor(gOut)!
        lastGenerated = g
        let xs = try glue.outputShape(g.shape)
        if x == nil || x!.shape != xs { x = Tensor(shape: xs) }
        glue.forward(g, x!)
        try classifier.forward([classifier.graph.values[fIn.index].blob: x!], plan: fPlan)
        var acts = [[Float]](repeating: [], count: k)
        for i in 0..<k { acts[i] = neurons.map { n in n.activation(classifier.tensor(n.value)!, sample: i) } }
        let e: Tensor
        if let enc = encoder, let eIn, let ePlan {
            try enc.forward([enc.graph.values[eIn.index].blob: x!], plan: ePlan)
            e = enc.tensor(eOut)!
        } else {
            e = classifier.tensor(eOut)!
        }
        let emb = Tensor(shape: [k, e.count / max(k, 1)])
        emb.copy(from: e)
        return Evaluation(activations: acts, embeddings: emb, generated: g.copy())
    }

    /// f (and E) on real images already in f's input space (N x C x H x W):
    /// the activations of the chosen neurons and E's features, as `forward`
    /// reports them for generated images. `codeBlob`, when given, is also
    /// read: the classifier blob that G takes as its code (fc6 for the
    /// paper's generator), so that G(code(x)) reconstructs x.
    public func score(images x: Tensor, codeBlob: ValueID? = nil) throws -> (activations: [[Float]], embeddings: Tensor, codes: Tensor?) {
        guard let fPlan else { throw SamplerError("internal: setNeurons was not called") }
        let k = x.shape[0]
        // The backward plan frees what no backward step reads; a code blob
        // outside it is read with a plain forward pass.
        let plan = codeBlob.map { fPlan.keep.contains($0) } == false ? nil : fPlan
        try classifier.forward([classifier.graph.values[fIn.index].blob: x], plan: plan)
        uncountedPasses += encoder == nil ? 1 : 2
        var acts = [[Float]](repeating: [], count: k)
        for i in 0..<k { acts[i] = neurons.map { n in n.activation(classifier.tensor(n.value)!, sample: i) } }
        var codes: Tensor? = nil
        if let codeBlob, let c = classifier.tensor(codeBlob) {
            codes = Tensor(shape: [k, c.count / max(k, 1)], values: c.array)
        }
        let e: Tensor
        if let enc = encoder, let eIn, let ePlan {
            try enc.forward([enc.graph.values[eIn.index].blob: x], plan: ePlan)
            e = enc.tensor(eOut)!
        } else {
            e = classifier.tensor(eOut)!
        }
        return (acts, Tensor(shape: [k, e.count / max(k, 1)], values: e.array), codes)
    }

    /// The argmax over the channels of `blob` (a class vector of f) for G's
    /// images of `codes`, in batches.
    public func topClasses(codes: PointSet, blob: ValueID, batch: Int = 100) throws -> [Int] {
        guard let gPlan else { throw SamplerError("internal: setNeurons was not called") }
        var out: [Int] = []
        for start in stride(from: 0, to: codes.count, by: batch) {
            let n = min(batch, codes.count - start)
            let c = Tensor(shape: codeShape(n), values: Array(codes.values[(start * codes.dim)..<((start + n) * codes.dim)]))
            try generator.forward([generator.graph.values[gIn.index].blob: c], plan: gPlan)
            let g = generator.tensor(gOut)!
            let xs = Tensor(shape: try glue.outputShape(g.shape))
            glue.forward(g, xs)
            try classifier.forward([classifier.graph.values[fIn.index].blob: xs])
            uncountedPasses += 1; uncountedGeneratorPasses += 1
            guard let t = classifier.tensor(blob) else { throw SamplerError("internal: class blob not kept") }
            let per = t.count / n
            for i in 0..<n {
                var best = 0
                for j in 1..<per where t[i * per + j] > t[i * per + best] { best = j }
                out.append(best)
            }
        }
        return out
    }

    /// The classifier's input shape for `n` images.
    public func imageShape(_ n: Int) -> Shape {
        var s = classifier.shapes[fIn.index]
        s[0] = n
        return s
    }

    /// Given dJ/da (K x m) and dJ/de (K x D) at the last forward pass,
    /// returns dJ/dcodes (K x d).
    public func backward(dActivations: [[Float]], dEmbeddings: Tensor?) throws -> Tensor {
        guard let gPlan, let fPlan, let x, let g = lastGenerated else { throw SamplerError("internal: backward before forward") }
        let k = dActivations.count
        var seeds: [ValueID: Tensor] = [:]
        func seed(_ v: ValueID, _ net: Net) -> Tensor {
            if let t = seeds[v] { return t }
            let t = Tensor(shape: net.shapes[v.index], repeating: 0)
            seeds[v] = t
            return t
        }
        for (j, n) in neurons.enumerated() {
            let t = seed(n.value, classifier)
            for i in 0..<k where dActivations[i][j] != 0 { n.addGradient(dActivations[i][j], into: t, sample: i) }
        }
        var dx: Tensor
        if let enc = encoder, let eIn, let ePlan {
            let fGrads = try classifier.backward(seeds: seeds, plan: fPlan)
            dx = fGrads[fIn]!
            if let dE = dEmbeddings {
                let eGrads = try enc.backward(seeds: [eOut: Tensor(shape: enc.shapes[eOut.index], values: dE.array)], plan: ePlan)
                dx.add(eGrads[eIn]!)
            }
        } else {
            if let dE = dEmbeddings {
                let t = seed(eOut, classifier)
                let p = dE.data
                for i in 0..<t.count { t.data[i] += p[i] }
            }
            dx = try classifier.backward(seeds: seeds, plan: fPlan)[fIn]!
        }
        let dg = Tensor(shape: g.shape)
        glue.backward(g, dx, dg)
        let dc = try generator.backward(seeds: [gOut: dg], plan: gPlan)[gIn]!
        return Tensor(shape: [k, codeSize], values: dc.array)
    }

}
