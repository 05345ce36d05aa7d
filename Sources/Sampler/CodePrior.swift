import Foundation
import Runtime

/// Real codes: G's inputs for real images, c_j = code(x_j) (for the paper's
/// generator, CaffeNet's fc6 of the image), with what the pipeline makes of
/// them: the embeddings E(G(c_j)) and activations a(G(c_j)) of the
/// reconstructions. The sampler starts its walkers from such codes and
/// measures realism against the reconstructions (see `RealismModel`).
///
/// Real fc6 codes are sparse (76% zeros on the shipped Fashion pipeline) and
/// lie on a thin set of the code box; uniform random codes, the paper's
/// start, lie far from it, which is why the paper's samples drift to a few
/// shapes the generator produces for atypical codes.
public struct CodePrior: Sendable {
    public var codes: PointSet
    /// E(x_j) and a(x_j): the real images' own embeddings and activations.
    public var realEmbeddings: PointSet
    public var realActivations: [[Float]]
    /// E(G(c_j)) and a(G(c_j)): the reconstructions' (activations of the
    /// pipeline's current neurons).
    public var embeddings: PointSet
    public var activations: [[Float]]
    /// Dataset index of row j (provenance of the walkers' starts).
    public var sources: [Int]

    public init(codes: PointSet, realEmbeddings: PointSet, realActivations: [[Float]],
                embeddings: PointSet, activations: [[Float]], sources: [Int]) {
        precondition([realEmbeddings.count, realActivations.count, embeddings.count, activations.count, sources.count]
            .allSatisfy { $0 == codes.count }, "CodePrior: rows differ")
        self.codes = codes; self.realEmbeddings = realEmbeddings; self.realActivations = realActivations
        self.embeddings = embeddings; self.activations = activations; self.sources = sources
    }

    /// Rows whose real image lies in `bands`.
    public func realRows(inside bands: [Band]) -> [Int] {
        (0..<count).filter { j in zip(realActivations[j], bands).allSatisfy { $1.contains($0) } }
    }

    public var count: Int { codes.count }

    /// Rows whose activations lie in `bands` (per neuron).
    public func rows(inside bands: [Band]) -> [Int] {
        (0..<count).filter { j in zip(activations[j], bands).allSatisfy { $1.contains($0) } }
    }

    /// The `m` rows closest to `bands` (summed violation in band widths).
    public func rows(nearest bands: [Band], _ m: Int) -> [Int] {
        let v = (0..<count).map { j in zip(activations[j], bands).reduce(Float(0)) { $0 + BandConstraint.violation($1.0, $1.1) } }
        return Array((0..<count).sorted { v[$0] < v[$1] }.prefix(m))
    }
}

/// Realism as a constraint: an embedding e is realistic when it lies in some
/// ball B(r_j, rad_j) around a reconstruction r_j = E(G(c_j)) of a real
/// image, rad_j being r_j's distance to its k-th nearest other
/// reconstruction, capped at the radii's q-quantile (Kynkaanniemi et al.'s
/// precision balls, with the cap so that isolated points do not vouch for
/// everything around them). The constraint value
///
///     g(e) = max_j (rad_j - ||e - r_j||) / h
///
/// is >= 0 inside the union of balls; its gradient in e is
/// -(e - r_j*) / (||e - r_j*|| h) for the maximising j*, pulling the walker
/// back towards the nearest real reconstruction.
public struct RealismModel: Sendable {
    public let reference: PointSet
    public let radii: [Float]
    /// ||r_j||^2, for distances by one GEMM.
    let squaredNorms: [Float]
    /// Compute threads of its GEMMs (the sampler's nets').
    let threads: Int

    public init(reference: PointSet, k: Int = 3, quantile: Double = 0.95, threads: Int) {
        self.reference = reference
        self.threads = threads
        squaredNorms = (0..<reference.count).map { j in reference.row(j).reduce(0) { $0 + $1 * $1 } }
        var r = Self.kthNeighbour(reference, norms: squaredNorms, k: k, threads: threads)
        let cap = Float(SampleQuality.quantile(r.map(Double.init), quantile))
        if cap.isFinite { r = r.map { min($0, cap) } }
        radii = r
    }

    /// (g * h, j*, ||e - r_j*||): the unnormalised constraint value, the
    /// maximising ball and the distance to its centre, for each row of `e`.
    public func evaluate(_ e: PointSet) -> [(slack: Float, ball: Int, distance: Float)] {
        let n = reference.count, dim = reference.dim
        guard n > 0, e.count > 0 else { return Array(repeating: (.infinity, -1, 0), count: e.count) }
        var dots = [Float](repeating: 0, count: e.count * n)
        e.values.withUnsafeBufferPointer { a in
            reference.values.withUnsafeBufferPointer { b in
                dots.withUnsafeMutableBufferPointer { c in
                    gemm(transB: true, m: e.count, n: n, k: dim, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!,
                         threads: threads)
                }
            }
        }
        return (0..<e.count).map { i in
            let ei = e.row(i)
            let ni = ei.reduce(0) { $0 + $1 * $1 }
            var best: Float = -.infinity, bestJ = 0, bestD: Float = 0
            for j in 0..<n {
                let d = max(0, ni + squaredNorms[j] - 2 * dots[i * n + j]).squareRoot()
                let s = radii[j] - d
                if s > best { best = s; bestJ = j; bestD = d }
            }
            return (best, bestJ, bestD)
        }
    }

    /// d slack / d e at `e` for its maximising ball (from `evaluate`):
    /// -(e - r_j*) / ||e - r_j*||.
    public func slackGradient(_ e: ArraySlice<Float>, ball: Int, distance: Float) -> [Float] {
        let r = reference.row(ball), dist = max(distance, 1e-12)
        return (0..<reference.dim).map { t in -(e[e.startIndex + t] - r[r.startIndex + t]) / dist }
    }

    /// Per row, the distance to its k-th nearest other row (float32 GEMM
    /// distances, `PointSet.nearestOthers`: the prior holds thousands of points).
    static func kthNeighbour(_ p: PointSet, norms: [Float], k: Int, threads: Int) -> [Float] {
        guard p.count > k else { return Array(repeating: .infinity, count: p.count) }
        var out = [Float](repeating: 0, count: p.count)
        p.nearestOthers(norms: norms, keep: k, threads: threads) { i, candidates in out[i] = candidates[k - 1].0.squareRoot() }
        return out
    }
}
