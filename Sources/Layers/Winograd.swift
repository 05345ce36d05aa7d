import Runtime

// Winograd's minimal filtering F(2x2, 3x3) for 3x3 stride-1 convolutions
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
// each 2x2 output tile comes from a 4x4 input tile with 16 multiplies per
// (input, output) channel pair instead of 36, so the GEMM work of a 3x3 layer
// drops to 16 / 36 per tile (about half, counting the tiles' overlap at the
// image border). With d a 4x4 input tile and g a 3x3 filter:
//
//     U = G g G^T,   V = B^T d B,   Y = A^T [ sum_c U (.) V ] A
//
//     G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//     A^T = [1 1 1 0; 0 1 -1 -1]
//
// The sum over input channels is, for each of the 16 tile positions, one
// GEMM: M_xi (K x T) = U_xi (K x C) * V_xi (C x T) over all T tiles of the
// batch. The transforms use only additions and halvings, so the result
// differs from the direct sum by rounding only (~1e-6 relative).

/// The geometry of one Winograd pass: `groups` groups of C input and K
/// output channels, images of h x w padded by (padH, padW) giving oh x ow.
struct WinogradPlan {
    let images: Int, groups: Int, c: Int, k: Int
    let h: Int, w: Int, padH: Int, padW: Int
    var oh: Int { h + 2 * padH - 2 }
    var ow: Int { w + 2 * padW - 2 }
    var tilesH: Int { (oh + 1) / 2 }
    var tilesW: Int { (ow + 1) / 2 }
    /// Tiles of the whole batch: the GEMMs' N.
    var tiles: Int { images * tilesH * tilesW }

    /// Floats of the three scratch arrays: U (16 x groups*K*C), V
    /// (16 x groups*C x tiles), M (16 x groups*K x tiles).
    var filterFloats: Int { 16 * groups * k * c }
    var inputFloats: Int { 16 * groups * c * tiles }
    var outputFloats: Int { 16 * groups * k * tiles }

    /// Is a 3x3 kernel with these settings one Winograd F(2x2, 3x3) handles
    /// (stride 1, no dilation, pad at most 2 so every tile sees the image)
    /// and big enough for the transforms to pay (at least 8 x 8 outputs and
    /// 16 channels each way)?
    static func applies(kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, dilationH: Int, dilationW: Int,
                        padH: Int, padW: Int, inChannels: Int, outChannels: Int, outH: Int, outW: Int) -> Bool {
        kernelH == 3 && kernelW == 3 && strideH == 1 && strideW == 1 && dilationH == 1 && dilationW == 1
            && padH <= 2 && padW <= 2 && inChannels >= 16 && outChannels >= 16 && outH >= 8 && outW >= 8
    }
}

/// U[xi][gk][c] = (G g G^T)[xi] for every filter; `filter(gk, c)` gives the
/// 3x3 filter (row-major) from output channel gk (all groups: g*K + k) to
/// group-input channel c, `flip` turns it by 180 degrees.
func winogradFilterTransform(_ p: WinogradPlan, flip: Bool, _ u: UnsafeMutablePointer<Float>,
                             filter: (_ gk: Int, _ c: Int) -> UnsafePointer<Float>) {
    let count = p.groups * p.k * p.c
    denseParallel(work: count * 16) { part, parts in
        for f in denseSlice(count, part, parts) {
            let gk = f / p.c, c = f - gk * p.c
            let src = filter(gk, c)
            var g = SIMD16<Float>()
            for i in 0..<9 { g[i] = src[flip ? 8 - i : i] }
            // t = G g (4 x 3), then U = t G^T (4 x 4).
            var t = SIMD16<Float>()
            for j in 0..<3 {
                let a = g[j], b = g[3 + j], e = g[6 + j]
                t[j] = a; t[3 + j] = 0.5 * (a + b + e); t[6 + j] = 0.5 * (a - b + e); t[9 + j] = e
            }
            for i in 0..<4 {
                let a = t[3 * i], b = t[3 * i + 1], e = t[3 * i + 2]
                u[(4 * i + 0) * count + f] = a
                u[(4 * i + 1) * count + f] = 0.5 * (a + b + e)
                u[(4 * i + 2) * count + f] = 0.5 * (a - b + e)
                u[(4 * i + 3) * count + f] = e
            }
        }
    }
}

