#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import GraphIR
import Runtime

// Kernels of the dense group (Convolution, Deconvolution, InnerProduct,
// Pooling, LRN) that Runtime does not have: im2col / col2im writing into a
// column block of a wider matrix (so several images' columns can feed one
// GEMM) and split between threads by rows, the gather/scatter between that
// batched layout and NCHW images, per-channel bias helpers, the box filter
// of LRN WITHIN_CHANNEL, a small-batch fully-connected kernel, and the
// thread helpers (Dispatch, for the caller's `ExecutionContext.threads`). Kept here rather
// than in Runtime so the group stays self-contained.
//
// Note: write SIMD accumulations as `a = a + b * c`; in this module the
// compiler has been seen to emit `+=` on SIMD8<Float> as an out-of-line call.

/// How many images' columns one GEMM takes: enough that the GEMM has at
/// least `denseMinColumns` columns (OpenBLAS is inefficient on narrow
/// matrices, e.g. 13x13 outputs), never more than fit in
/// `denseColumnBudget` floats of scratch. Wide images (conv1, conv2 of
/// CaffeNet) go one at a time: their GEMM is efficient alone, and their
/// output then needs no scatter.
let denseColumnBudget = 1 << 23   // 8M floats = 32 MB
let denseMinColumns = 640

@inline(__always)
func denseBatchSize(floatsPerImage: Int, columnsPerImage: Int, images: Int) -> Int {
    guard floatsPerImage > 0, columnsPerImage > 0 else { return max(1, images) }
    let want = (denseMinColumns + columnsPerImage - 1) / columnsPerImage
    return max(1, min(images, want, denseColumnBudget / floatsPerImage))
}

/// How many threads a kernel touching `work` floats should use: `threads`
/// (the net's compute threads, the CLI's --threads), or 1 when the work is
/// too small to be worth waking threads for.
@inline(__always)
func denseParts(work: Int, threads: Int) -> Int { work < (1 << 16) ? 1 : threads }

/// Runs `body(part)` for part in 0..<parts, on parallel threads when parts > 1.
/// Callers give each part a disjoint slice of the output.
@inline(__always)
func denseParallel(parts: Int, _ body: (_ part: Int) -> Void) {
    if parts <= 1 { body(0); return }
    DispatchQueue.concurrentPerform(iterations: parts, execute: body)
}

/// `body(part, parts)` on denseParts(work:threads:) threads.
@inline(__always)
func denseParallel(work: Int, threads: Int, _ body: (_ part: Int, _ parts: Int) -> Void) {
    let parts = denseParts(work: work, threads: threads)
    denseParallel(parts: parts) { body($0, parts) }
}

/// The i-th of `parts` near-equal slices of 0..<n.
@inline(__always)
func denseSlice(_ n: Int, _ i: Int, _ parts: Int) -> Range<Int> { (n * i / parts)..<(n * (i + 1) / parts) }

/// Smallest integer >= a / b for b > 0 (any sign of a).
@inline(__always)
func denseCeilDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? (a + b - 1) / b : -((-a) / b) }

/// im2col of `count` images (image b at `images + b * imageStride`) side by
/// side into one (C*kh*kw) x (count*OH*OW) matrix: row r = (c, ki, kj)
/// holds, for each image in turn, its OH*OW window values; padding reads
/// as zero. Threads take disjoint sets of whole rows (by (c, ki)), so each
/// writes long contiguous runs.
func denseIm2colBatch(_ g: ConvGeometry, _ images: UnsafePointer<Float>, count: Int, imageStride: Int,
                      _ col: UnsafeMutablePointer<Float>, threads: Int) {
    let l = g.columnCols, ld = count * l
    let units = g.channels * g.kernelH
    denseParallel(work: g.columnRows * ld, threads: threads) { part, parts in
        // Strided windows read each source row split into its sw phases.
        let phases = g.strideW > 1 ? UnsafeMutablePointer<Float>.allocate(capacity: g.width + g.strideW) : nil
        defer { phases?.deallocate() }
        for u in denseSlice(units, part, parts) {
            let c = u / g.kernelH, ki = u - c * g.kernelH
            for b in 0..<count {
                denseIm2colTap(g, images + b * imageStride + c * g.height * g.width, ki: ki,
                               col + u * g.kernelW * ld + b * l, ld: ld, phases: phases)
            }
        }
    }
}

