import Testing
import Runtime

/// The GEMM wrapper against a plain triple loop in double: every transpose
/// combination, leading dimensions wider than the matrices, alpha and beta,
/// and shapes large enough to be split between threads along N (M <= N) and
/// along M (M > N), plus ragged splits and a product too small to split.
struct GEMMTests {
    struct Case: CustomStringConvertible, Sendable {
        let m: Int, n: Int, k: Int
        var description: String { "\(m)x\(n)x\(k)" }
    }

    static let cases: [Case] = [
        Case(m: 37, n: 301, k: 200),    // split along N, N not a multiple of 16
        Case(m: 303, n: 41, k: 190),    // split along M, M not a multiple of 4
        Case(m: 96, n: 3025, k: 11),    // wide and shallow
        Case(m: 5, n: 7, k: 3),         // one thread
    ]

    /// On 1 thread (never split) and on 3 (split into ragged slabs whatever
    /// the machine's cores).
    @Test("gemm matches a naive product", arguments: cases, [1, 3])
    func matchesNaive(_ c: Case, threads: Int) {
        var rng = SplitMix64(seed: UInt64(c.m * 7 + c.n))
        for transA in [false, true] {
            for transB in [false, true] {
                // op(A) is m x k, op(B) is k x n; stored with 3 spare columns.
                let (ar, ac) = transA ? (c.k, c.m) : (c.m, c.k)
                let (br, bc) = transB ? (c.n, c.k) : (c.k, c.n)
                let lda = ac + 3, ldb = bc + 3, ldc = c.n + 3
                let a = (0..<(ar * lda)).map { _ in rng.uniform() - 0.5 }
                let b = (0..<(br * ldb)).map { _ in rng.uniform() - 0.5 }
                var cm = (0..<(c.m * ldc)).map { _ in rng.uniform() - 0.5 }
                let c0 = cm
                let alpha: Float = 0.75, beta: Float = -0.5
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { bp in
                        cm.withUnsafeMutableBufferPointer { cp in
                            gemm(transA: transA, transB: transB, m: c.m, n: c.n, k: c.k, alpha: alpha,
                                 a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                 beta: beta, c: cp.baseAddress!, ldc: ldc, threads: threads)
                        }
                    }
                }
                var worst = 0.0
                for i in 0..<c.m {
                    for j in 0..<ldc {
                        guard j < c.n else {
                            // The spare columns of C are not touched.
                            #expect(cm[i * ldc + j] == c0[i * ldc + j])
                            continue
                        }
                        var s = 0.0
                        for p in 0..<c.k {
                            let av = transA ? a[p * lda + i] : a[i * lda + p]
                            let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                            s += Double(av) * Double(bv)
                        }
                        let want = Double(alpha) * s + Double(beta) * Double(c0[i * ldc + j])
                        worst = max(worst, abs(Double(cm[i * ldc + j]) - want))
                    }
                }
                #expect(worst <= 1e-4, "\(c) transA \(transA) transB \(transB) threads \(threads): max error \(worst)")
            }
        }
    }
}
