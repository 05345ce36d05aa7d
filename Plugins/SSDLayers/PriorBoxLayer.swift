import Foundation
import GraphIR
import Runtime

/// PriorBox (SSD fork): the default ("prior") boxes of one feature map, in
/// coordinates relative to the image, plus their variances.
///
///     layer { type: "PriorBox" bottom: "conv4_3_norm" bottom: "data" top: "conv4_3_norm_mbox_priorbox"
///             prior_box_param { min_size: 30 max_size: 60 aspect_ratio: 2 flip: true clip: false
///                               variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 step: 8 } }
///
/// Inputs: the feature map (N, C, H, W) and the image (N, C', IH, IW); only
/// their shapes are read. The image may be left out when `img_size` or
/// `img_h`/`img_w` is given (the fork never reads it then).
/// Output: (1, 2, H * W * P * 4), P priors per cell. Channel 0 holds the boxes
/// (xmin, ymin, xmax, ymax) cell by cell (h, then w), channel 1 the variance
/// of each coordinate.
///
/// Geometry, as in the fork:
///
///     img_w, img_h = img_w/img_h or img_size, else the image input's width/height
///     step_w, step_h = step_w/step_h or step, else img_w / W, img_h / H
///     centre of cell (h, w): cx = (w + offset) * step_w, cy = (h + offset) * step_h
///     box (bw, bh) -> ((cx - bw/2) / img_w, (cy - bh/2) / img_h, (cx + bw/2) / img_w, (cy + bh/2) / img_h)
///
/// For each min_size m (in order), with m truncated to an integer as the fork
/// does (`int min_size_ = min_sizes_[s]`, so 35.84 acts as 35):
/// 1. the square box m x m;
/// 2. if max_size is given (one per min_size, each > its min_size, also
///    truncated): the square box sqrt(m * M) x sqrt(m * M);
/// 3. for each aspect ratio r other than 1: m sqrt(r) x m / sqrt(r).
///
/// Aspect ratios: 1 first, then each given r not already in the list (within
/// 1e-6), followed by 1/r when `flip` (default true). P = (number of ratios)
/// * (number of min sizes) + (number of max sizes).
///
/// `clip` clamps the boxes to [0, 1]. Its default here is **false**, as in
/// weiliu89's SSD caffe.proto; the brocolli-caffe fork used as the test oracle
/// declares `default = true`, so write `clip:` explicitly for both to agree.
/// `variance`: none -> 0.1 for every coordinate, one value, or exactly four
/// (one per coordinate), all > 0. `offset` defaults to 0.5.
///
/// The output does not depend on the input values, so the backward pass writes
/// zero gradients (the fork's Backward does nothing).
final class PriorBoxLayer: LayerBase, Layer {
    let minSizes: [Float]
    let maxSizes: [Float]
    let aspectRatios: [Float]
    let clip: Bool
    let variance: [Float]
    let imgH: Int, imgW: Int          // 0: from the image input
    let stepH: Float, stepW: Float    // 0: image size / feature map size
    let offset: Float

