import GraphIR
import Runtime

/// The differentiable map from G's output to f's input, per sample:
/// clip (to the valid pixel range) -> crop -> channel swap -> x * scale + offset.
///
/// Backward runs the same steps in reverse; the clip passes gradient only
/// where the value was inside its bounds.
public struct Glue: Sendable {
    /// Per-element bounds over one sample of G's output (C*H*W), or nil.
    public var clipLow: [Float]?
    public var clipHigh: [Float]?
    /// (y, x, height, width) of the crop, or nil.
    public var crop: (y: Int, x: Int, height: Int, width: Int)?
    public var channelSwap: [Int]?
    public var scale: Float = 1
    public var offset: [Float]?

    public init() {}

    /// f's input shape for G's output shape `s` (N, C, H, W).
    public func outputShape(_ s: Shape) throws -> Shape {
        guard s.rank == 4 else { throw SamplerError("generator output has shape \(s); the glue needs N x C x H x W") }
        var out = s
        if let c = crop {
            guard c.y >= 0, c.x >= 0, c.height > 0, c.width > 0, c.y + c.height <= s[2], c.x + c.width <= s[3] else {
                throw SamplerError("glue crop at (\(c.y), \(c.x)) of size \(c.height)x\(c.width) does not fit the generator's \(s[2])x\(s[3]) output")
            }
            out[2] = c.height; out[3] = c.width
        }
        if let sw = channelSwap {
            guard sw.count == s[1], sw.allSatisfy({ (0..<s[1]).contains($0) }) else {
                throw SamplerError("glue channel_swap \(sw) does not fit \(s[1]) channels")
            }
        }
        if let o = offset, o.count != s[1] { throw SamplerError("glue offset has \(o.count) values for \(s[1]) channels") }
        let per = s.count(from: 1)
        if let l = clipLow, l.count != per { throw SamplerError("glue clip bounds have \(l.count) values; the generator output has \(per) per sample") }
        if let h = clipHigh, h.count != per { throw SamplerError("glue clip bounds have \(h.count) values; the generator output has \(per) per sample") }
        return out
    }

    @inline(__always) private func source(_ c: Int) -> Int { channelSwap?[c] ?? c }

    /// Walks the rows the glue maps, for g of shape (n, c, h, w) and an output
    /// of rows `ow` wide, `oh` per channel: per sample, output channel `oc`
    /// and output row, `body(oc, src, dst, inSample)` with `src` the row's
    /// first element in g (from source channel `source(oc)`), `dst` in the
    /// output and `inSample` = `src` within one sample (the clip bounds' index).
    @inline(__always)
    private func forEachRow(_ g: Tensor, oh: Int, ow: Int,
                            _ body: (_ oc: Int, _ src: Int, _ dst: Int, _ inSample: Int) -> Void) {
        let n = g.shape[0], c = g.shape[1], h = g.shape[2], w = g.shape[3]
        let (y0, x0) = crop.map { ($0.y, $0.x) } ?? (0, 0)
        let per = c * h * w
        for s in 0..<n {
            for oc in 0..<c {
                let ic = source(oc)
                for yy in 0..<oh {
                    let inSample = ic * h * w + (yy + y0) * w + x0
                    body(oc, s * per + inSample, ((s * c + oc) * oh + yy) * ow, inSample)
                }
            }
        }
    }

    /// x = glue(g); `x` must have `outputShape(g.shape)`.
    public func forward(_ g: Tensor, _ x: Tensor) {
        let ow = x.shape[3]
        forEachRow(g, oh: x.shape[2], ow: ow) { oc, srcRow, dstRow, inSample in
            let off = offset?[oc] ?? 0
            for xx in 0..<ow {
                var v = g.data[srcRow + xx]
                if let l = clipLow { v = max(v, l[inSample + xx]) }
                if let u = clipHigh { v = min(v, u[inSample + xx]) }
                x.data[dstRow + xx] = v * scale + off
            }
        }
    }

    /// dg = d glue / d g applied to dx (dg is overwritten).
    public func backward(_ g: Tensor, _ dx: Tensor, _ dg: Tensor) {
        dg.zero()
        let ow = dx.shape[3]
        forEachRow(g, oh: dx.shape[2], ow: ow) { _, srcRow, dstRow, inSample in
            for xx in 0..<ow {
                let v = g.data[srcRow + xx]
                var pass = true
                if let l = clipLow, v < l[inSample + xx] { pass = false }
                if let u = clipHigh, v > u[inSample + xx] { pass = false }
                if pass { dg.data[srcRow + xx] += dx.data[dstRow + xx] * scale }
            }
        }
    }
}
