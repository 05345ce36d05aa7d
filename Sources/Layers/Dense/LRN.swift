import GraphIR
import Runtime

/// LRN's scratch planes: squares (forward) or the per-pixel terms being
/// summed (backward), a temporary of the box sum, and the window sums.
private extension ScratchBuffer {
    static let lrnSquares = ScratchBuffer(0)
    static let lrnTemporary = ScratchBuffer(1)
    static let lrnWindowSums = ScratchBuffer(2)
}

/// Local response normalisation (Caffe's LRNLayer) of x (N, C, H, W);
/// `local_size` n must be odd, r = (n - 1) / 2.
///
/// ACROSS_CHANNELS:
///     scale[c] = k + (alpha / n) * sum_{c' = c-r .. c+r, inside [0, C)} x[c']^2
///     y = x * scale^(-beta)
///     dx = dy * scale^(-beta)
///          - (2 alpha beta / n) * x[c] * sum_{c' = c-r .. c+r} dy[c'] y[c'] / scale[c']
/// The channel sum slides (add the head, subtract the tail) as in Caffe.
///
/// WITHIN_CHANNEL (Caffe composes it from Power, AVE Pooling with pad r,
/// Power and an Eltwise product; `k` is not used):
///     avg = boxsum_{n x n}(x^2) / n^2   (zero padding, divisor always n^2)
///     s = 1 + alpha * avg;  y = x * s^(-beta)
///     dx = dy * s^(-beta) + 2 x * boxsum(dy * x * (-beta alpha) s^(-beta) / s) / n^2
///
/// The scale (ACROSS) or s (WITHIN) of the last forward pass is kept in the
/// layer for backward.
final class LRNLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["LRN"]
    let size: Int
    let alpha: Float, beta: Float, k: Float
    let withinChannel: Bool
    private let scale = Storage(capacity: 1)
    private var scaleShape: Shape?

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("lrn_param")
        let region: String
        (size, alpha, beta, k, region) = try ctx.reading {
            (try p.int("local_size", default: 5), try p.float("alpha", default: 1), try p.float("beta", default: 0.75),
             try p.float("k", default: 1), try p.enumName("norm_region", default: "ACROSS_CHANNELS"))
        }
        _ = try ctx.reading { try p.enumName("engine", default: "DEFAULT") }
        switch region {
        case "ACROSS_CHANNELS": withinChannel = false
        case "WITHIN_CHANNEL": withinChannel = true
        default: throw ctx.error("unknown norm_region '\(region)' (known: ACROSS_CHANNELS, WITHIN_CHANNEL)")
        }
        guard size > 0, size % 2 == 1 else {
            throw ctx.error("LRN only supports odd positive values for local_size (got \(size))")
        }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let s = inputs[0]
        guard s.rank == 4 else {
            throw error("input must have 4 axes (num, channels, height, width), got \(s)")
        }
        scale.reserve(s.count)
        return [s]
    }

    var backwardUses: BackwardUses { .all }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let s = inputs[0].shape
        _ = try reshape([s])
        let x = inputs[0].data, y = outputs[0].data, sc = scale.pointer
        let num = s[0], channels = s[1], plane = s[2] * s[3], count = s.count
        scaleShape = s
        guard count > 0 else { return }
        let parts = denseParts(work: count, threads: ctx.threads)
        if withinChannel {
            // Whole planes per thread; each thread has its own square/temp planes.
            let planes = num * channels, r = (size - 1) / 2
            let sqAll = ctx.scratch(parts * plane, .lrnSquares), tmpAll = ctx.scratch(parts * plane, .lrnTemporary)
            let inv = 1 / Float(size * size), alpha = alpha, (h, w) = (s[2], s[3])
            denseParallel(parts: parts) { part in
                let sq = sqAll + part * plane, tmp = tmpAll + part * plane
                for pl in denseSlice(planes, part, parts) {
                    let xp = x + pl * plane, sp = sc + pl * plane
                    for i in 0..<plane { sq[i] = xp[i] * xp[i] }
                    denseBoxSum(sq, h: h, w: w, radius: r, sp, tmp: tmp)
                    for i in 0..<plane { sp[i] = 1 + alpha * (sp[i] * inv) }
                }
            }
        } else {
            // Each thread takes a slice of pixel positions across all channels.
            let r = (size - 1) / 2, a = alpha / Float(size), k = k
            let sq = ctx.scratch(channels * plane, .lrnSquares)
            denseParallel(parts: parts) { part in
                let px = denseSlice(plane, part, parts)
                let lo = px.lowerBound, len = px.count
                for n in 0..<num {
                    let xs = x + n * channels * plane, ss = sc + n * channels * plane
                    for c in 0..<channels {
                        let o = c * plane + lo
                        for i in 0..<len { sq[o + i] = xs[o + i] * xs[o + i] }
                    }
                    // First channel: k plus the squares of channels 0...r.
                    (ss + lo).update(repeating: k, count: len)
                    for c in 0...min(r, channels - 1) { axpy(len, a, sq + c * plane + lo, ss + lo) }
                    for c in 1..<max(channels, 1) {
                        let cur = ss + c * plane + lo
                        cur.update(from: cur - plane, count: len)
                        if c + r < channels { axpy(len, a, sq + (c + r) * plane + lo, cur) }
                        if c - 1 - r >= 0 { axpy(len, -a, sq + (c - 1 - r) * plane + lo, cur) }
                    }
                }
            }
        }
        let beta = beta
        denseParallel(parts: parts) { part in
            let range = denseSlice(count, part, parts)
            denseNegativePower(sc + range.lowerBound, y + range.lowerBound, count: range.count, beta: beta)
            for i in range { y[i] *= x[i] }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let s = pass.inputs[0].shape
        guard scaleShape == s else {
            throw error("backward without a forward pass at input shape \(s)")
        }
        let x = pass.inputs[0].data, y = pass.outputs[0].data, dy = pass.outputGrads[0].data
        let dx = dxT.data, sc = scale.pointer
        let num = s[0], channels = s[1], plane = s[2] * s[3], count = s.count
        guard count > 0 else { return }
        let parts = denseParts(work: count, threads: ctx.threads)
        let (alpha, beta) = (alpha, beta)
        // dx = scale^-beta (both regions), times dy below.
        denseParallel(parts: parts) { part in
            let range = denseSlice(count, part, parts)
            denseNegativePower(sc + range.lowerBound, dx + range.lowerBound, count: range.count, beta: beta)
        }
        if withinChannel {
            let planes = num * channels, r = (size - 1) / 2, (h, w) = (s[2], s[3])
            let gAll = ctx.scratch(parts * plane, .lrnSquares), tmpAll = ctx.scratch(parts * plane, .lrnTemporary)
            let boxAll = ctx.scratch(parts * plane, .lrnWindowSums)
            let coeff = -beta * alpha, inv = 1 / Float(size * size)
            denseParallel(parts: parts) { part in
                let g = gAll + part * plane, tmp = tmpAll + part * plane, box = boxAll + part * plane
                for pl in denseSlice(planes, part, parts) {
                    let o = pl * plane
                    // g = dJ/d avg = dy * x * (-beta alpha) * s^-beta / s   (dx holds s^-beta)
                    for i in 0..<plane { g[i] = dy[o + i] * x[o + i] * coeff * dx[o + i] / sc[o + i] }
                    denseBoxSum(g, h: h, w: w, radius: r, box, tmp: tmp)
                    for i in 0..<plane {
                        dx[o + i] = dy[o + i] * dx[o + i] + 2 * x[o + i] * (box[i] * inv)
                    }
                }
            }
        } else {
            let r = (size - 1) / 2, cache = 2 * alpha * beta / Float(size)
            let ratio = ctx.scratch(channels * plane, .lrnSquares), accum = ctx.scratch(plane, .lrnTemporary)
            denseParallel(parts: parts) { part in
                let px = denseSlice(plane, part, parts)
                let lo = px.lowerBound, len = px.count
                let acc = accum + lo
                for n in 0..<num {
                    let o = n * channels * plane
                    for c in 0..<channels {
                        let q = c * plane + lo
                        for i in 0..<len {
                            ratio[q + i] = dy[o + q + i] * y[o + q + i] / sc[o + q + i]
                            dx[o + q + i] *= dy[o + q + i]
                        }
                    }
                    // accum = sum of ratio over channels c-r ... c+r, sliding.
                    acc.update(repeating: 0, count: len)
                    for c in 0..<min(r, channels) { axpy(len, 1, ratio + c * plane + lo, acc) }
                    for c in 0..<channels {
                        if c + r < channels { axpy(len, 1, ratio + (c + r) * plane + lo, acc) }
                        let xc = x + o + c * plane + lo, dc = dx + o + c * plane + lo
                        for i in 0..<len { dc[i] -= cache * xc[i] * acc[i] }
                        if c - r >= 0 { axpy(len, -1, ratio + (c - r) * plane + lo, acc) }
                    }
                }
            }
        }
    }
}
