import Foundation

/// The diversity term of the sampler: its value for one walker and its
/// gradient with respect to that walker's embedding e_i, from one formula.
///
/// Both forms are written as one walker's share J_i of the objective, chosen
/// so that dJ_i/de_i equals dJ/de_i of the whole objective (each walker moves
/// by its own gradient; the shares of the others do not depend on e_i except
/// through pair terms, which are counted in both shares).
public enum Diversity: Sendable, Equatable {
    /// The paper's eq. 5/6 (DESIGN.md section 4), to be minimised:
    ///
    ///     J = -(1/(K^2 s)) sum_{i,j in W} ||e_i - e_j||^2 - (1/(K |P| s)) sum_{i in W, y in P} ||e_i - e_y||^2
    ///
    /// with s a fixed scale (the mean ||e||^2 of the first walkers). Walker
    /// i's share is J_i = -(2/(K^2 s)) sum_j ||e_i - e_j||^2 - (1/(K |P| s)) sum_y ||e_i - e_y||^2,
    /// whose gradient -(4/(K^2 s)) sum_j (e_i - e_j) - (2/(K |P| s)) sum_y (e_i - e_y)
    /// points away from the walkers' and the accepted set's means, so it
    /// grows without bound as embeddings leave the data.
    case squaredDistances(scale: Float)
    /// A bounded repulsion, to be minimised: with kappa(u, v) = exp(-||u - v||^2 / (2 h^2)),
    ///
    ///     J_i = sum_{j in W, j != i} kappa(e_i, e_j) + sum_{y in P} kappa(e_i, e_y)
    ///
    /// whose gradient -sum kappa(e_i, v) (e_i - v) / h^2 pushes e_i away from
    /// its near neighbours only: a sample far from all others feels nothing,
    /// so the term spaces the samples out without pushing them off the data.
    case kernel(bandwidth: Float)

    /// J_i and dJ_i/de_i for walker `i`. `walkers` holds the K current
    /// embeddings (row i is e_i; rows with `live[j] == false` are ignored),
    /// `accepted` the accepted set P (only its rows are read; for
    /// `squaredDistances` its mean and spread suffice, see `AcceptedSet`).
    public func term(_ i: Int, walkers: PointSet, live: [Bool], accepted: AcceptedSet) -> (value: Float, gradient: [Float]) {
        let dim = walkers.dim
        var grad = [Float](repeating: 0, count: dim)
        var value: Float = 0
        let ei = walkers.row(i)
        let k = Float(live.filter { $0 }.count)
        switch self {
        case .squaredDistances(let s):
            for j in 0..<walkers.count where live[j] && j != i {
                let ej = walkers.row(j)
                var sq: Float = 0
                for t in 0..<dim {
                    let d = ei[ei.startIndex + t] - ej[ej.startIndex + t]
                    sq += d * d
                    grad[t] -= 4 / (k * k * s) * d
                }
                value -= 2 / (k * k * s) * sq
            }
            if accepted.count > 0 {
                // sum_y ||e_i - e_y||^2 = |P| ||e_i - mean_P||^2 + sum_y ||e_y - mean_P||^2
                let p = Float(accepted.count)
                var sq: Float = 0
                for t in 0..<dim {
                    let d = ei[ei.startIndex + t] - accepted.mean[t]
                    sq += d * d
                    grad[t] -= 2 / (k * s) * d
                }
                value -= (p * sq + accepted.spread) / (k * p * s)
            }
        case .kernel(let h):
            let inv = 1 / (2 * h * h)
            func add(_ v: ArraySlice<Float>) {
                var sq: Float = 0
                for t in 0..<dim { let d = ei[ei.startIndex + t] - v[v.startIndex + t]; sq += d * d }
                let kv = exp(-sq * inv)
                guard kv > 1e-12 else { return }
                value += kv
                for t in 0..<dim { grad[t] -= kv * (ei[ei.startIndex + t] - v[v.startIndex + t]) / (h * h) }
            }
            for j in 0..<walkers.count where live[j] && j != i { add(walkers.row(j)) }
            for y in 0..<accepted.count { add(accepted.points.row(y)) }
        }
        return (value, grad)
    }
}

