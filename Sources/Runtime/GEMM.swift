import CBLAS
import Dispatch

/// The one matrix-multiply entry point: C = alpha * op(A) * op(B) + beta * C,
/// row-major, op(A) is M x K, op(B) is K x N, C is M x N. Every convolution,
/// deconvolution and inner product goes through here (OpenBLAS sgemm).
///
/// Threads: OpenBLAS runs single-threaded and a large product is split here
/// into up to `threads` slabs of C (along N when M <= N, else along M),
/// one single-threaded sgemm each, on the same Dispatch pool as every other
/// parallel kernel. With OpenBLAS's own threads, its idle workers keep
/// spinning after each GEMM (about 0.1 s) and compete for the cores with the
/// element-wise kernels that run between GEMMs; one pool avoids that.
/// `threads` is the caller's compute thread count (`ExecutionContext.threads`
/// inside a layer).
@inline(__always)
public func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                 alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
                 b: UnsafePointer<Float>, ldb: Int? = nil,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil, threads: Int) {
    let parts = gemmParts(m: m, n: n, k: k, threads: threads)
    guard parts > 1 else {
        gemmSerial(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                   b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let lda = lda ?? (transA ? m : k), ldb = ldb ?? (transB ? k : n), ldc = ldc ?? n
    if m <= n {
        // Slabs of columns: each part packs all of A (the smaller operand).
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = gemmSplit(n, p, parts, align: 16), hi = gemmSplit(n, p + 1, parts, align: 16)
            guard hi > lo else { return }
            let bp = transB ? b + lo * ldb : b + lo
            sgemm(transA, transB, m, hi - lo, k, alpha, a, lda, bp, ldb, beta, c + lo, ldc)
        }
    } else {
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = gemmSplit(m, p, parts, align: 4), hi = gemmSplit(m, p + 1, parts, align: 4)
            guard hi > lo else { return }
            let ap = transA ? a + lo : a + lo * lda
            sgemm(transA, transB, hi - lo, n, k, alpha, ap, lda, b, ldb, beta, c + lo * ldc, ldc)
        }
    }
}

/// `gemm` on the calling thread only, never split: for callers that run
/// several independent products on the compute threads themselves.
@inline(__always)
public func gemmSerial(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                       alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
                       b: UnsafePointer<Float>, ldb: Int? = nil,
                       beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
    guard m > 0, n > 0 else { return }
    let lda = lda ?? (transA ? m : k), ldb = ldb ?? (transB ? k : n), ldc = ldc ?? n
    if k == 0 {
        // BLAS leaves C alone when K == 0 only for beta == 1; be explicit.
        for r in 0..<m { scale(c + r * ldc, count: n, by: beta) }
        return
    }
    sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

@inline(__always)
private func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                   _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                   _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    _ = defaultComputeThreads   // its first read keeps OpenBLAS single-threaded from then on
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// How many slabs a product is split into: one below about 4 MFLOP (the
/// wake-up of a second thread costs more than it saves), and never so many
/// that a slab is narrower than 32 columns or rows.
@inline(__always)
func gemmParts(m: Int, n: Int, k: Int, threads: Int) -> Int {
    guard threads > 1, m * n * k >= (1 << 21) else { return 1 }
    return max(1, min(threads, max(m, n) / 32))
}

/// Boundary p of `parts` near-equal slabs of 0..<n, rounded to `align`.
@inline(__always)
func gemmSplit(_ n: Int, _ p: Int, _ parts: Int, align: Int) -> Int {
    if p >= parts { return n }
    return min(n, (n * p / parts + align / 2) / align * align)
}

/// y = alpha * op(A) x + beta * y with A row-major M x N.
@inline(__always)
public func gemv(transA: Bool = false, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>,
                 x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
    guard m > 0, n > 0 else { return }
    _ = defaultComputeThreads   // OpenBLAS single-threaded, as in `sgemm`
    cblas_sgemv(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha,
                a, Int32(n), x, 1, beta, y, 1)
}

/// x *= s over `count` floats (s == 0 writes zeros, even over NaN).
@inline(__always)
public func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by s: Float) {
    if s == 0 { x.update(repeating: 0, count: count); return }
    if s == 1 { return }
    for i in 0..<count { x[i] *= s }
}

/// y += alpha * x.
@inline(__always)
public func axpy(_ count: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    for i in 0..<count { y[i] += alpha * x[i] }
}

/// The compute threads when nobody says how many (a `Net` or
/// `ExecutionContext` built without `threads:`): OpenBLAS's own default, all
/// cores or OPENBLAS_NUM_THREADS. Read once; the first read also sets
/// OpenBLAS itself to one thread for good, since `gemm` does the splitting
/// (every BLAS call here reads it first). A constant: the thread count in
/// use travels with the work (`ExecutionContext.threads`, the `threads:`
/// arguments), never through a process-wide setting.
public let defaultComputeThreads: Int = {
    let n = Int(openblas_get_num_threads())
    openblas_set_num_threads(1)
    return max(1, n)
}()

/// C = A B (row-major, M x K times K x N) in one sgemm call on OpenBLAS's
/// own thread pool at `threads` threads: the reference `bench`
/// measures the machine's SGEMM rate with. OpenBLAS returns to one thread.
public func openBLASThreadedGemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                 c: UnsafeMutablePointer<Float>, threads: Int) {
    _ = defaultComputeThreads   // first, or its first read would undo the next line
    openblas_set_num_threads(Int32(max(1, threads)))
    defer { openblas_set_num_threads(1) }
    sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
}