/// The kw column rows (ki, 0...kw-1) of one channel of one image: row kj at
/// `dst + kj * ld`, OH*OW values each, every window column a contiguous
/// vector copy. With a horizontal stride sw > 1 each source row is first
/// split into its sw phases (x = i*sw + r at phases[r * pw + i], pw =
/// ceil(width / sw); `phases` holds width + sw floats); with sw = 1 the row
/// itself is that layout (r = 0, i = x).
@inline(__always)
private func denseIm2colTap(_ g: ConvGeometry, _ src: UnsafePointer<Float>, ki: Int,
                            _ dst: UnsafeMutablePointer<Float>, ld: Int, phases: UnsafeMutablePointer<Float>?) {
    let oh = g.outHeight, ow = g.outWidth, h = g.height, w = g.width
    let sh = g.strideH, sw = g.strideW, pw = (w + sw - 1) / sw
    let dy = ki * g.dilationH - g.padH
    // Output rows whose input row oy*sh + dy lies inside [0, h); the others are zero.
    let oy0 = min(oh, max(0, denseCeilDiv(-dy, sh))), oy1 = max(oy0, min(oh, denseCeilDiv(h - dy, sh)))
    for kj in 0..<g.kernelW {
        let out = dst + kj * ld
        if oy0 > 0 { out.update(repeating: 0, count: oy0 * ow) }
        if oy1 < oh { (out + oy1 * ow).update(repeating: 0, count: (oh - oy1) * ow) }
    }
    for oy in oy0..<oy1 {
        let row = src + (oy * sh + dy) * w
        let base: UnsafePointer<Float>
        if sw > 1 {
            guard let phases else { preconditionFailure("denseIm2colTap: a strided layer needs a phase buffer") }
            for r in 0..<sw {
                let p = phases + r * pw
                var i = 0, x = r
                while x < w { p[i] = row[x]; i += 1; x += sw }
            }
            base = UnsafePointer(phases)
        } else {
            base = row
        }
        for kj in 0..<g.kernelW {
            let dx = kj * g.dilationW - g.padW
            // Output columns whose input x = ox*sw + dx lies inside [0, w).
            let lo = dx >= 0 ? 0 : min(ow, (-dx + sw - 1) / sw)
            let hi = max(lo, w - dx <= 0 ? 0 : min(ow, (w - dx - 1) / sw + 1))
            let (q, r) = denseFloorDivMod(dx, sw)
            let d = dst + kj * ld + oy * ow
            for ox in 0..<lo { d[ox] = 0 }
            denseCopyRun(d + lo, base + r * pw + lo + q, hi - lo)
            for ox in hi..<ow { d[ox] = 0 }
        }
    }
}

/// Floor division and the non-negative remainder, for s > 0.
@inline(__always)
func denseFloorDivMod(_ a: Int, _ s: Int) -> (q: Int, r: Int) {
    let q = a >= 0 ? a / s : -((-a + s - 1) / s)
    return (q, a - q * s)
}

/// dst[0..<n] = src[0..<n] for the short runs of im2col (often 13 or 27
/// floats): whole vectors, the last one overlapping the one before, so no
/// scalar tail and no read or write outside the run.
@inline(__always)
func denseCopyRun(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    if n < 8 {
        for i in 0..<n { dst[i] = src[i] }
        return
    }
    let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
    var i = 0
    while i + 8 <= n {
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self), toByteOffset: 4 * i,
                     as: SIMD8<Float>.self)
        i += 8
    }
    if i < n {
        let t = 4 * (n - 8)
        d.storeBytes(of: s.loadUnaligned(fromByteOffset: t, as: SIMD8<Float>.self), toByteOffset: t,
                     as: SIMD8<Float>.self)
    }
}