/// The accepted set P in embedding space, with the running sums the
/// squared-distance objective needs (its mean and sum_y ||e_y - mean||^2).
public struct AcceptedSet: Sendable {
    public private(set) var points: PointSet
    public private(set) var mean: [Float]
    /// sum_y ||e_y - mean||^2.
    public private(set) var spread: Float
    private var sum: [Double]
    private var sumSquares: Double

    public var count: Int { points.count }

    public init(dim: Int, rows: [[Float]] = []) {
        points = PointSet(flat: [], dim: dim)
        mean = Array(repeating: 0, count: dim)
        spread = 0
        sum = Array(repeating: 0, count: dim)
        sumSquares = 0
        append(rows)
    }

    public mutating func append(_ rows: [[Float]]) {
        guard !rows.isEmpty else { return }
        points = PointSet(flat: points.values + rows.flatMap { $0 }, dim: points.dim)
        for r in rows {
            for t in 0..<points.dim { sum[t] += Double(r[t]); sumSquares += Double(r[t]) * Double(r[t]) }
        }
        let n = Double(points.count)
        var meanSq = 0.0
        for t in 0..<points.dim { let m = sum[t] / n; mean[t] = Float(m); meanSq += m * m }
        spread = Float(max(0, sumSquares - n * meanSq))
    }

    /// Distance from `e` to the nearest accepted point (infinity when P is empty).
    public func nearestDistance(_ e: ArraySlice<Float>) -> Float {
        var best = Float.infinity
        for y in 0..<points.count {
            let v = points.row(y)
            var sq: Float = 0
            for t in 0..<points.dim { let d = e[e.startIndex + t] - v[v.startIndex + t]; sq += d * d }
            best = min(best, sq)
        }
        return best.squareRoot()
    }
}

/// The augmented Lagrangian of Nocedal & Wright (17.4) for inequality
/// constraints g >= 0: each adds psi(g, lambda, rho) to the objective, and
/// every few steps lambda <- max(0, lambda - rho g), with rho doubled when
/// the violation did not shrink to a quarter.
public struct Multiplier: Sendable, Codable, Equatable {
    public var lambda: Float = 0
    public var rho: Float = 10
    public var lastViolation: Float = .infinity

    public init() {}

    /// psi(g, lambda, rho) = -lambda g + rho g^2 / 2 if g <= lambda / rho,
    /// else -lambda^2 / (2 rho); and d psi / d g.
    @inline(__always) public func psi(_ g: Float) -> (value: Float, derivative: Float) {
        if g <= lambda / rho { return (-lambda * g + rho * g * g / 2, -lambda + rho * g) }
        return (-lambda * lambda / (2 * rho), 0)
    }

    /// The multiplier update after inner steps at constraint value g.
    public mutating func update(_ g: Float) {
        lambda = max(0, lambda - rho * g)
        let violation = max(0, -g)
        if violation > 0.25 * lastViolation { rho = min(rho * 2, 1e5) }
        lastViolation = violation
    }
}

/// Band constraints of one walker and neuron, normalised by the band's
/// width w: g_lo = (a - z1) / w >= 0 and g_hi = (z2 - a) / w >= 0.
public struct BandConstraint: Sendable, Codable, Equatable {
    public var low = Multiplier()
    public var high = Multiplier()

    public init() {}

    /// psi_lo + psi_hi at activation `a`, and its derivative in a.
    public func penalty(_ a: Float, band b: Band) -> (value: Float, derivative: Float) {
        let w = b.high - b.low
        let (p1, d1) = low.psi((a - b.low) / w)
        let (p2, d2) = high.psi((b.high - a) / w)
        return (p1 + p2, (d1 - d2) / w)
    }

    public mutating func update(_ a: Float, band b: Band) {
        let w = b.high - b.low
        low.update((a - b.low) / w)
        high.update((b.high - a) / w)
    }

    /// Distance of `a` outside the band in band widths (0 inside).
    public static func violation(_ a: Float, _ b: Band) -> Float {
        (a < b.low ? b.low - a : (a > b.high ? a - b.high : 0)) / (b.high - b.low)
    }
}