/// y (images x groups*K x oh x ow) = the 3x3 correlation of x (images x
/// groups*C x h x w, zero-padded) with the filters whose transforms are in
/// `u`, plus `bias` per output channel when given. Uses `v` and `m` as the
/// transformed inputs and products (sizes from the plan).
func winogradConvolve(_ p: WinogradPlan, x: UnsafePointer<Float>, u: UnsafePointer<Float>,
                      v: UnsafeMutablePointer<Float>, m: UnsafeMutablePointer<Float>,
                      y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?) {
    let cAll = p.groups * p.c, kAll = p.groups * p.k, tiles = p.tiles
    let th = p.tilesH, tw = p.tilesW, h = p.h, w = p.w
    // V = B^T d B for every (channel, tile).
    denseParallel(work: cAll * tiles * 16) { part, parts in
        for cn in denseSlice(cAll * p.images, part, parts) {
            let n = cn / cAll, c = cn - n * cAll
            let plane = x + (n * cAll + c) * h * w
            let out = v + c * tiles + n * th * tw
            let vStride = cAll * tiles
            for ty in 0..<th {
                let y0 = 2 * ty - p.padH
                for tx in 0..<tw {
                    let x0 = 2 * tx - p.padW
                    var d = SIMD16<Float>()
                    if y0 >= 0, y0 + 4 <= h, x0 >= 0, x0 + 4 <= w {
                        for i in 0..<4 {
                            let row = plane + (y0 + i) * w + x0
                            d[4 * i] = row[0]; d[4 * i + 1] = row[1]; d[4 * i + 2] = row[2]; d[4 * i + 3] = row[3]
                        }
                    } else {
                        for i in 0..<4 where y0 + i >= 0 && y0 + i < h {
                            let row = plane + (y0 + i) * w
                            for j in 0..<4 where x0 + j >= 0 && x0 + j < w { d[4 * i + j] = row[x0 + j] }
                        }
                    }
                    // r = B^T d (rows), then V = r B (columns).
                    var r = SIMD16<Float>()
                    for j in 0..<4 {
                        let d0 = d[j], d1 = d[4 + j], d2 = d[8 + j], d3 = d[12 + j]
                        r[j] = d0 - d2; r[4 + j] = d1 + d2; r[8 + j] = d2 - d1; r[12 + j] = d1 - d3
                    }
                    let o = out + ty * tw + tx
                    for i in 0..<4 {
                        let a = r[4 * i], b = r[4 * i + 1], c2 = r[4 * i + 2], e = r[4 * i + 3]
                        o[(4 * i + 0) * vStride] = a - c2
                        o[(4 * i + 1) * vStride] = b + c2
                        o[(4 * i + 2) * vStride] = c2 - b
                        o[(4 * i + 3) * vStride] = b - e
                    }
                }
            }
        }
    }
    // M_xi = U_xi V_xi, per group.
    for xi in 0..<16 {
        for g in 0..<p.groups {
            gemm(m: p.k, n: tiles, k: p.c,
                 a: u + xi * kAll * p.c + g * p.k * p.c, lda: p.c,
                 b: v + xi * cAll * tiles + g * p.c * tiles, ldb: tiles,
                 c: m + xi * kAll * tiles + g * p.k * tiles, ldc: tiles)
        }
    }
    // Y = A^T M A, clipped to the output, plus the bias.
    let oh = p.oh, ow = p.ow
    denseParallel(work: kAll * tiles * 16) { part, parts in
        for kn in denseSlice(kAll * p.images, part, parts) {
            let n = kn / kAll, k = kn - n * kAll
            let plane = y + (n * kAll + k) * oh * ow
            let src = m + k * tiles + n * th * tw
            let mStride = kAll * tiles
            let b = bias?[k] ?? 0
            for ty in 0..<th {
                for tx in 0..<tw {
                    let s = src + ty * tw + tx
                    var t = SIMD8<Float>()   // A^T M: 2 x 4
                    for j in 0..<4 {
                        let m0 = s[j * mStride], m1 = s[(4 + j) * mStride]
                        let m2 = s[(8 + j) * mStride], m3 = s[(12 + j) * mStride]
                        t[j] = m0 + m1 + m2
                        t[4 + j] = m1 - m2 - m3
                    }
                    let oy = 2 * ty, ox = 2 * tx
                    for i in 0..<2 where oy + i < oh {
                        let a = t[4 * i], bb = t[4 * i + 1], c = t[4 * i + 2], e = t[4 * i + 3]
                        let row = plane + (oy + i) * ow + ox
                        row[0] = a + bb + c + b
                        if ox + 1 < ow { row[1] = bb - c - e + b }
                    }
                }
            }
        }
    }
}