/// dst[0..<n] += src[0..<n] for the short runs of col2im: whole vectors,
/// then a scalar tail.
@inline(__always)
func denseAddRun(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
    var i = 0
    while i + 8 <= n {
        let v = d.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            + s.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
        d.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
        i += 8
    }
    while i < n { dst[i] += src[i]; i += 1 }
}

/// The adjoint of denseIm2colBatch: adds each entry of the (C*kh*kw) x
/// (count*OH*OW) matrix back into the pixel of image b it was read from
/// (images are not cleared first). Threads take disjoint (channel, band of
/// image rows) pieces, so no two write one pixel.
func denseCol2imBatch(_ g: ConvGeometry, _ col: UnsafePointer<Float>, count: Int,
                      _ images: UnsafeMutablePointer<Float>, imageStride: Int, threads: Int) {
    let l = g.columnCols, ld = count * l, h = g.height
    denseParallel(work: g.columnRows * ld, threads: threads) { part, parts in
        // Bands of rows only when there are too few channels to share out.
        let bands = g.channels >= 4 * parts ? 1 : min(h, 4 * parts)
        // Strided windows add into the rows' sw phases, interleaved at the end.
        let pw = (g.width + g.strideW - 1) / g.strideW
        let phases = g.strideW > 1 ? UnsafeMutablePointer<Float>.allocate(capacity: g.strideW * pw * ((h + bands - 1) / bands)) : nil
        defer { phases?.deallocate() }
        for u in denseSlice(g.channels * bands, part, parts) {
            let c = u / bands, band = u - c * bands
            let ys = denseSlice(h, band, bands)
            for b in 0..<count {
                denseCol2imChannel(g, col + c * g.kernelH * g.kernelW * ld + b * l, ld: ld,
                                   images + b * imageStride + c * h * g.width, rows: ys, phases: phases)
            }
        }
    }
}

/// Adds the kh*kw column rows of one channel (row (ki, kj) at
/// `col + (ki*kw + kj) * ld`) into that channel's image rows `ys`, each
/// window column as a contiguous vector add. With a horizontal stride sw > 1
/// the sums go first to the rows split into their sw phases (pixel x = i*sw
/// + r of row y at phases[(r * rows + y - ys.lowerBound) * pw + i], pw =
/// ceil(width / sw); `phases` holds sw * pw * ys.count floats), which are
/// then added back into the image; with sw = 1 the image rows themselves
/// are that layout (r = 0, i = x).
@inline(__always)
private func denseCol2imChannel(_ g: ConvGeometry, _ col: UnsafePointer<Float>, ld: Int,
                                _ image: UnsafeMutablePointer<Float>, rows ys: Range<Int>,
                                phases: UnsafeMutablePointer<Float>?) {
    let oh = g.outHeight, ow = g.outWidth, w = g.width
    let sh = g.strideH, sw = g.strideW, pw = (w + sw - 1) / sw, rows = ys.count
    let target: UnsafeMutablePointer<Float>
    if sw > 1 {
        guard let phases else { preconditionFailure("denseCol2imChannel: a strided layer needs a phase buffer") }
        phases.update(repeating: 0, count: sw * pw * rows)
        target = phases
    } else {
        target = image + ys.lowerBound * w
    }
    for ki in 0..<g.kernelH {
        let dy = ki * g.dilationH - g.padH
        // Output rows oy whose input row oy*sh + dy falls in ys.
        let oy0 = max(0, denseCeilDiv(ys.lowerBound - dy, sh))
        let oy1 = min(oh, denseCeilDiv(ys.upperBound - dy, sh))
        guard oy1 > oy0 else { continue }
        for kj in 0..<g.kernelW {
            let dx = kj * g.dilationW - g.padW
            let base = col + (ki * g.kernelW + kj) * ld
            let lo = dx >= 0 ? 0 : min(ow, (-dx + sw - 1) / sw)
            let hi = w - dx <= 0 ? 0 : min(ow, (w - dx - 1) / sw + 1)
            guard hi > lo else { continue }
            let (q, r) = denseFloorDivMod(dx, sw)
            for oy in oy0..<oy1 {
                let y = oy * sh + dy - ys.lowerBound
                denseAddRun(target + (r * rows + y) * pw + lo + q, base + oy * ow + lo, hi - lo)
            }
        }
    }
    guard sw > 1 else { return }
    for y in 0..<rows {
        let row = image + (ys.lowerBound + y) * w
        for r in 0..<sw {
            let p = target + (r * rows + y) * pw
            var i = 0, x = r
            while x < w { row[x] += p[i]; i += 1; x += sw }
        }
    }
}

