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
        let scale = codeScale(s, d)
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

    /// PPGN-style Langevin sampling: K chains, each step
    ///   h <- h + eps1 * (E(G(h)) - h) + eps2 * d(sum_k a_k)/dh + N(0, eps3^2),
    /// with the gradient step normalised to the code scale and the codes
    /// clipped to the box. The prior term needs E's output to live in the
    /// code space (E = f up to fc6 for the fc6 generator); otherwise it is 0.
    /// After `burnIn` steps, every `every`-th state of each chain is a sample.
    public static func ppgn(_ sampler: InverseSetSampler, eps1: Float = 1e-5, eps2: Float = 1, eps3: Float = 1e-17,
                            burnIn: Int = 20, every: Int = 5,
                            onAccept: ([Sample]) throws -> Void) throws -> SamplerResult {
        let p = sampler.pipeline, s = sampler.settings
        let d = p.codeSize, k = s.walkers
        let scale = codeScale(s, d)
        let codes = sampler.randomCodes(k)
        var samples: [Sample] = []
        var t = 0
        var rng = SplitMix64(seed: s.seed &+ 99)
        while samples.count < s.count {
            let ev = try p.forward(codes)
            if t >= burnIn && (t - burnIn) % every == 0 {
                let batch = collect(ev, codes, k: k, d: d, step: t, limit: s.count - samples.count)
                samples += batch
                try onAccept(batch)
                if samples.count >= s.count { break }
            }
            let dA = [[Float]](repeating: [Float](repeating: -1, count: p.neurons.count), count: k)
            let g = try p.backward(dActivations: dA, dEmbeddings: nil)
            let dim = ev.embeddings.count / k
            for i in 0..<k {
                let c = codes.data + i * d, gi = g.data + i * d
                var sq: Float = 0
                for j in 0..<d { sq += gi[j] * gi[j] }
                let rms = (sq / Float(d)).squareRoot()
                let len = rms > 0 && rms.isFinite ? eps2 * 0.05 * scale / rms : 0
                for j in 0..<d {
                    var delta = -len * gi[j]   // gi is d(-a)/dh
                    if dim == d { delta += eps1 * (ev.embeddings[i * dim + j] - c[j]) }
                    delta += eps3 * rng.gaussian()
                    c[j] += delta
                }
            }
            p.box.project(codes)
            t += 1
        }
        return SamplerResult(samples: samples, steps: t, seedSteps: 0, reachedTarget: true, closest: [], nonFiniteResets: 0)
    }

    static func codeScale(_ s: SamplerSettings, _ d: Int) -> Float {
        var sum: Float = 0
        for j in 0..<d {
            let lo = s.initLow.isEmpty ? 0 : s.initLow[j], hi = s.initHigh.isEmpty ? 1 : s.initHigh[j]
            sum += (hi - lo) * (hi - lo) / 4
        }
        return max((sum / Float(max(d, 1))).squareRoot(), 1e-6)
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
                              step: step, image: Array(UnsafeBufferPointer(start: ev.generated.data + i * per, count: per))))
        }
        return out
    }
}
