import Runtime
import Sampler
import Testing

/// The evaluation figures on point sets whose answers are known.
struct SampleQualityTests {
    /// n points on a line, `spacing` apart, in `dim` dimensions (the first coordinate varies).
    func line(_ n: Int, spacing: Float, offset: Float = 0, dim: Int = 3) -> PointSet {
        PointSet(rows: (0..<n).map { i in [offset + Float(i) * spacing] + Array(repeating: 0, count: dim - 1) })
    }

    /// Points of a 2-D grid (in 4 dimensions), jittered by a fixed generator.
    func cloud(_ n: Int, seed: UInt64, shift: Float = 0) -> PointSet {
        var rng = SplitMix64(seed: seed)
        return PointSet(rows: (0..<n).map { _ in [rng.gaussian() + shift, rng.gaussian(), 0.1 * rng.gaussian(), 0] })
    }

    /// The blocked GEMM search for k-th neighbour radii gives what the all-pairs
    /// loop gives, exactly: on clouds in 64 dimensions with repeated points
    /// (ties), and across block boundaries (3,000 points: blocks of 256 rows).
    @Test(arguments: [(40, 1), (40, 3), (3000, 3), (7, 6), (5, 5)])
    func neighbourRadiiEqualTheAllPairsDefinition(count: Int, k: Int) {
        var rng = SplitMix64(seed: UInt64(count * 31 + k))
        var rows = (0..<count).map { _ in (0..<64).map { _ in rng.gaussian() * 3 } }
        for i in stride(from: 0, to: count - 1, by: 5) { rows[i + 1] = rows[i] }   // ties
        let set = PointSet(rows: rows)
        let fast = set.neighbourRadii(k: k, threads: 2)
        let all = set.distances(to: set)
        for i in 0..<count {
            let others = (0..<count).filter { $0 != i }.map { all[i * count + $0] }.sorted()
            let expected = others.count >= k ? others[k - 1] : .infinity
            #expect(fast[i] == expected, "point \(i): \(fast[i]) against \(expected)")
            if fast[i] != expected { return }
        }
    }

    @Test func identicalSetsScorePerfectly() {
        let real = cloud(200, seed: 1)
        let q = SampleQuality(samples: real, real: real, threads: 2)
        #expect(q.precision == 1 && q.recall == 1 && q.coverage == 1)
        #expect(q.cappedPrecision == 1)
        // Against itself, each ball B(x, r_3(x)) holds x and its 3 neighbours:
        // density = (k + 1) N / (k N) = 4/3 (no ties in a Gaussian cloud).
        #expect(abs(q.density! - 4.0 / 3) < 1e-9, "density \(q.density!)")
        #expect(abs(q.normRatio! - 1) < 1e-9)
    }

    @Test func aSetFromTheSameDistributionScoresHigh() {
        let q = SampleQuality(samples: cloud(300, seed: 2), real: cloud(300, seed: 3), threads: 2)
        #expect(q.precision! > 0.8 && q.recall! > 0.8 && q.coverage! > 0.8, "\(q)")
        #expect(abs(q.density! - 1) < 0.3, "density \(q.density!)")
        #expect(q.distinctFraction! > 0.8)
    }

    @Test func aFarSetScoresZero() {
        let q = SampleQuality(samples: cloud(100, seed: 4, shift: 50), real: cloud(100, seed: 5), threads: 2)
        #expect(q.precision == 0 && q.recall == 0 && q.density == 0 && q.coverage == 0)
        #expect(q.normRatio! > 10)
    }

    @Test func copiesAreNearDuplicatesAndNotDistinct() {
        // 10 distinct points, each repeated 5 times: d of the real line is 1.
        let base = line(10, spacing: 1)
        let copies = PointSet(rows: (0..<50).map { Array(base.row($0 % 10)) })
        let q = SampleQuality(samples: copies, real: line(40, spacing: 1), threads: 2)
        #expect(q.d == 1)
        #expect(q.nearDuplicates == 1)        // every sample has an exact copy
        #expect(q.distinct == 10)
        #expect(q.distinctFraction == 0.2)
    }

