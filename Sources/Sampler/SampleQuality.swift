import Foundation
import Runtime

/// n points of one dimension, stored row after row (embeddings E(x) of
/// samples or of real images).
public struct PointSet: Sendable {
    public let count: Int
    public let dim: Int
    public let values: [Float]

    public init(flat values: [Float], dim: Int) {
        precondition(dim > 0 && values.count % dim == 0, "PointSet: \(values.count) values are not rows of \(dim)")
        self.values = values; self.dim = dim; self.count = values.count / dim
    }

    /// Rows of equal length (an empty list is an empty set of dimension `dim`).
    public init(rows: [[Float]], dim: Int? = nil) {
        let d = rows.first?.count ?? dim ?? 1
        self.init(flat: rows.flatMap { $0 }, dim: max(d, 1))
    }

    public func row(_ i: Int) -> ArraySlice<Float> { values[(i * dim)..<((i + 1) * dim)] }
    public var rows: [[Float]] { (0..<count).map { Array(row($0)) } }

    /// The rows at `indices`, in that order.
    public func subset(_ indices: [Int]) -> PointSet {
        PointSet(flat: indices.flatMap { row($0) }, dim: dim)
    }

    /// Euclidean distances between every row of `self` and every row of
    /// `other`, self.count x other.count, in double precision (the sets the
    /// metrics compare hold hundreds to a few thousand points).
    public func distances(to other: PointSet) -> [Double] {
        precondition(dim == other.dim, "PointSet: dimensions \(dim) and \(other.dim) differ")
        var out = [Double](repeating: 0, count: count * other.count)
        values.withUnsafeBufferPointer { a in
            other.values.withUnsafeBufferPointer { b in
                for i in 0..<count {
                    let pa = a.baseAddress! + i * dim
                    for j in 0..<other.count {
                        let pb = b.baseAddress! + j * dim
                        var s = 0.0
                        for t in 0..<dim { let d = Double(pa[t]) - Double(pb[t]); s += d * d }
                        out[i * other.count + j] = s.squareRoot()
                    }
                }
            }
        }
        return out
    }

    /// Per point, the distance to its k-th nearest other point of the same
    /// set (k = 1: the nearest neighbour). Infinity when the set has k points
    /// or fewer.
    ///
    /// Candidates come from GEMM distances (||a||^2 + ||b||^2 - 2 a.b) in
    /// blocks of rows, so a real set of 10,000 points needs no 10,000^2
    /// matrix; the k + 4 nearest candidates are then measured exactly in
    /// double precision, which gives the same radii as the all-pairs loop.
    /// The GEMMs run on `threads` compute threads.
    public func neighbourRadii(k: Int, threads: Int) -> [Double] {
        guard count > k else { return Array(repeating: .infinity, count: count) }
        let norms = (0..<count).map { j in row(j).reduce(Float(0)) { $0 + $1 * $1 } }
        var out = [Double](repeating: .infinity, count: count)
        nearestOthers(norms: norms, keep: min(k + 4, count - 1), threads: threads) { i, candidates in
            let x = row(i)
            var exact = candidates.map { _, j -> Double in
                let y = row(j)
                var s = 0.0
                for t in 0..<dim { let d = Double(x[x.startIndex + t]) - Double(y[y.startIndex + t]); s += d * d }
                return s.squareRoot()
            }
            exact.sort()
            out[i] = exact[k - 1]
        }
        return out
    }

    /// For each row i, its `keep` nearest other rows by GEMM squared distances
    /// (max(0, ||a||^2 + ||b||^2 - 2 a.b), float32), in blocks of 256 rows so
    /// that no count x count matrix is held: `body(i, [(distance^2, j)])`,
    /// nearest first. `norms` are the rows' squared norms; the GEMMs run on
    /// `threads` compute threads.
    public func nearestOthers(norms: [Float], keep: Int, threads: Int, _ body: (Int, [(Float, Int)]) -> Void) {
        guard keep > 0 else { return }
        let block = 256
        var dots = [Float](repeating: 0, count: block * count)
        var candidates: [(Float, Int)] = []
        candidates.reserveCapacity(keep + 1)
        values.withUnsafeBufferPointer { a in
            for start in stride(from: 0, to: count, by: block) {
                let m = Swift.min(block, count - start)
                dots.withUnsafeMutableBufferPointer { c in
                    gemm(transB: true, m: m, n: count, k: dim, a: a.baseAddress! + start * dim, b: a.baseAddress!, c: c.baseAddress!,
                         threads: threads)
                }
                for r in 0..<m {
                    let i = start + r
                    candidates.removeAll(keepingCapacity: true)
                    var worst = Float.infinity
                    for j in 0..<count where j != i {
                        let d = Swift.max(0, norms[i] + norms[j] - 2 * dots[r * count + j])
                        if candidates.count < keep || d < worst {
                            var at = candidates.count
                            while at > 0 && candidates[at - 1].0 > d { at -= 1 }
                            candidates.insert((d, j), at: at)
                            if candidates.count > keep { candidates.removeLast() }
                            worst = candidates.count == keep ? candidates[keep - 1].0 : .infinity
                        }
                    }
                    body(i, candidates)
                }
            }
        }
    }