/// Copies `count` images of `rows` x `cols` floats (image b at
/// `src + b * srcStride`) side by side into one (rows) x (count*cols) matrix.
func denseGather(_ src: UnsafePointer<Float>, count: Int, rows: Int, cols: Int, srcStride: Int,
                 _ dst: UnsafeMutablePointer<Float>) {
    let ld = count * cols
    for b in 0..<count {
        let s = src + b * srcStride
        for r in 0..<rows { (dst + r * ld + b * cols).update(from: s + r * cols, count: cols) }
    }
}

/// `count` images of `rows` x `cols` floats starting at `src` (image stride
/// `stride`) as one (rows) x (count*cols) matrix: the images themselves when
/// there is one, else gathered into scratch `buffer` of `ctx`.
func denseBatchMatrix(_ src: UnsafeMutablePointer<Float>, count: Int, rows: Int, cols: Int, stride: Int,
                      _ ctx: ExecutionContext, _ buffer: ScratchBuffer) -> UnsafeMutablePointer<Float> {
    if count == 1 { return src }
    let m = ctx.scratch(rows * count * cols, buffer)
    denseGather(src, count: count, rows: rows, cols: cols, srcStride: stride, m)
    return m
}

/// The inverse of denseGather: splits a (rows) x (count*cols) matrix into
/// `count` images at `dst + b * dstStride` (overwriting them), adding
/// `bias[r]` to row r when a bias is given.
func denseScatter(_ src: UnsafePointer<Float>, count: Int, rows: Int, cols: Int,
                  _ dst: UnsafeMutablePointer<Float>, dstStride: Int, bias: UnsafePointer<Float>? = nil) {
    let ld = count * cols
    for b in 0..<count {
        let d = dst + b * dstStride
        for r in 0..<rows {
            let s = src + r * ld + b * cols, o = d + r * cols
            if let bias {
                let v = bias[r]
                for i in 0..<cols { o[i] = s[i] + v }
            } else {
                o.update(from: s, count: cols)
            }
        }
    }
}

/// Fills each of `channels` rows of `inner` floats with its bias value
/// (the starting point of a GEMM with beta = 1, which saves OpenBLAS the
/// pass that zeroes C for beta = 0 and us the pass that adds the bias).
func denseFillBias(_ y: UnsafeMutablePointer<Float>, channels: Int, inner: Int, _ bias: UnsafePointer<Float>) {
    for c in 0..<channels { (y + c * inner).update(repeating: bias[c], count: inner) }
}

/// Sum of `n` contiguous floats, eight lanes at a time (the reduction every
/// layer group uses: bias gradients, BatchNorm/MVN means, Reduction).
@inline(__always)
func rowSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>(repeating: 0)
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 8 <= n {
        acc = acc + raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += p[i]; i += 1 }
    return s
}

/// db[c] += sum over n and i of dy[n, c, i] (Convolution, Deconvolution,
/// Scale and Bias gradients).
func denseAccumulateBiasGrad(_ dy: UnsafePointer<Float>, outer: Int, channels: Int, inner: Int,
                             _ db: UnsafeMutablePointer<Float>) {
    var p = dy
    for _ in 0..<outer {
        for c in 0..<channels {
            db[c] += rowSum(p, inner)
            p += inner
        }
    }
}

