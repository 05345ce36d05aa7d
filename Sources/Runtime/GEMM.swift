import CBLAS

/// The one matrix-multiply entry point: C = alpha * op(A) * op(B) + beta * C,
/// row-major, op(A) is M x K, op(B) is K x N, C is M x N. Every convolution,
/// deconvolution and inner product goes through here (OpenBLAS sgemm).
@inline(__always)
public func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                 alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
                 b: UnsafePointer<Float>, ldb: Int? = nil,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        // BLAS leaves C alone when K == 0 only for beta == 1; be explicit.
        scale(c, count: m * n, by: beta)
        return
    }
    cblas_sgemm(CblasRowMajor,
                transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda ?? (transA ? m : k)),
                b, Int32(ldb ?? (transB ? k : n)),
                beta, c, Int32(ldc ?? n))
}

/// y = alpha * op(A) x + beta * y with A row-major M x N.
@inline(__always)
public func gemv(transA: Bool = false, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>,
                 x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
    guard m > 0, n > 0 else { return }
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

/// The BLAS thread count (OpenBLAS keeps this process-wide; the CLI sets it
/// once from --threads).
public func setBLASThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
public func blasThreads() -> Int { Int(openblas_get_num_threads()) }
