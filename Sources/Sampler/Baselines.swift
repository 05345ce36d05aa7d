import Foundation
import GraphIR
import Runtime

/// The two baselines of the paper, run through the same pipeline.
public enum Baselines {
    /// Activation maximisation through G (DGN-AM): from random restarts,
    /// ascend sum_k a_k(G(c)) - decay * ||c||^2 with normalised steps whose
    /// size adapts per restart, keeping codes in the box. One sample per
    /// restart; K restarts run as one batch.
    public static func activationMaximisation(_ sampler: InverseSetSampler, steps: Int = 200, decay: Float = 1e-3,
                                              onAccept: ([Sample]) throws -> Void) throws -> SamplerResult {
        let p = sampler.pipeline, s = sampler.settings
        let d = p.codeSize, k = s.walkers
        var samples: [Sample] = []
        var total = 0
        let scale = InverseSetSampler.codeScale(prior: nil, settings: s, codeSize: d)
        while samples.count < s.count {
            let codes = sampler.randomCodes(k)
            var eta = [Float](repeating: 0.05, count: k), last = [Float](repeating: -.infinity, count: k)
            var ev = try p.forward(codes)
            for _ in 0..<steps {
                var dA = [[Float]](repeating: [Float](repeating: -1, count: p.neurons.count), count: k)
                for i in 0..<k {
                    let obj = ev.activations[i].reduce(0, +)
                    if obj > last[i] { eta[i] = min(eta[i] * 1.2, 1) } else { eta[i] = max(eta[i] * 0.5, 1e-4) }
                    last[i] = obj
                    if !ev.activations[i].allSatisfy(\.isFinite) { dA[i] = dA[i].map { _ in 0 } }
                }
                let g = try p.backward(dActivations: dA, dEmbeddings: nil)
                for i in 0..<k { step(codes, g, row: i, d: d, len: eta[i] * scale, decay: decay) }
                p.box.project(codes)
                ev = try p.forward(codes)
                total += 1
            }
            let batch = collect(ev, codes, k: k, d: d, step: total, limit: s.count - samples.count)
            samples += batch
            try onAccept(batch)
        }
        return SamplerResult(samples: samples, steps: total, seedSteps: 0, reachedTarget: true, closest: [], nonFiniteResets: 0)
    }

    /// Settings of the PPGN-h chain, named as in the reference sampler
    /// (Nguyen et al. 2017, `sampler.py` of their code): one step is
    ///
    ///     d_h = eps1 (E(G(h)) - h) + eps2 d log p(y | G(h)) / dh + N(0, eps3^2)
    ///     h  <- clip(h + lr / mean|d_h| * d_h, box)
    ///
    /// The defaults are those of the reference's class- and hidden-unit
    /// scripts (eps1 1e-5, eps2 1, eps3 1e-17, lr 1, a sample every 5 steps,
    /// a chain reset every 100 steps for hidden units, none for classes).
    public struct PPGNSettings: Sendable {
        public var eps1: Float = 1e-5
        public var eps2: Float = 1
        public var eps3: Float = 1e-17
        public var lr: Float = 1
        public var saveEvery = 5
        /// Steps after which a chain restarts from N(0, 1) (0: never). The
        /// reference uses 100 for hidden units and 0 for class units.
        public var resetEvery = 0
        public init() {}
    }

    /// Shares of the last PPGN steps' terms, for the report: mean |term| of
    /// eps1 * prior, eps2 * condition and the noise, as fractions of their sum.
    public struct PPGNShares: Sendable {
        public var prior = 0.0, condition = 0.0, noise = 0.0
        public init(prior: Double = 0, condition: Double = 0, noise: Double = 0) { self.prior = prior; self.condition = condition; self.noise = noise }
    }

