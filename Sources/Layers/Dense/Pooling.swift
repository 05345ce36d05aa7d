import GraphIR
import Runtime

/// Pooling (Caffe's PoolingLayer) over the spatial axes of (N, C, H, W).
///
/// Output size (Caffe's rule): OH = ceil((H + 2 padH - kh) / strideH) + 1
/// (floor with `round_mode: FLOOR` or the fork's `ceil_mode: false`); with
/// padding, a last window that would start in the bottom/right padding is
/// dropped. Window (ph, pw) covers rows [ph*sh - padH, ph*sh - padH + kh)
/// clipped to the image, likewise columns.
///
/// - MAX: y = the largest value in the window (the first one in row-major
///   order on ties); the arg-max (index within the plane) is kept in an Int32
///   mask so backward routes dy there: dx[mask] += dy. An optional second
///   output holds the mask as floats, as in Caffe.
/// - AVE: y = (sum over the window clipped to the image) / divisor, the
///   divisor counting the window clipped to the *padded* image (so padding
///   counts as zeros, but the part of a ceil-rounded last window beyond the
///   padding does not). Backward spreads dy / divisor over the clipped window.
/// - STOCHASTIC: Caffe has it on GPU only. TEST phase: y = sum(x^2)/sum(x)
///   over the window; TRAIN phase: samples a window element with probability
///   x / sum(x) and routes the gradient there. No gradient at TEST.
/// `global_pooling` pools each whole plane (kernel = H x W).
final class PoolingLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Pooling"]
    enum Method: String { case max = "MAX", ave = "AVE", stochastic = "STOCHASTIC" }
    let method: Method
    let global: Bool
    let ceilRounding: Bool
    let kernelH: Int, kernelW: Int   // unused with global_pooling (the window is the plane)
    let strideH: Int, strideW: Int
    let padH: Int, padW: Int
    let phase: Phase
    /// 2 when MAX pooling also outputs its mask.
    let outputCount: Int

    /// Arg-max (MAX) or sampled index (STOCHASTIC, TRAIN) per output element,
    /// as an index into the input plane; sized at reshape.
    private var mask: UnsafeMutablePointer<Int32>
    private var maskCapacity = 0
    /// Shape of the input the mask was last filled for (nil: not filled).
    private var maskShape: Shape?

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        let p = ctx.param("pooling_param")
        let m = try ctx.reading { try p.enumName("pool", default: "MAX") }
        guard let method = Method(rawValue: m) else {
            throw ctx.error("unknown pooling method '\(m)' (known: MAX, AVE, STOCHASTIC)")
        }
        self.method = method
        try ctx.expectOutputs(method == .max ? 1...2 : 1...1)
        phase = ctx.phase
        outputCount = ctx.outputCount
        let (global, roundMode, ceilMode) = try ctx.reading {
            (try p.bool("global_pooling", default: false), try p.enumName("round_mode", default: "CEIL"),
             try p.bool("ceil_mode", default: true))
        }
        _ = try ctx.reading { try p.enumName("engine", default: "DEFAULT") }
        self.global = global
        switch roundMode {
        case "CEIL": ceilRounding = ceilMode
        case "FLOOR": ceilRounding = false
        default: throw ctx.error("unknown round_mode '\(roundMode)' (known: CEIL, FLOOR)")
        }

        let hasK = p.has("kernel_size"), hasKH = p.has("kernel_h"), hasKW = p.has("kernel_w")
        if global {
            guard !(hasK || hasKH || hasKW) else {
                throw ctx.error("with global_pooling: true the filter size cannot be specified; remove kernel_size/kernel_h/kernel_w")
            }
            (kernelH, kernelW) = (0, 0)
        } else {
            guard hasK != (hasKH && hasKW) else {
                throw ctx.error(hasK ? "filter size is kernel_size OR kernel_h and kernel_w; not both"
                                     : "set kernel_size, or both kernel_h and kernel_w (for non-square filters both are required)")
            }
            (kernelH, kernelW) = try ctx.reading {
                hasK ? (try p.int("kernel_size", default: 0), try p.int("kernel_size", default: 0))
                     : (try p.int("kernel_h", default: 0), try p.int("kernel_w", default: 0))
            }
            guard kernelH > 0, kernelW > 0 else {
                throw ctx.error("filter dimensions cannot be zero (kernel \(kernelH)x\(kernelW))")
            }
        }
        /// `name` for both axes, or both `name_h` and `name_w` (Caffe's rule
        /// for pad and stride: not one of the pair alone, not mixed).
        func squareOrPair(_ name: String, default d: Int) throws -> (Int, Int) {
            let hasH = p.has("\(name)_h"), hasW = p.has("\(name)_w")
            guard (!p.has(name) && hasH && hasW) || (!hasH && !hasW) else {
                throw ctx.error("\(name) is \(name) OR \(name)_h and \(name)_w are required")
            }
            return try ctx.reading {
                hasH ? (try p.int("\(name)_h", default: d), try p.int("\(name)_w", default: d))
                     : (try p.int(name, default: d), try p.int(name, default: d))
            }
        }
        (padH, padW) = try squareOrPair("pad", default: 0)
        (strideH, strideW) = try squareOrPair("stride", default: 1)
        guard strideH > 0, strideW > 0 else { throw ctx.error("stride must be > 0 (stride \(strideH)x\(strideW))") }
        guard padH >= 0, padW >= 0 else { throw ctx.error("pad must be >= 0 (pad \(padH)x\(padW))") }
        if global {
            guard padH == 0, padW == 0, strideH == 1, strideW == 1 else {
                throw ctx.error("with global_pooling: true only pad = 0 and stride = 1 are allowed")
            }
        }
        if padH != 0 || padW != 0 {
            guard method != .stochastic else {
                throw ctx.error("padding is implemented only for MAX and AVE pooling")
            }
            if !global {
                guard padH < kernelH, padW < kernelW else {
                    throw ctx.error("pad \(padH)x\(padW) must be smaller than the kernel \(kernelH)x\(kernelW)")
                }
            }
        }
        mask = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        maskCapacity = 1
        super.init(base: ctx)
    }

    deinit { mask.deallocate() }

    /// Window geometry for one input shape.
    private struct Geometry {
        let planes: Int, h: Int, w: Int, kh: Int, kw: Int, oh: Int, ow: Int
    }

    private func geometry(_ s: Shape) throws -> Geometry {
        guard s.rank == 4 else {
            throw error("input must have 4 axes (num, channels, height, width), got \(s)")
        }
        let h = s[2], w = s[3]
        let kh = global ? h : kernelH, kw = global ? w : kernelW
        func size(_ len: Int, _ k: Int, _ pad: Int, _ stride: Int) -> Int {
            let q = Double(len + 2 * pad - k) / Double(stride)
            var n = Int(ceilRounding ? q.rounded(.up) : q.rounded(.down)) + 1
            // With padding, the last window must start inside the image or
            // its top/left padding, not in the bottom/right padding.
            if pad > 0 && (n - 1) * stride >= len + pad { n -= 1 }
            return n
        }
        let oh = size(h, kh, padH, strideH), ow = size(w, kw, padW, strideW)
        guard h > 0, w > 0, oh > 0, ow > 0 else {
            throw error("the \(kh)x\(kw) window (pad \(padH)x\(padW), stride \(strideH)x\(strideW)) leaves no output for the \(h)x\(w) input")
        }
        return Geometry(planes: s[0] * s[1], h: h, w: w, kh: kh, kw: kw, oh: oh, ow: ow)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let g = try geometry(inputs[0])
        let out = Shape([inputs[0][0], inputs[0][1], g.oh, g.ow])
        // The mask is sized by the forward pass (`ensureMask`): shape inference
        // allocates nothing, so `inspect` works on any legal shape.
        return outputCount == 2 ? [out, out] : [out]
    }

    var hasBackward: Bool { !(method == .stochastic && phase == .test) }
    /// Backward reads only the kept mask (MAX/STOCHASTIC) and the shapes, so
    /// `[]` would be honest; but Net.backward currently force-unwraps every
    /// input tensor it hands a layer, and crashes when the memory plan freed
    /// one (e.g. a non-in-place ReLU before this layer). Declare the input
    /// until Net passes shape-only tensors for released values.
    var backwardUses: BackwardUses { .inputs }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let g = try geometry(inputs[0].shape)
        let x = inputs[0].data, y = outputs[0].data
        switch method {
        case .max:
            try ensureMask(g)
            denseParallel(work: inputs[0].count, threads: ctx.threads) { part, parts in
                maxForward(g, x, y, planes: denseSlice(g.planes, part, parts))
            }
            if outputs.count > 1 {
                let mt = outputs[1].data
                for i in 0..<(g.planes * g.oh * g.ow) { mt[i] = Float(mask[i]) }
            }
            maskShape = inputs[0].shape
        case .ave:
            denseParallel(work: inputs[0].count, threads: ctx.threads) { part, parts in
                aveForward(g, x, y, planes: denseSlice(g.planes, part, parts))
            }
        case .stochastic:
            if ctx.phase == .train {
                try ensureMask(g)
                stochasticTrainForward(g, x, y, &ctx.rng)
                maskShape = inputs[0].shape
            } else {
                stochasticTestForward(g, x, y)
            }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let g = try geometry(dxT.shape)
        let dx = dxT.data, dy = pass.outputGrads[0].data
        let mask = self.mask
        switch method {
        case .max, .stochastic:
            guard maskShape == dxT.shape else {
                throw error(method == .stochastic
                    ? "STOCHASTIC pooling has a gradient only after a TRAIN-phase forward pass (which samples the routes)"
                    : "backward without a forward pass at this input shape (the arg-max mask is missing)")
            }
            // dx = 0; dx[argmax] += dy, plane by plane.
            let outPlane = g.oh * g.ow, inPlane = g.h * g.w
            denseParallel(work: dxT.count, threads: ctx.threads) { part, parts in
                for pl in denseSlice(g.planes, part, parts) {
                    let m = mask + pl * outPlane, d = dy + pl * outPlane, o = dx + pl * inPlane
                    o.update(repeating: 0, count: inPlane)
                    for i in 0..<outPlane {
                        let j = Int(m[i])
                        if j >= 0 { o[j] += d[i] }
                    }
                }
            }
        case .ave:
            denseParallel(work: dxT.count, threads: ctx.threads) { part, parts in
                aveBackward(g, dy, dx, planes: denseSlice(g.planes, part, parts))
            }
        }
    }

    // MARK: - Kernels

    private func ensureMask(_ g: Geometry) throws {
        let n = g.planes * g.oh * g.ow
        if n > maskCapacity {
            mask.deallocate()
            mask = UnsafeMutablePointer<Int32>.allocate(capacity: n)
            maskCapacity = n
        }
        guard g.h * g.w <= Int(Int32.max) else {
            throw error("input plane \(g.h)x\(g.w) is too large for the Int32 arg-max mask")
        }
    }

    /// y = max over each window; mask = its index in the plane. A strict '>'
    /// keeps the first maximum in row-major order on ties, as Caffe.
    ///
    /// NaN propagates, as in PyTorch (`val > max || isnan(val)`): a window
    /// holding a NaN gives NaN, and its gradient goes to the (last) NaN.
    /// Caffe starts at -FLT_MAX and NaN never wins its '>', so it returns
    /// the largest finite value of a partly-NaN window and -3.4e38 for an
    /// all-NaN one: a silently wrong number where NaN says what happened. For
    /// the same reason the start is -inf rather than -FLT_MAX (an all -inf
    /// window gives -inf; Caffe gives -3.4e38). Finite inputs give Caffe's
    /// results exactly. (Measured: this plain loop beats branch-free selects
    /// and column-sweeping variants.)
    private func maxForward(_ g: Geometry, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                            planes: Range<Int>) {
        let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow)
        let (kh, kw, sh, sw, ph0, pw0) = (g.kh, g.kw, strideH, strideW, padH, padW)
        for pl in planes {
            let src = x + pl * h * w, dst = y + pl * oh * ow, m = mask + pl * oh * ow
            for py in 0..<oh {
                let hs = py * sh - ph0
                let h0 = max(hs, 0), h1 = max(h0, min(hs + kh, h))
                var px = 0
                while px < ow {
                    let ws = px * sw - pw0
                    // Eight outputs at once where all their windows lie in
                    // the row and the loads stay in it (stride 1 or 2).
                    if (sw == 1 || sw == 2) && ws >= 0 && px + 8 <= ow && ws + 7 * sw + kw + sw - 1 <= w {
                        var best = SIMD8<Float>(repeating: -Float.infinity)
                        var arg = SIMD8<Int32>(repeating: -1)
                        let lanes = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) &* Int32(sw)
                        for yy in h0..<h1 {
                            let row = src + yy * w
                            for kx in 0..<kw {
                                let at = row + ws + kx
                                let v = sw == 1 ? UnsafeRawPointer(at).loadUnaligned(as: SIMD8<Float>.self)
                                    : UnsafeRawPointer(at).loadUnaligned(as: SIMD16<Float>.self).evenHalf
                                // Strict >, in the scalar loop's order: the first maximum wins; NaN always wins.
                                let better = (v .> best) .| (v .!= v)
                                best.replace(with: v, where: better)
                                arg.replace(with: lanes &+ Int32(truncatingIfNeeded: yy * w + ws + kx), where: better)
                            }
                        }
                        UnsafeMutableRawPointer(dst + py * ow + px).storeBytes(of: best, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(m + py * ow + px).storeBytes(of: arg, as: SIMD8<Int32>.self)
                        px += 8
                        continue
                    }
                    let w0 = max(ws, 0), w1 = max(w0, min(ws + kw, w))
                    var best = -Float.infinity
                    var arg = -1
                    for yy in h0..<h1 {
                        let row = src + yy * w
                        for xx in w0..<w1 {
                            // Branch-free (the winner is data-dependent, so a
                            // branch mispredicts often); strict > as Caffe, NaN wins.
                            let v = row[xx], better = v > best || v.isNaN
                            best = better ? v : best
                            arg = better ? yy * w + xx : arg
                        }
                    }
                    dst[py * ow + px] = best
                    m[py * ow + px] = Int32(truncatingIfNeeded: arg)
                    px += 1
                }
            }
        }
    }

    /// AVE pooling's window along one axis for output index `i`: the input
    /// range `lo ..< hi` it sums (clipped to the image) and `span`, its length
    /// clipped to the padded image (Caffe's divisor counts the padding).
    @inline(__always)
    private static func aveWindow(_ i: Int, stride: Int, pad: Int, kernel: Int, size: Int) -> (lo: Int, hi: Int, span: Int) {
        let start = i * stride - pad, end = min(start + kernel, size + pad)
        let lo = max(start, 0)
        return (lo, max(lo, min(end, size)), end - start)
    }

    /// y = sum over the window clipped to the image / size of the window
    /// clipped to the padded image.
    private func aveForward(_ g: Geometry, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                            planes: Range<Int>) {
        let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow)
        for pl in planes {
            let src = x + pl * h * w, dst = y + pl * oh * ow
            for py in 0..<oh {
                let (h0, h1, hSpan) = Self.aveWindow(py, stride: strideH, pad: padH, kernel: g.kh, size: h)
                for px in 0..<ow {
                    let (w0, w1, wSpan) = Self.aveWindow(px, stride: strideW, pad: padW, kernel: g.kw, size: w)
                    let divisor = Float(hSpan * wSpan)
                    var s: Float = 0
                    for yy in h0..<h1 {
                        let row = src + yy * w
                        for xx in w0..<w1 { s += row[xx] }
                    }
                    dst[py * ow + px] = s / divisor
                }
            }
        }
    }

    /// dx = 0; dx[window] += dy / divisor.
    private func aveBackward(_ g: Geometry, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                             planes: Range<Int>) {
        let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow)
        for pl in planes {
            let d = dy + pl * oh * ow, o = dx + pl * h * w
            o.update(repeating: 0, count: h * w)
            for py in 0..<oh {
                let (h0, h1, hSpan) = Self.aveWindow(py, stride: strideH, pad: padH, kernel: g.kh, size: h)
                for px in 0..<ow {
                    let (w0, w1, wSpan) = Self.aveWindow(px, stride: strideW, pad: padW, kernel: g.kw, size: w)
                    let v = d[py * ow + px] / Float(hSpan * wSpan)
                    for yy in h0..<h1 {
                        let row = o + yy * w
                        for xx in w0..<w1 { row[xx] += v }
                    }
                }
            }
        }
    }

    /// TEST-phase stochastic pooling (Caffe GPU): sum(x^2) / sum(x) over the
    /// window, the sum starting from FLT_MIN.
    private func stochasticTestForward(_ g: Geometry, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow)
        for pl in 0..<g.planes {
            let src = x + pl * h * w, dst = y + pl * oh * ow
            for py in 0..<oh {
                let hs = min(py * strideH, h), h1 = min(hs + g.kh, h)
                for px in 0..<ow {
                    let ws = min(px * strideW, w), w1 = min(ws + g.kw, w)
                    var sum = Float.leastNormalMagnitude, sq: Float = 0
                    for yy in hs..<h1 {
                        for xx in ws..<w1 { let v = src[yy * w + xx]; sum += v; sq += v * v }
                    }
                    dst[py * ow + px] = sq / sum
                }
            }
        }
    }

    /// TRAIN-phase stochastic pooling (Caffe GPU): picks the first window
    /// element whose running sum reaches u * sum(x), u uniform in [0, 1).
    private func stochasticTrainForward(_ g: Geometry, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                        _ rng: inout SplitMix64) {
        let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow)
        for pl in 0..<g.planes {
            let src = x + pl * h * w, dst = y + pl * oh * ow, m = mask + pl * oh * ow
            for py in 0..<oh {
                let hs = min(py * strideH, h), h1 = min(hs + g.kh, h)
                for px in 0..<ow {
                    let ws = min(px * strideW, w), w1 = min(ws + g.kw, w)
                    var sum: Float = 0
                    for yy in hs..<h1 { for xx in ws..<w1 { sum += src[yy * w + xx] } }
                    guard h1 > hs && w1 > ws else {
                        // A ceil-rounded window past the image (stride > kernel): empty.
                        dst[py * ow + px] = 0; m[py * ow + px] = -1
                        continue
                    }
                    let threshold = rng.uniform() * sum
                    var run: Float = 0
                    var pick = (h1 - 1) * w + (w1 - 1)
                    search: for yy in hs..<h1 {
                        for xx in ws..<w1 {
                            run += src[yy * w + xx]
                            if run >= threshold { pick = yy * w + xx; break search }
                        }
                    }
                    dst[py * ow + px] = src[pick]
                    m[py * ow + px] = Int32(pick)
                }
            }
        }
    }
}