    var numPriors: Int { aspectRatios.count * minSizes.count + maxSizes.count }

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1...2)
        try ctx.expectOutputs(1)
        let p = ctx.param("prior_box_param")
        func fail(_ field: String, _ message: String) -> RuntimeError {
            ctx.error("prior_box_param.\(field): \(message)")
        }
        let (mins, maxs, ratios, flip, clip, variance, offset) = try ctx.reading {
            (try p.floats("min_size"), try p.floats("max_size"), try p.floats("aspect_ratio"),
             try p.bool("flip", default: true), try p.bool("clip", default: false),
             try p.floats("variance"), try p.float("offset", default: 0.5))
        }
        guard !mins.isEmpty else { throw fail("min_size", "is required (at least one box size in pixels)") }
        // The fork truncates sizes to a C int; keep them where that is defined.
        let limit: Float = 1_073_741_824   // 2^30
        for m in mins where !(m > 0) || !(m < limit) {
            throw fail("min_size", "must be positive (and below 2^30 pixels), got \(m)")
        }
        if !maxs.isEmpty {
            guard maxs.count == mins.count else {
                throw fail("max_size", "needs one value per min_size (\(mins.count)), got \(maxs.count)")
            }
            for (m, mx) in zip(mins, maxs) where !(mx > m) || !(mx < limit) {
                throw fail("max_size", "must be greater than its min_size (\(m)) and below 2^30 pixels, got \(mx)")
            }
        }
        var ars: [Float] = [1]
        for r in ratios {
            guard r > 0, r.isFinite else { throw fail("aspect_ratio", "must be positive, got \(r)") }
            if ars.contains(where: { abs(r - $0) < 1e-6 }) { continue }
            ars.append(r)
            if flip { ars.append(Float(1.0 / Double(r))) }
        }
        switch variance.count {
        case 0: self.variance = [0.1]
        case 1, 4:
            for v in variance where !(v > 0) { throw fail("variance", "must be positive, got \(v)") }
            self.variance = variance
        default:
            throw fail("variance", "give one value or exactly four (one per coordinate), got \(variance.count)")
        }
        /// `both` for height and width, or the pair `hName`/`wName` (each
        /// > 0, not with `both`); (0, 0) when none is set.
        func sizeOrPair<T: Comparable & ExpressibleByIntegerLiteral>(
            _ both: String, _ hName: String, _ wName: String, _ read: (String) throws -> T
        ) throws -> (T, T) {
            let (hasH, hasW, hasBoth) = (p.has(hName), p.has(wName), p.has(both))
            if hasH || hasW {
                guard !hasBoth else { throw fail(both, "give either \(both) or \(hName)/\(wName), not both") }
                let (h, w) = try ctx.reading { (try read(hName), try read(wName)) }
                guard h > 0 else { throw fail(hName, "must be > 0 (give both \(hName) and \(wName)), got \(h)") }
                guard w > 0 else { throw fail(wName, "must be > 0 (give both \(hName) and \(wName)), got \(w)") }
                return (h, w)
            } else if hasBoth {
                let s = try ctx.reading { try read(both) }
                guard s > 0 else { throw fail(both, "must be > 0, got \(s)") }
                return (s, s)
            }
            return (0, 0)
        }
        // Image size: img_h/img_w, or img_size, or (0, 0) for the image input.
        (imgH, imgW) = try sizeOrPair("img_size", "img_h", "img_w") { try p.int($0, default: 0) }
        (stepH, stepW) = try sizeOrPair("step", "step_h", "step_w") { try p.float($0, default: 0) }
        if imgH == 0 && ctx.inputShapes.count < 2 {
            throw ctx.error("needs a second input, the image, for the image size (or set prior_box_param.img_size or img_h/img_w)")
        }
        minSizes = mins; maxSizes = maxs; aspectRatios = ars
        self.clip = clip; self.offset = offset
        super.init(base: ctx)
    }

    /// Height and width of a blob as Caffe reads them (legacy 4-d axes).
    private func heightWidth(_ s: Shape, _ what: String) throws -> (Int, Int) {
        guard s.rank <= 4 else { throw error("reads the height and width of the \(what), which needs at most 4 axes; got shape \(s)") }
        return (s.legacy(2), s.legacy(3))
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let (h, w) = try heightWidth(inputs[0], "feature map")
        if imgH == 0 { _ = try heightWidth(inputs[1], "image") }
        let n = h * w * numPriors * 4
        guard n > 0 else { throw error("the feature map \(inputs[0]) has no cells") }
        return [Shape([1, 2, n])]
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let (layerH, layerW) = try heightWidth(inputs[0].shape, "feature map")
        var (imageH, imageW) = (imgH, imgW)
        if imgH == 0 || imgW == 0 { (imageH, imageW) = try heightWidth(inputs[1].shape, "image") }
        var (sh, sw) = (stepH, stepW)
        if stepH == 0 || stepW == 0 {
            sw = Float(imageW) / Float(layerW)
            sh = Float(imageH) / Float(layerH)
        }
        let out = outputs[0].data
        let dim = layerH * layerW * numPriors * 4
        var idx = 0
        // The fork mixes float and double: centres and box sizes are float, the
        // division by the image size is done in double.
        func put(_ cx: Float, _ cy: Float, _ bw: Float, _ bh: Float) {
            out[idx] = Float((Double(cx) - Double(bw) / 2) / Double(imageW))
            out[idx + 1] = Float((Double(cy) - Double(bh) / 2) / Double(imageH))
            out[idx + 2] = Float((Double(cx) + Double(bw) / 2) / Double(imageW))
            out[idx + 3] = Float((Double(cy) + Double(bh) / 2) / Double(imageH))
            idx += 4
        }
        for h in 0..<layerH {
            for w in 0..<layerW {
                let cx = (Float(w) + offset) * sw
                let cy = (Float(h) + offset) * sh
                for (s, minSize) in minSizes.enumerated() {
                    let m = Int(minSize)                 // truncated, as in the fork
                    put(cx, cy, Float(m), Float(m))
                    if !maxSizes.isEmpty {
                        let side = Float(Double(m * Int(maxSizes[s])).squareRoot())
                        put(cx, cy, side, side)
                    }
                    for r in aspectRatios where abs(r - 1) >= 1e-6 {
                        let root = r.squareRoot()
                        put(cx, cy, Float(m) * root, Float(m) / root)
                    }
                }
            }
        }
        if clip {
            for d in 0..<dim { out[d] = min(max(out[d], 0), 1) }
        }
        let vout = out + dim
        if variance.count == 1 {
            vout.update(repeating: variance[0], count: dim)
        } else {
            for k in 0..<(dim / 4) { for j in 0..<4 { vout[k * 4 + j] = variance[j] } }
        }
    }

    /// The output depends only on the input shapes: every gradient is zero.
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        for case let g? in pass.inputGrads { g.zero() }
    }

    var backwardUses: BackwardUses { [] }
}