    /// PPGN-h (joint, "h -> x -> h" prior) through the pipeline: K chains in
    /// one batch from h ~ N(0, 1) clipped to the box. The condition is
    /// log softmax over the neuron's layer at its position (as the reference
    /// computes it by hand: d/da_u = 1 - p_u on the unit only) on the layer's
    /// own output, before in-place layers (the reference stops its forward
    /// pass at the layer, before ReLU, so a unit at 0 still has a gradient);
    /// several neurons add their terms. The prior E(G(h)) - h needs E to map
    /// images to codes (E's output has the code's size, as CaffeNet's fc6 for
    /// the fc6 generator); otherwise the chain runs without it (its share in
    /// `shares` is then 0, which the report shows). lr is in units
    /// of the mean |code| of the prior codes when there are some (CaffeNet's
    /// fc6 codes, for which the reference's lr = 1 was set, average about 1),
    /// else of the initial box. Every `saveEvery`-th state after the start is
    /// a sample.
    public static func ppgn(_ sampler: InverseSetSampler, settings ppgn: PPGNSettings = PPGNSettings(),
                            codeUnit: Float? = nil, shares: inout PPGNShares,
                            onAccept: ([Sample]) throws -> Void) throws -> SamplerResult {
        let p = sampler.pipeline, s = sampler.settings
        let d = p.codeSize, k = s.walkers
        let original = p.neurons
        // The condition neurons: each neuron's layer output before in-place layers.
        let conditions = try original.map { n -> ResolvedNeuron in
            var spec = n.spec
            if !spec.beforeInPlace, p.classifier.graph.output(ofLayer: spec.blob) != nil { spec.beforeInPlace = true }
            return try ResolvedNeuron(spec, band: n.band, in: p.classifier)
        }
        try p.setNeurons(original.map { ($0.spec, $0.band) } + conditions.map { ($0.spec, $0.band) })
        defer { try? p.setNeurons(original.map { ($0.spec, $0.band) }) }
        let m = original.count
        var rng = SplitMix64(seed: s.seed &+ 99)
        let unit = codeUnit ?? InverseSetSampler.codeScale(prior: nil, settings: s, codeSize: d)
        let resetEvery = ppgn.resetEvery
        func start(_ row: Int, _ codes: Tensor) {
            for j in 0..<d { codes[row * d + j] = unit * rng.gaussian() }
        }
        let codes = Tensor(shape: [k, d])
        for i in 0..<k { start(i, codes) }
        p.box.project(codes)
        var samples: [Sample] = []
        var t = 0
        var sumPrior = 0.0, sumCondition = 0.0, sumNoise = 0.0
        while samples.count < s.count && t < s.maxSteps {
            let ev = try p.forward(codes)
            let dim = ev.embeddings.count / k
            // The prior term needs E to map images to codes; without it the chain runs with eps1 = 0.
            let eps1: Float = dim == d ? ppgn.eps1 : 0
            if t > 0 && t % ppgn.saveEvery == 0 {
                var batch = collect(ev, codes, k: k, d: d, step: t, limit: s.count - samples.count)
                for j in batch.indices { batch[j].activations = Array(batch[j].activations.prefix(m)) }
                samples += batch
                try onAccept(batch)
                if samples.count >= s.count { break }
            }
            // d log softmax(layer)_u / d a_u = 1 - p_u, seeded on the condition neurons only
            // (the gradient of the quantity to minimise, hence the minus sign).
            var dA = [[Float]](repeating: [Float](repeating: 0, count: 2 * m), count: k)
            for i in 0..<k {
                for (q, c) in conditions.enumerated() {
                    let prob = softmaxProbability(c, p, sample: i)
                    dA[i][m + q] = -(1 - prob)
                }
            }
            let g = try p.backward(dActivations: dA, dEmbeddings: nil)
            for i in 0..<k {
                let c = codes.data + i * d, gi = g.data + i * d, e = ev.embeddings.data + i * dim
                var delta = [Float](repeating: 0, count: d)
                var absSum: Float = 0
                for j in 0..<d {
                    let prior = eps1 * (dim == d ? e[j] - c[j] : 0), condition = -ppgn.eps2 * gi[j]
                    let noise = ppgn.eps3 * rng.gaussian()
                    sumPrior += Double(abs(prior)); sumCondition += Double(abs(condition)); sumNoise += Double(abs(noise))
                    delta[j] = prior + condition + noise
                    absSum += abs(delta[j])
                }
                let meanAbs = absSum / Float(d)
                guard meanAbs > 0, meanAbs.isFinite else { continue }
                let len = ppgn.lr * unit / meanAbs
                for j in 0..<d { c[j] += len * delta[j] }
            }
            p.box.project(codes)
            t += 1
            if resetEvery > 0 && t % resetEvery == 0 {
                for i in 0..<k { start(i, codes) }
                p.box.project(codes)
            }
        }
        let total = max(sumPrior + sumCondition + sumNoise, 1e-300)
        shares = PPGNShares(prior: sumPrior / total, condition: sumCondition / total, noise: sumNoise / total)
        return SamplerResult(samples: samples, steps: t, seedSteps: 0, reachedTarget: samples.count >= s.count,
                             closest: [], nonFiniteResets: 0)
    }

    /// p_u = softmax over the channels of the neuron's layer at its position
    /// (all units of a vector blob), for sample `i` of the last forward pass.
    static func softmaxProbability(_ n: ResolvedNeuron, _ p: Pipeline, sample i: Int) -> Float {
        guard let t = p.classifier.tensor(n.value), n.offsets.count == 1 else { return 0 }
        let shape = p.classifier.shapes[n.value.index]
        let channels = shape[1], spatial = shape.count(from: 2)
        let position = n.offsets[0] % spatial
        let base = t.data + i * n.sampleSize
        var top = -Float.infinity
        for ch in 0..<channels { top = max(top, base[ch * spatial + position]) }
        var sum: Float = 0
        for ch in 0..<channels { sum += exp(base[ch * spatial + position] - top) }
        return exp(base[n.offsets[0]] - top) / (1e-10 + sum)
    }

    /// Moves row `i` of codes against gradient g (of the quantity to minimise),
    /// normalised to RMS `len`, with an L2 decay.
    static func step(_ codes: Tensor, _ g: Tensor, row i: Int, d: Int, len: Float, decay: Float) {
        let c = codes.data + i * d, gi = g.data + i * d
        var sq: Float = 0
        for j in 0..<d { let v = gi[j] + 2 * decay * c[j]; sq += v * v }
        let rms = (sq / Float(d)).squareRoot()
        guard rms > 0, rms.isFinite else { return }
        for j in 0..<d { c[j] -= len * (gi[j] + 2 * decay * c[j]) / rms }
    }

    static func collect(_ ev: Evaluation, _ codes: Tensor, k: Int, d: Int, step: Int, limit: Int) -> [Sample] {
        let dim = ev.embeddings.count / k, per = ev.generated.count / k
        var out: [Sample] = []
        for i in 0..<k where out.count < limit {
            guard ev.activations[i].allSatisfy(\.isFinite) else { continue }
            out.append(Sample(code: Array(UnsafeBufferPointer(start: codes.data + i * d, count: d)),
                              activations: ev.activations[i],
                              embedding: Array(UnsafeBufferPointer(start: ev.embeddings.data + i * dim, count: dim)),
                              step: step, image: Array(UnsafeBufferPointer(start: ev.generated.data + i * per, count: per)),
                              walker: i, walk: step))
        }
        return out
    }
}