    /// For each row, the nearest row of `other` and its distance, by GEMM
    /// (||a||^2 + ||b||^2 - 2 a.b) in blocks: `other` may hold tens of
    /// thousands of points. The GEMMs run on `threads` compute threads.
    public func nearest(in other: PointSet, threads: Int) -> [(Int, Double)] {
        precondition(dim == other.dim, "PointSet: dimensions \(dim) and \(other.dim) differ")
        guard other.count > 0 else { return Array(repeating: (-1, .infinity), count: count) }
        let no = other.count
        let otherNorms = (0..<no).map { j in other.row(j).reduce(Float(0)) { $0 + $1 * $1 } }
        var out: [(Int, Double)] = []
        out.reserveCapacity(count)
        let block = 256
        var dots = [Float](repeating: 0, count: block * no)
        values.withUnsafeBufferPointer { a in
            other.values.withUnsafeBufferPointer { b in
                for start in stride(from: 0, to: count, by: block) {
                    let m = min(block, count - start)
                    dots.withUnsafeMutableBufferPointer { c in
                        gemm(transB: true, m: m, n: no, k: dim, a: a.baseAddress! + start * dim, b: b.baseAddress!, c: c.baseAddress!,
                             threads: threads)
                    }
                    for r in 0..<m {
                        let ni = row(start + r).reduce(Float(0)) { $0 + $1 * $1 }
                        var best = Float.infinity, bestJ = 0
                        for j in 0..<no {
                            let d = ni + otherNorms[j] - 2 * dots[r * no + j]
                            if d < best { best = d; bestJ = j }
                        }
                        // The exact distance of the winner, in double precision.
                        var s = 0.0
                        let x = row(start + r), y = other.row(bestJ)
                        for t in 0..<dim { let d = Double(x[x.startIndex + t]) - Double(y[y.startIndex + t]); s += d * d }
                        out.append((bestJ, s.squareRoot()))
                    }
                }
            }
        }
        return out
    }

    public var meanNorm: Double {
        guard count > 0 else { return 0 }
        var total = 0.0
        for i in 0..<count { total += row(i).reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        return total / Double(count)
    }
}

/// How well a set of samples shows the real inverse set: the dataset images
/// whose activations fall in the band, embedded by the same E.
///
/// With X = the real points, Y = the samples, k = 3, r_k(p) = the distance from
/// p to its k-th nearest neighbour within its own set, and B(p, r) a ball:
///
/// - precision (Kynkaanniemi et al. 2019): the fraction of Y inside some
///   B(x, r_k(x)); recall: the fraction of X inside some B(y, r_k(y)).
/// - capped precision / recall: the same with each set's radii capped at
///   that set's 95th-percentile radius, so that a few isolated real points
///   with huge balls cannot vouch for samples far off the data.
/// - density and coverage (Naeem et al. 2020): density =
///   (1 / (k |Y|)) sum_y #{x : y in B(x, r_k(x))} (about 1 when Y is
///   distributed like X), coverage = the fraction of X whose ball holds at
///   least one y.
/// - d = the median nearest-neighbour distance within X; near-duplicates =
///   the fraction of Y whose nearest other sample is closer than 0.25 d;
///   distinct = a greedy count of samples (in order) pairwise farther apart
///   than 0.5 d.
/// - norm ratio = mean ||y|| / mean ||x||: above 1 when samples are pushed
///   off the data, which the paper's mean pairwise distance rewards.
/// - thirds: per neuron, the fraction of samples in each third of its band.
public struct SampleQuality: Codable, Sendable, Equatable {
    public var realCount: Int
    public var sampleCount: Int
    public var k: Int
    /// Median nearest-neighbour distance within the real set (nil with < 2 real points).
    public var d: Double?
    public var precision: Double?
    public var recall: Double?
    public var cappedPrecision: Double?
    public var cappedRecall: Double?
    public var density: Double?
    public var coverage: Double?
    public var nearDuplicates: Double?
    public var distinct: Int?
    public var distinctFraction: Double?
    public var normRatio: Double?
    /// thirds[neuron] = fractions of the samples in the lower, middle and upper third of its band.
    public var thirds: [[Double]]
    /// Fraction of samples inside every band.
    public var inBand: Double?