    @Test func distinctCountsAtHalfTheRealSpacing() {
        // Samples 0.4 apart on a line against real points 1 apart: greedily,
        // every second sample is kept (0.8 > 0.5), none is a near-duplicate (0.4 >= 0.25).
        let q = SampleQuality(samples: line(20, spacing: 0.4), real: line(30, spacing: 1), threads: 2)
        #expect(q.nearDuplicates == 0)
        #expect(q.distinct == 10)
        // 0.2 apart: all are near-duplicates (0.2 < 0.25), every third is kept.
        let r = SampleQuality(samples: line(21, spacing: 0.2), real: line(30, spacing: 1), threads: 2)
        #expect(r.nearDuplicates == 1)
        #expect(r.distinct == 7)
    }

    @Test func coverageCountsRealPointsWithASampleInTheirBall() {
        // Real points 0, 1, ..., 9; k = 3 radii: 3 at the ends (0 and 9), 2
        // inside (neighbours at 1, 1, 2). A sample at 0 lies in the balls of 0, 1, 2.
        let real = line(10, spacing: 1)
        let q = SampleQuality(samples: PointSet(rows: [[0, 0, 0], [100, 0, 0], [101, 0, 0], [102, 0, 0], [103, 0, 0]]), real: real, threads: 2)
        #expect(q.coverage == 0.3, "\(q.coverage!)")
        #expect(q.precision == 0.2)
        // density = (1 / (k |Y|)) * (sample, ball) pairs = 3 / 15.
        #expect(abs(q.density! - 3.0 / 15) < 1e-12)
    }

    @Test func cappingTheRadiiRemovesAnOutliersBall() {
        // A dense cluster and one isolated real point whose 3-NN ball reaches
        // the sample far out: uncapped, the sample counts as realistic.
        var rows = (0..<40).map { i -> [Float] in [Float(i % 8) * 0.1, Float(i / 8) * 0.1, 0] }
        rows.append([30, 0, 0])
        let real = PointSet(rows: rows)
        let samples = PointSet(rows: [[20, 0, 0], [0.05, 0.05, 0], [0.15, 0.05, 0], [0.25, 0.15, 0]])
        let q = SampleQuality(samples: samples, real: real, threads: 2)
        #expect(q.precision == 1)
        #expect(q.cappedPrecision == 0.75)
    }

    @Test func bandThirdsAndInBand() throws {
        let band = try Band(low: 0, high: 3)
        let acts: [[Float]] = [[0.5], [0.9], [1.5], [2.9], [3.0], [4]]
        let q = SampleQuality(samples: line(6, spacing: 1), real: line(6, spacing: 1), activations: acts, bands: [band], threads: 2)
        let expected: [[Double]] = [[2.0 / 6, 1.0 / 6, 2.0 / 6]]
        #expect(q.thirds == expected)
        #expect(q.inBand == 5.0 / 6)
    }

    @Test func tooFewPointsGiveNoFigureRatherThanANumber() {
        let q = SampleQuality(samples: line(3, spacing: 1), real: line(2, spacing: 1), threads: 2)
        #expect(q.precision == nil && q.coverage == nil)
        #expect(q.d == 1)
    }

    @Test func nearestByGEMMMatchesTheDirectDistances() {
        let a = cloud(37, seed: 8), b = cloud(300, seed: 9)
        let direct = a.distances(to: b)
        for (i, (j, d)) in a.nearest(in: b, threads: 2).enumerated() {
            let row = direct[(i * b.count)..<((i + 1) * b.count)]
            #expect(abs(d - row.min()!) < 1e-9)
            #expect(abs(row[row.startIndex + j] - d) < 1e-9)
        }
    }
}
