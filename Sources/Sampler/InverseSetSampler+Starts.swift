import Foundation
import Runtime

/// Where walkers start and restart, and the data variant's distance unit d^.
extension InverseSetSampler {
    /// A restart: from the prior in the data variant, else from a random code.
    func restart(_ state: inout SamplerState, _ i: Int, accepted: AcceptedSet, thirds: [Int], step: Int? = nil) {
        if settings.variant == .data && prior != nil {
            restartFromPrior(&state, i, accepted: accepted, thirds: thirds, step: step)
        } else {
            let fresh = randomCodes(1)
            state.walkers[i] = WalkerState(code: fresh.array, neurons: pipeline.neurons.count, step: step ?? state.step)
        }
    }

    /// Walker `i` restarts from a real code: it aims at the third of the band
    /// with the fewest samples (counting what the other walkers aim at), and
    /// starts from a prior code whose reconstruction lies in that third (else
    /// in the band, else nearest to it), not used before if possible, and
    /// preferably at least `spacing` d^ from every accepted sample.
    func restartFromPrior(_ state: inout SamplerState, _ i: Int, accepted: AcceptedSet, thirds: [Int], step: Int? = nil) {
        guard let prior else { return }
        let m = pipeline.neurons.count
        var w = WalkerState(code: state.walkers[i].code, neurons: m, step: step ?? state.step)
        if settings.stratify && !bands.isEmpty {
            var load = thirds.map(Double.init)
            var aiming = [0, 0, 0]
            for (j, o) in state.walkers.enumerated() where j != i && o.target >= 0 {
                load[o.target] += Double(max(0, settings.lifetime - o.acceptedSinceStart))
                aiming[o.target] += 1
            }
            // At most a third of the walkers (rounded up) aim at one third, so a
            // third that is hard to reach does not take every walker; at most two
            // thirds of them while it holds under 1/laggingShare of the samples.
            let total = thirds.reduce(0, +)
            // A third that the prior hardly reaches is not aimed at: in a band whose
            // real activations nearly all sit at one end (e.g. [0, 0.006] of a unit
            // that is exactly 0 on most images), walkers aiming at the empty thirds
            // held back every sample of the full one (32 of 50 after 3,000 steps).
            // Counted over the prior's reconstructions and real images; bands the
            // prior barely reaches at all keep aiming at every third.
            var probe = w
            let perThird = (0..<3).map { t -> Int in
                probe.target = t
                let b = targetBands(probe)
                return prior.rows(inside: b).count + prior.realRows(inside: b).count
            }
            let inBand = perThird.reduce(0, +)
            let reached = perThird.map { inBand < Tuning.thirdSupportMinimum || Double($0) >= Tuning.thirdSupportShare * Double(inBand) }
            let candidates = (0..<3).filter { reached[$0] }
            let open = candidates.filter { t in
                let lagging = total >= 3 * settings.walkers && Tuning.laggingShare * thirds[t] < total
                return aiming[t] < (lagging ? (2 * settings.walkers + 2) / 3 : (settings.walkers + 2) / 3)
            }
            w.target = (open.isEmpty ? candidates : open).min { load[$0] < load[$1] } ?? 0
        }
        let used = Set(state.usedStarts)
        // Codes whose reconstruction is in the target (the walker is feasible at
        // once), else codes of real images in it (G may reconstruct them outside
        // the band, and the walker walks in); unused ones first.
        let target = targetBands(w)
        let pools: [[Int]] = [prior.rows(inside: target), prior.rows(inside: bands),
                              prior.realRows(inside: target), prior.realRows(inside: bands)]
        var candidates = pools.lazy.map { $0.filter { !used.contains($0) } }.first { !$0.isEmpty }
            ?? pools.first { !$0.isEmpty } ?? prior.rows(nearest: bands, max(4 * settings.walkers, 40))
        guard !candidates.isEmpty else { return }
        // A few random candidates; the first far enough from the accepted set wins,
        // else the farthest of them.
        var best = candidates[Int(rng.next() % UInt64(candidates.count))], bestDistance: Float = -1
        for _ in 0..<Tuning.startCandidates {
            let c = candidates[Int(rng.next() % UInt64(candidates.count))]
            let dc = accepted.nearestDistance(prior.embeddings.row(c))
            if dc > bestDistance { best = c; bestDistance = dc }
            if dc >= settings.spacing * state.unit { break }
        }
        w.code = Array(prior.codes.row(best))
        project(&w.code)
        w.startRow = best
        state.usedStarts.append(best)
        state.walkers[i] = w
    }

    /// d^: the median nearest-neighbour distance in E among `count` prior
    /// images in the band (a fixed random subset when there are more, all
    /// when there are fewer): the spacing real images of the band have at the
    /// sample size (extrapolated when the band holds fewer real images than
    /// samples). With fewer than 10 real images in the band, the
    /// reconstructions nearest to it stand in.
    func distanceUnit() -> Float {
        guard let prior else { return 0 }
        var rows = prior.realRows(inside: bands)
        var points = prior.realEmbeddings
        if rows.count < 10 {
            rows = prior.rows(nearest: bands, min(prior.count, max(50, settings.count)))
            points = prior.embeddings
        }
        var pick = SplitMix64(seed: settings.seed &+ 0x5EED)
        rows.shuffle(using: &pick)
        func spacing(_ m: Int) -> Double { SampleQuality.median(points.subset(Array(rows.prefix(m))).neighbourRadii(k: 1, threads: pipeline.threads)) }
        let n = max(settings.count, 2)
        var u = spacing(min(n, rows.count))
        if rows.count < n && rows.count >= 20 {
            // Fewer real images than samples: nearest-neighbour distances shrink as
            // m^(-1/dim); the exponent from m and m/2 points extrapolates to n.
            let m = rows.count
            let exponent = min(max(log(spacing(m / 2) / u) / log(Double(m) / Double(m / 2)), 0.02), 1)
            u *= pow(Double(m) / Double(n), exponent)
        }
        return u.isFinite ? Float(u) : 0
    }

    /// Without a prior: half the median distance between the first walkers.
    func fallbackUnit(_ e: PointSet, _ alive: [Bool]) -> Float {
        let live = PointSet(rows: (0..<e.count).filter { alive[$0] }.map { Array(e.row($0)) }, dim: e.dim)
        let u = Float(SampleQuality.median(live.neighbourRadii(k: 1, threads: pipeline.threads))) / 2
        return u.isFinite && u > 0 ? u : 1
    }
}
