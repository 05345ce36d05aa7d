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
    /// (16 x groups*C x tiles), M (16 x groups*K x tiles, and 8 spare).
    var filterFloats: Int { 16 * groups * k * c }
    var inputFloats: Int { 16 * groups * c * tiles }
    var outputFloats: Int { 16 * groups * k * tiles + 8 }   // + 8: whole-vector reads at the end

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
    // V = B^T d B for every (channel, tile), eight tiles of a tile row at a
    // time: each of the four input rows is split into its even and odd
    // columns (zero outside the image), so the patches' columns 0-3 of tiles
    // tx..tx+7 are the contiguous runs E[tx...], O[tx...], E[tx+1...], O[tx+1...].
    let runs = tw + 9
    denseParallel(work: cAll * tiles * 16) { part, parts in
        let eo = UnsafeMutablePointer<Float>.allocate(capacity: 8 * runs)   // E_i, O_i for i in 0..<4
        let spare = UnsafeMutablePointer<Float>.allocate(capacity: 8)
        defer { eo.deallocate(); spare.deallocate() }
        let vStride = cAll * tiles
        for cn in denseSlice(cAll * p.images, part, parts) {
            let n = cn / cAll, c = cn - n * cAll
            let plane = x + (n * cAll + c) * h * w
            let out = v + c * tiles + n * th * tw
            for ty in 0..<th {
                let y0 = 2 * ty - p.padH
                eo.update(repeating: 0, count: 8 * runs)
                for i in 0..<4 where y0 + i >= 0 && y0 + i < h {
                    let row = plane + (y0 + i) * w, e = eo + 2 * i * runs, o = e + runs
                    // E[t] = row[2t - padW], O[t] = row[2t + 1 - padW].
                    for t in 0..<(tw + 1) {
                        let xe = 2 * t - p.padW
                        if xe >= 0 && xe < w { e[t] = row[xe] }
                        if xe + 1 >= 0 && xe + 1 < w { o[t] = row[xe + 1] }
                    }
                }
                var tx = 0
                while tx < tw {
                    @inline(__always) func ld(_ i: Int, _ j: Int) -> SIMD8<Float> {
                        UnsafeRawPointer(eo + (2 * i + (j & 1)) * runs + tx + (j >> 1)).loadUnaligned(as: SIMD8<Float>.self)
                    }
                    let o = out + ty * tw + tx, lanes = min(8, tw - tx)
                    // Whole vectors, also past the row's last tile when the
                    // next tile row (written next, by this thread) follows.
                    let whole = lanes == 8 || ty + 1 < th
                    @inline(__always) func put(_ xi: Int, _ val: SIMD8<Float>) {
                        let dst = o + xi * vStride
                        if whole {
                            UnsafeMutableRawPointer(dst).storeBytes(of: val, as: SIMD8<Float>.self)
                        } else {
                            UnsafeMutableRawPointer(spare).storeBytes(of: val, as: SIMD8<Float>.self)
                            dst.update(from: spare, count: lanes)
                        }
                    }
                    // r = B^T d, column j at a time: r_ij for rows i.
                    @inline(__always) func column(_ j: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
                        let d0 = ld(0, j), d1 = ld(1, j), d2 = ld(2, j), d3 = ld(3, j)
                        return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
                    }
                    let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3)
                    // V = r B, row i at a time: (r_i0 - r_i2, r_i1 + r_i2, r_i2 - r_i1, r_i1 - r_i3).
                    put(0, c0.0 - c2.0); put(1, c1.0 + c2.0); put(2, c2.0 - c1.0); put(3, c1.0 - c3.0)
                    put(4, c0.1 - c2.1); put(5, c1.1 + c2.1); put(6, c2.1 - c1.1); put(7, c1.1 - c3.1)
                    put(8, c0.2 - c2.2); put(9, c1.2 + c2.2); put(10, c2.2 - c1.2); put(11, c1.2 - c3.2)
                    put(12, c0.3 - c2.3); put(13, c1.3 + c2.3); put(14, c2.3 - c1.3); put(15, c1.3 - c3.3)
                    tx += 8
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
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: 32)   // four 8-lane results
        defer { tmp.deallocate() }
        let mStride = kAll * tiles
        for kn in denseSlice(kAll * p.images, part, parts) {
            let n = kn / kAll, k = kn - n * kAll
            let plane = y + (n * kAll + k) * oh * ow
            let src = m + k * tiles + n * th * tw
            let b = bias?[k] ?? 0
            for ty in 0..<th {
                var tx = 0
                while tx < tw {
                    let s = src + ty * tw + tx, lanes = min(8, tw - tx)
                    // Whole vectors; lanes past the row's last tile read the
                    // next row (or the slack after M) and are not used.
                    @inline(__always) func ld(_ xi: Int) -> SIMD8<Float> {
                        UnsafeRawPointer(s + xi * mStride).loadUnaligned(as: SIMD8<Float>.self)
                    }
                    // t = A^T M (2 x 4, column j at a time), then Y = t A.
                    @inline(__always) func column(_ j: Int) -> (SIMD8<Float>, SIMD8<Float>) {
                        let m0 = ld(j), m1 = ld(4 + j), m2 = ld(8 + j), m3 = ld(12 + j)
                        return (m0 + m1 + m2, m1 - m2 - m3)
                    }
                    let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3)
                    let bv = SIMD8<Float>(repeating: b)
                    let y00 = c0.0 + c1.0 + c2.0 + bv, y01 = c1.0 - c2.0 - c3.0 + bv
                    let y10 = c0.1 + c1.1 + c2.1 + bv, y11 = c1.1 - c2.1 - c3.1 + bv
                    let raw = UnsafeMutableRawPointer(tmp)
                    raw.storeBytes(of: y00, as: SIMD8<Float>.self)
                    raw.storeBytes(of: y01, toByteOffset: 32, as: SIMD8<Float>.self)
                    raw.storeBytes(of: y10, toByteOffset: 64, as: SIMD8<Float>.self)
                    raw.storeBytes(of: y11, toByteOffset: 96, as: SIMD8<Float>.self)
                    for i in 0..<2 where 2 * ty + i < oh {
                        let row = plane + (2 * ty + i) * ow
                        for l in 0..<lanes {
                            let ox = 2 * (tx + l)
                            row[ox] = tmp[16 * i + l]
                            if ox + 1 < ow { row[ox + 1] = tmp[16 * i + 8 + l] }
                        }
                    }
                    tx += 8
                }
            }
        }
    }
}

/// One Winograd pass with the layer's scratch memory: transforms the
/// filters (`filter(gk, c)`, turned by 180 degrees with `flip`) into slot 2,
/// then convolves x into y (overwriting it) through slots 0 and 1.
func winogradRun(_ p: WinogradPlan, flip: Bool, _ ctx: ExecutionContext, x: UnsafePointer<Float>,
                 y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                 filter: (_ gk: Int, _ c: Int) -> UnsafePointer<Float>) {
    let u = ctx.scratch(p.filterFloats, slot: 2)
    winogradFilterTransform(p, flip: flip, u, filter: filter)
    winogradConvolve(p, x: x, u: u, v: ctx.scratch(p.inputFloats, slot: 0),
                     m: ctx.scratch(p.outputFloats, slot: 1), y: y, bias: bias)
}