    enum CodingKeys: String, CodingKey {
        case realCount = "real_count", sampleCount = "sample_count", k, d, precision, recall
        case cappedPrecision = "capped_precision", cappedRecall = "capped_recall", density, coverage
        case nearDuplicates = "near_duplicates", distinct, distinctFraction = "distinct_fraction"
        case normRatio = "norm_ratio", thirds, inBand = "in_band"
    }

    /// The figures of `samples` against `real`. `activations[i]` are sample
    /// i's activations of the constrained neurons and `bands` their bands
    /// (both may be empty: no thirds, no in-band fraction). The neighbour
    /// searches run on `threads` compute threads.
    public init(samples: PointSet, real: PointSet, activations: [[Float]] = [], bands: [Band] = [], k: Int = 3,
                threads: Int) {
        self.k = k
        realCount = real.count
        sampleCount = samples.count
        thirds = Self.thirds(activations, bands)
        inBand = activations.isEmpty || bands.isEmpty ? nil : Metrics.fractionInBand(activations, bands: bands)
        if samples.count > 1 {
            let nn = samples.neighbourRadii(k: 1, threads: threads)
            if real.count > 1 {
                let dReal = Self.median(real.neighbourRadii(k: 1, threads: threads))
                d = dReal
                nearDuplicates = Double(nn.filter { $0 < 0.25 * dReal }.count) / Double(samples.count)
                let kept = Self.greedyDistinct(samples, minimum: 0.5 * dReal)
                distinct = kept
                distinctFraction = Double(kept) / Double(samples.count)
            }
        }
        if real.count > 0 && samples.count > 0 {
            let realNorm = real.meanNorm
            normRatio = realNorm > 0 ? samples.meanNorm / realNorm : nil
        }
        guard real.count > k, samples.count > k else { return }
        let realRadii = real.neighbourRadii(k: k, threads: threads), sampleRadii = samples.neighbourRadii(k: k, threads: threads)
        let cross = samples.distances(to: real)   // samples.count x real.count
        let nr = real.count, ns = samples.count
        func precisionLike(_ radii: [Double]) -> Double {
            var inside = 0
            for i in 0..<ns where (0..<nr).contains(where: { cross[i * nr + $0] <= radii[$0] }) { inside += 1 }
            return Double(inside) / Double(ns)
        }
        func recallLike(_ radii: [Double]) -> Double {
            var inside = 0
            for j in 0..<nr where (0..<ns).contains(where: { cross[$0 * nr + j] <= radii[$0] }) { inside += 1 }
            return Double(inside) / Double(nr)
        }
        precision = precisionLike(realRadii)
        recall = recallLike(sampleRadii)
        cappedPrecision = precisionLike(Self.capped(realRadii, at: 0.95))
        cappedRecall = recallLike(Self.capped(sampleRadii, at: 0.95))
        var hits = 0, covered = [Bool](repeating: false, count: nr)
        for i in 0..<ns {
            for j in 0..<nr where cross[i * nr + j] <= realRadii[j] { hits += 1; covered[j] = true }
        }
        density = Double(hits) / Double(k * ns)
        coverage = Double(covered.filter { $0 }.count) / Double(nr)
    }

    /// Samples kept greedily, in order, while farther than `minimum` from every kept one.
    public static func greedyDistinct(_ s: PointSet, minimum: Double) -> Int {
        let dist = s.distances(to: s)
        var kept: [Int] = []
        for i in 0..<s.count where kept.allSatisfy({ dist[i * s.count + $0] > minimum }) { kept.append(i) }
        return kept.count
    }

    public static func median(_ v: [Double]) -> Double {
        let s = v.filter(\.isFinite).sorted()
        guard !s.isEmpty else { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Value at quantile q (0...1) by linear interpolation of the sorted finite values.
    public static func quantile(_ v: [Double], _ q: Double) -> Double {
        let s = v.filter(\.isFinite).sorted()
        guard !s.isEmpty else { return .nan }
        let pos = q * Double(s.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - Double(lo))
    }

    static func capped(_ radii: [Double], at q: Double) -> [Double] {
        let cap = quantile(radii, q)
        return radii.map { min($0, cap) }
    }

    static func thirds(_ activations: [[Float]], _ bands: [Band]) -> [[Double]] {
        guard !activations.isEmpty else { return [] }
        return bands.enumerated().map { q, b in
            var counts = [0, 0, 0]
            let w = b.high - b.low
            for a in activations where q < a.count && b.contains(a[q]) {
                counts[min(2, Int((a[q] - b.low) / w * 3))] += 1
            }
            return counts.map { Double($0) / Double(activations.count) }
        }
    }
}