/// out = sum over the (2r+1) x (2r+1) window centred on each pixel of one
/// (h, w) plane, with zeros outside: the box sum of LRN WITHIN_CHANNEL
/// (Caffe's AVE pooling with pad r and stride 1, before the division).
/// `tmp` holds h*w floats.
func denseBoxSum(_ src: UnsafePointer<Float>, h: Int, w: Int, radius r: Int,
                 _ out: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>) {
    // Horizontal pass.
    for y in 0..<h {
        let s = src + y * w, t = tmp + y * w
        for x in 0..<w {
            let lo = max(0, x - r), hi = min(w - 1, x + r)
            var acc: Float = 0
            for k in lo...hi { acc += s[k] }
            t[x] = acc
        }
    }
    // Vertical pass.
    for y in 0..<h {
        let lo = max(0, y - r), hi = min(h - 1, y + r)
        let o = out + y * w
        for x in 0..<w { o[x] = 0 }
        for k in lo...hi {
            let t = tmp + k * w
            for x in 0..<w { o[x] += t[x] }
        }
    }
}

/// p^(-beta) over `count` floats, with fast paths for CaffeNet's 0.75 and
/// the other common exponents.
func denseNegativePower(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, beta: Float) {
    if beta == 0.75 {
        for i in 0..<count {
            let s = src[i].squareRoot()
            dst[i] = 1 / (s * s.squareRoot())
        }
    } else if beta == 0.5 {
        for i in 0..<count { dst[i] = 1 / src[i].squareRoot() }
    } else if beta == 1 {
        for i in 0..<count { dst[i] = 1 / src[i] }
    } else {
        for i in 0..<count { dst[i] = densePow(src[i], -beta) }
    }
}

@inline(__always)
func densePow(_ x: Float, _ e: Float) -> Float { powf(x, e) }

// MARK: - Small-batch fully connected forward

@inline(__always)
private func denseLoad8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

/// Dot products of two weight rows (w0, w1) with five input rows over the
/// first `kl` floats (a multiple of 8): (w0·x_r, w1·x_r) for r in 0..<5, as
/// ten partial sums y[r] (w0) and y[5 + r] (w1), added into `out`. Ten
/// vector accumulators; each weight vector is loaded once for five inputs.
@inline(__always)
private func denseDot2x5(_ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>, _ x2: UnsafePointer<Float>,
                         _ x3: UnsafePointer<Float>, _ x4: UnsafePointer<Float>,
                         _ w0: UnsafePointer<Float>, _ w1: UnsafePointer<Float>, _ kl: Int,
                         _ out: UnsafeMutablePointer<Float>) {
    var a0 = SIMD8<Float>(), a1 = a0, a2 = a0, a3 = a0, a4 = a0
    var b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0
    var i = 0
    while i < kl {
        let u = denseLoad8(w0 + i), v = denseLoad8(w1 + i)
        let p0 = denseLoad8(x0 + i), p1 = denseLoad8(x1 + i), p2 = denseLoad8(x2 + i)
        let p3 = denseLoad8(x3 + i), p4 = denseLoad8(x4 + i)
        a0 = a0.addingProduct(u, p0); a1 = a1.addingProduct(u, p1); a2 = a2.addingProduct(u, p2)
        a3 = a3.addingProduct(u, p3); a4 = a4.addingProduct(u, p4)
        b0 = b0.addingProduct(v, p0); b1 = b1.addingProduct(v, p1); b2 = b2.addingProduct(v, p2)
        b3 = b3.addingProduct(v, p3); b4 = b4.addingProduct(v, p4)
        i += 8
    }
    out[0] += a0.sum(); out[1] += a1.sum(); out[2] += a2.sum(); out[3] += a3.sum(); out[4] += a4.sum()
    out[5] += b0.sum(); out[6] += b1.sum(); out[7] += b2.sum(); out[8] += b3.sum(); out[9] += b4.sum()
}

