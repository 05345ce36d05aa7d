import Foundation
import Runtime
import Sampler
import Testing

/// The sampler's objective terms against central finite differences: a sign
/// flip or a wrong factor in any gradient fails here.
struct ObjectiveTests {
    func points(_ n: Int, dim: Int, seed: UInt64, scale: Float = 1) -> [[Float]] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in (0..<dim).map { _ in scale * rng.gaussian() } }
    }

    /// Checks `d`'s gradient for each walker of `w` (all live, `pRows`
    /// accepted) against central differences of `J` in that walker's
    /// coordinates (step 1e-2, tolerance 1e-3 relative); returns the gradients.
    @discardableResult
    func expectTermGradients(_ d: Diversity, walkers w: [[Float]], accepted pRows: [[Float]],
                             _ J: ([[Float]]) -> Double) -> [[Float]] {
        let set = PointSet(rows: w), acc = AcceptedSet(dim: w[0].count, rows: pRows)
        let live = [Bool](repeating: true, count: w.count)
        return (0..<w.count).map { i in
            let g = d.term(i, walkers: set, live: live, accepted: acc).gradient
            for t in 0..<w[i].count {
                var plus = w, minus = w
                plus[i][t] += 1e-2; minus[i][t] -= 1e-2
                let numeric = Float((J(plus) - J(minus)) / 2e-2)
                #expect(abs(g[t] - numeric) <= 1e-3 * max(1, abs(numeric)), "walker \(i) dim \(t): \(g[t]) vs \(numeric)")
            }
            return g
        }
    }

    @Test func squaredDistancesGradientIsTheObjectivesGradient() {
        // J of eq. 6 written out directly, differentiated numerically in e_i.
        let w = points(4, dim: 3, seed: 3), pRows = points(6, dim: 3, seed: 4)
        let s: Float = 2.5, k = Float(w.count), np = Float(pRows.count)
        func J(_ w: [[Float]]) -> Double {
            var total = 0.0
            func sq(_ a: [Float], _ b: [Float]) -> Double {
                var t: Double = 0
                for (x, y) in zip(a, b) { t += Double(x - y) * Double(x - y) }
                return t
            }
            for a in w { for b in w { total -= sq(a, b) / Double(k * k * s) } }
            for a in w { for y in pRows { total -= sq(a, y) / Double(k * np * s) } }
            return total
        }
        let d = Diversity.squaredDistances(scale: s)
        expectTermGradients(d, walkers: w, accepted: pRows, J)
    }

    @Test func kernelGradientIsTheObjectivesGradient() {
        // J = sum_{i<j in W} kappa(e_i, e_j) + sum_{i in W, y in P} kappa(e_i, e_y).
        let w = points(4, dim: 3, seed: 5, scale: 0.8), pRows = points(6, dim: 3, seed: 6, scale: 0.8)
        let h: Float = 0.9
        func kappa(_ a: [Float], _ b: [Float]) -> Double {
            var sq: Double = 0
            for (x, y) in zip(a, b) { sq += Double(x - y) * Double(x - y) }
            return exp(-sq / Double(2 * h * h))
        }
        func J(_ w: [[Float]]) -> Double {
            var total = 0.0
            for i in 0..<w.count { for j in (i + 1)..<w.count { total += kappa(w[i], w[j]) } }
            for a in w { for y in pRows { total += kappa(a, y) } }
            return total
        }
        let d = Diversity.kernel(bandwidth: h)
        let gradients = expectTermGradients(d, walkers: w, accepted: pRows, J)
        for (i, g) in gradients.enumerated() {
            // Minimising moves away from the neighbours: a small step against the
            // gradient lowers J.
            var moved = w
            for t in 0..<3 { moved[i][t] -= 0.01 * g[t] }
            #expect(J(moved) < J(w))
        }
    }

    @Test func acceptedSetKeepsTheMeanAndSpread() {
        let rows = points(9, dim: 3, seed: 7)
        var acc = AcceptedSet(dim: 3, rows: Array(rows.prefix(4)))
        acc.append(Array(rows.suffix(5)))
        let mean = (0..<3).map { t in rows.reduce(0) { $0 + $1[t] } / 9 }
        for t in 0..<3 { #expect(abs(acc.mean[t] - mean[t]) < 1e-5) }
        var spread: Float = 0
        for r in rows { for (x, m) in zip(r, mean) { spread += (x - m) * (x - m) } }
        #expect(abs(acc.spread - spread) < 1e-3 * spread)
        #expect(acc.nearestDistance(rows[3][...]) == 0)
    }

    @Test func psiAndItsDerivative() {
        var m = Multiplier()
        m.lambda = 2; m.rho = 5
        for g: Float in [-1, -0.1, 0.2, 0.39, 0.41, 1] {
            let (_, d) = m.psi(g)
            let numeric = (m.psi(g + 1e-3).value - m.psi(g - 1e-3).value) / 2e-3
            #expect(abs(d - numeric) < 1e-2, "g = \(g): \(d) vs \(numeric)")
        }
        // Nocedal & Wright 17.4: lambda <- max(0, lambda - rho g).
        m.update(-0.5)
        #expect(m.lambda == 4.5)
        m.update(2)
        #expect(m.lambda == 0)
    }

    @Test func bandPenaltyPullsIntoTheBand() throws {
        let band = try Band(low: 2, high: 4)
        var c = BandConstraint()
        c.low.lambda = 1; c.high.lambda = 1
        for a: Float in [0, 1.9, 2.5, 3.9, 5] {
            let (_, d) = c.penalty(a, band: band)
            let numeric = (c.penalty(a + 1e-3, band: band).value - c.penalty(a - 1e-3, band: band).value) / 2e-3
            #expect(abs(d - numeric) < 1e-2, "a = \(a): \(d) vs \(numeric)")
        }
        // Below the band the penalty falls as a rises; above, it rises.
        #expect(c.penalty(0, band: band).derivative < 0)
        #expect(c.penalty(5, band: band).derivative > 0)
        #expect(BandConstraint.violation(5, band) == 0.5 && BandConstraint.violation(3, band) == 0)
    }

    @Test func realismSlackIsTheDistanceInsideTheNearestBall() {
        // Reference points on a line 1 apart: k = 1 radii are all 1.
        let reference = PointSet(rows: (0..<10).map { [Float($0), 0] })
        let model = RealismModel(reference: reference, k: 1, quantile: 1, threads: 2)
        #expect(model.radii.allSatisfy { abs($0 - 1) < 1e-6 })
        let e = PointSet(rows: [[3.25, 0], [4, 3]])
        let r = model.evaluate(e)
        // Inside: 1 - 0.25 = 0.75 around point 3; outside: 1 - 3 = -2 around point 4.
        #expect(r[0].ball == 3 && abs(r[0].slack - 0.75) < 1e-4)
        #expect(r[1].ball == 4 && abs(r[1].slack + 2) < 1e-4)
        // Its gradient, by central differences of the slack.
        for (i, row) in [[Float(3.25), 0.1], [4.2, 3]].enumerated() {
            let at = model.evaluate(PointSet(rows: [row]))[0]
            let g = model.slackGradient(row[...], ball: at.ball, distance: at.distance)
            for t in 0..<2 {
                var plus = row, minus = row
                plus[t] += 1e-3; minus[t] -= 1e-3
                let numeric = (model.evaluate(PointSet(rows: [plus]))[0].slack - model.evaluate(PointSet(rows: [minus]))[0].slack) / 2e-3
                #expect(abs(g[t] - numeric) < 1e-2, "point \(i) dim \(t): \(g[t]) vs \(numeric)")
            }
        }
    }
}