/// y (M x N) += x (M x K) * W^T for W (N x K) row-major, for small M
/// (a batch of a few samples): each weight row is streamed from memory once
/// and dotted with every input row while in cache, split over the threads
/// by weight rows. A thread walks its rows in order, two at a time and each
/// whole, so W arrives as two adjacent sequential streams (the hardware
/// prefetcher keeps up; the inputs, M x K floats, stay in L2). OpenBLAS
/// spends most of such a GEMM packing W.
func denseSmallBatchGemmNT(m: Int, n: Int, k: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
                           y: UnsafeMutablePointer<Float>, threads: Int) {
    let kv = k & ~7
    let parts = min(denseParts(work: n * k, threads: threads), max(1, n / 2))
    denseParallel(parts: parts) { part in
        let rows = denseSlice(n, part, parts)
        let sp = UnsafeMutablePointer<Float>.allocate(capacity: 10)   // this thread's ten sums
        defer { sp.deallocate() }
        var j = rows.lowerBound
        while j < rows.upperBound {
            let pair = j + 1 < rows.upperBound
            let w0 = w + j * k, w1 = pair ? w0 + k : w0
            var r = 0
            while r < m {
                // Up to five input rows; missing ones repeat row r (results dropped).
                let cnt = min(5, m - r)
                let xr = x + r * k
                let x1 = cnt > 1 ? xr + k : xr, x2 = cnt > 2 ? xr + 2 * k : xr
                let x3 = cnt > 3 ? xr + 3 * k : xr, x4 = cnt > 4 ? xr + 4 * k : xr
                sp.update(repeating: 0, count: 10)
                denseDot2x5(xr, x1, x2, x3, x4, w0, w1, kv, sp)
                // The last k - kv floats, one at a time.
                for t in kv..<k {
                    let u = w0[t], v = w1[t]
                    let q0 = xr[t], q1 = x1[t], q2 = x2[t], q3 = x3[t], q4 = x4[t]
                    sp[0] += u * q0; sp[1] += u * q1; sp[2] += u * q2; sp[3] += u * q3; sp[4] += u * q4
                    sp[5] += v * q0; sp[6] += v * q1; sp[7] += v * q2; sp[8] += v * q3; sp[9] += v * q4
                }
                let yr = y + r * n + j
                for t in 0..<cnt { yr[t * n] += sp[t] }
                if pair { for t in 0..<cnt { yr[t * n + 1] += sp[5 + t] } }
                r += cnt
            }
            j += pair ? 2 : 1
        }
    }
}

/// dx (m x k) = dy (m x n) * W (n x k) for a batch of a few rows (the input
/// gradient of an InnerProduct at batch <= 10). Each thread streams its own
/// contiguous slice of W's rows once, eight rows side by side: every eight
/// floats of the eight rows are loaded once into registers and serve all m
/// rows of dy (dy[r, j..<j+8] broadcast), accumulated into the thread's own
/// m x k partial sum; the partials are added at the end. A group whose eight
/// dy entries are all zero for some r (common after a ReLU) skips that r.
/// BLAS packs W for such a GEMM and is about half as fast.
func denseSmallBatchGemmNN(m: Int, n: Int, k: Int, dy: UnsafePointer<Float>, w: UnsafePointer<Float>,
                           dx: UnsafeMutablePointer<Float>, threads: Int) {
    let parts = min(denseParts(work: n * k, threads: threads), max(1, n / 8))
    // Part 0 sums into dx, the others into their own buffers.
    let partials = (1..<max(parts, 1)).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: m * k) }
    defer { for p in partials { p.deallocate() } }
    denseParallel(parts: parts) { part in
        let acc = part == 0 ? dx : partials[part - 1]
        acc.update(repeating: 0, count: m * k)
        let live = UnsafeMutablePointer<Int>.allocate(capacity: m)   // see denseRowsTimesDy8
        defer { live.deallocate() }
        let lo = part == 0 ? 0 : (n * part / parts) & ~7
        let hi = part == parts - 1 ? n : (n * (part + 1) / parts) & ~7
        // Column panels whose m partial rows fit in L2 beside the streamed W.
        let panel = max(64, (49_152 / max(m, 1)) & ~7)
        var c0 = 0
        while c0 < k {
            let c1 = min(k, c0 + panel)
            var j = lo
            while j + 8 <= hi {
                denseRowsTimesDy8(m: m, n: n, k: k, cols: c0..<c1, dy: dy + j, w: w + j * k, acc: acc, live: live)
                j += 8
            }
            c0 = c1
        }
        var j = hi - (hi - lo) % 8
        while j < hi {
            // Leftover rows one at a time.
            let wr = w + j * k
            for r in 0..<m {
                let a = dy[r * n + j]
                if a == 0 { continue }
                let out = acc + r * k
                for t in 0..<k { out[t] += a * wr[t] }
            }
            j += 1
        }
    }
    for p in partials {
        for i in 0..<(m * k) { dx[i] += p[i] }
    }
}

/// acc[r, cols] += sum over q < 8 of dy[r * n + q] * W[q, cols] for the
/// eight rows of W at `w` (row length k), r in 0..<m. `live` is room for m
/// row numbers (the caller's, so this hot function allocates nothing).
@inline(__always)
private func denseRowsTimesDy8(m: Int, n: Int, k: Int, cols: Range<Int>, dy: UnsafePointer<Float>,
                               w: UnsafePointer<Float>, acc: UnsafeMutablePointer<Float>,
                               live liveRows: UnsafeMutablePointer<Int>) {
    // The r with a non-zero coefficient among the eight.
    var count = 0
    for r in 0..<m {
        let d = dy + r * n
        if d[0] != 0 || d[1] != 0 || d[2] != 0 || d[3] != 0 || d[4] != 0 || d[5] != 0 || d[6] != 0 || d[7] != 0 {
            liveRows[count] = r
            count += 1
        }
    }
    if count == 0 { return }
    let live = UnsafeBufferPointer(start: liveRows, count: count)
    let kv = cols.lowerBound + (cols.count & ~7)
    let raw = UnsafeRawPointer(w), rowBytes = 4 * k
    // Blocks of 256 columns: the eight rows' pieces (8 KB) stay in L1 while
    // each live r adds its eight broadcast coefficients times them.
    var b0 = cols.lowerBound
    while b0 < kv {
        let b1 = min(kv, b0 + 256)
        for r in live {
            let d = dy + r * n
            let a0 = SIMD8<Float>(repeating: d[0]), a1 = SIMD8<Float>(repeating: d[1])
            let a2 = SIMD8<Float>(repeating: d[2]), a3 = SIMD8<Float>(repeating: d[3])
            let a4 = SIMD8<Float>(repeating: d[4]), a5 = SIMD8<Float>(repeating: d[5])
            let a6 = SIMD8<Float>(repeating: d[6]), a7 = SIMD8<Float>(repeating: d[7])
            let o = UnsafeMutableRawPointer(acc + r * k)
            var c = b0
            while c < b1 {
                let off = 4 * c
                var v = o.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                v = v.addingProduct(a0, raw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self))
                v = v.addingProduct(a1, raw.loadUnaligned(fromByteOffset: off + rowBytes, as: SIMD8<Float>.self))
                v = v.addingProduct(a2, raw.loadUnaligned(fromByteOffset: off + 2 * rowBytes, as: SIMD8<Float>.self))
                v = v.addingProduct(a3, raw.loadUnaligned(fromByteOffset: off + 3 * rowBytes, as: SIMD8<Float>.self))
                v = v.addingProduct(a4, raw.loadUnaligned(fromByteOffset: off + 4 * rowBytes, as: SIMD8<Float>.self))
                v = v.addingProduct(a5, raw.loadUnaligned(fromByteOffset: off + 5 * rowBytes, as: SIMD8<Float>.self))
                v = v.addingProduct(a6, raw.loadUnaligned(fromByteOffset: off + 6 * rowBytes, as: SIMD8<Float>.self))
                v = v.addingProduct(a7, raw.loadUnaligned(fromByteOffset: off + 7 * rowBytes, as: SIMD8<Float>.self))
                o.storeBytes(of: v, toByteOffset: off, as: SIMD8<Float>.self)
                c += 8
            }
        }
        b0 = b1
    }
    if kv < cols.upperBound {
        for r in live {
            let d = dy + r * n, out = acc + r * k
            for t in kv..<cols.upperBound {
                var s = out[t]
                for q in 0..<8 { s += d[q] * w[q * k + t] }
                out[t] = s
            }
        }
    }
}
