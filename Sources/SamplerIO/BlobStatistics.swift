import Foundation
import GraphIR
import Runtime
import Sampler

/// Per-unit statistics of classifier blobs over a dataset, for choosing
/// bands: min, percentiles and max of every unit (a vector blob's units, or
/// a feature map's channels at one position or averaged over positions, as
/// neuron specs address them).
public struct BlobStatistics: Codable, Sendable {
    public struct Unit: Codable, Sendable {
        public var unit: Int
        public var min: Float
        public var p1: Float, p5: Float, p10: Float, p25: Float, p50: Float, p75: Float, p90: Float, p95: Float, p99: Float
        public var max: Float
        public var mean: Float
        /// Fraction of images where the unit is exactly 0 (dead after ReLU).
        public var zero: Float
    }
    public struct Blob: Codable, Sendable {
        public var blob: String
        public var shape: [Int]
        /// "unit", "centre", "Y,X" or "mean".
        public var position: String
        public var units: [Unit]
    }
    public var dataset: String
    public var images: Int
    public var blobs: [Blob]

    /// The named percentiles, in order (p0 = min, p100 = max).
    public static let percentiles: [Double] = [1, 5, 10, 25, 50, 75, 90, 95, 99]

    /// One pass of the classifier over `data` (or its first `limit` images),
    /// reading `blobs` at `position` (nil: the centre of feature maps).
    public static func compute(_ loaded: LoadedPipeline, data: ImageDataset, blobs names: [String],
                               position: NeuronSpec.Position = .centre, limit: Int? = nil, batch: Int = 100) throws -> BlobStatistics {
        let f = loaded.pipeline.classifier
        let ids: [ValueID] = try names.map { name in
            guard let v = f.graph.value(named: name) ?? f.graph.output(ofLayer: name) else {
                throw SamplerError("the classifier has no blob '\(name)'\(didYouMean(name, f.graph.blobNames)) (blobs: \(listForDisplay(f.graph.blobNames, limit: 40)))")
            }
            return v
        }
        let n = min(data.count, limit ?? data.count)
        var values = [[[Float]]](repeating: [], count: ids.count)   // blob -> unit -> per image
        var shapes: [[Int]] = []
        let input = f.graph.values[f.graph.inputs[0].index].blob
        for start in stride(from: 0, to: n, by: batch) {
            let part = Array(start..<min(start + batch, n))
            try f.forward([input: try loaded.inputs(data, part)])
            for (b, v) in ids.enumerated() {
                guard let t = f.tensor(v) else { throw SamplerError("internal: blob '\(names[b])' not kept") }
                let s = f.shapes[v.index]
                if shapes.count <= b { shapes.append(s.dims) }
                let channels = s.rank >= 2 ? s[1] : 1, spatial = s.count(from: 2), per = s.count(from: 1)
                if values[b].isEmpty { values[b] = Array(repeating: [], count: channels) }
                for i in 0..<part.count {
                    let base = t.data + i * per
                    for c in 0..<channels {
                        let v: Float
                        if spatial == 1 { v = base[c] } else {
                            switch position {
                            case .centre: v = base[c * spatial + (s[2] / 2) * s[3] + s[3] / 2]
                            case .at(let y, let x):
                                guard s.rank == 4, y < s[2], x < s[3] else {
                                    throw SamplerError("position (\(y), \(x)) is outside the \(s.rank == 4 ? "\(s[2])x\(s[3])" : "\(s)") map of '\(names[b])'")
                                }
                                v = base[c * spatial + y * s[3] + x]
                            case .mean:
                                var m: Float = 0
                                for p in 0..<spatial { m += base[c * spatial + p] }
                                v = m / Float(spatial)
                            }
                        }
                        values[b][c].append(v)
                    }
                }
            }
        }
        let out = ids.indices.map { b -> Blob in
            let spatial = shapes[b].dropFirst(2).reduce(1, *)
            let where_: String
            switch position {
            case _ where spatial == 1: where_ = "unit"
            case .centre: where_ = "centre"
            case .at(let y, let x): where_ = "\(y),\(x)"
            case .mean: where_ = "mean"
            }
            return Blob(blob: names[b], shape: shapes[b], position: where_, units: values[b].enumerated().map { c, v in
                let d = v.map(Double.init)
                let q = percentiles.map { Float(SampleQuality.quantile(d, $0 / 100)) }
                return Unit(unit: c, min: v.min() ?? .nan, p1: q[0], p5: q[1], p10: q[2], p25: q[3], p50: q[4], p75: q[5],
                            p90: q[6], p95: q[7], p99: q[8], max: v.max() ?? .nan,
                            mean: v.isEmpty ? .nan : v.reduce(0, +) / Float(v.count),
                            zero: v.isEmpty ? 0 : Float(v.filter { $0 == 0 }.count) / Float(v.count))
            })
        }
        return BlobStatistics(dataset: data.source, images: n, blobs: out)
    }

    /// The value of percentile `p` (0 = min, 100 = max; others interpolated
    /// between the stored ones) of `unit` in `blob`.
    public func value(blob: String, unit: Int, percentile p: Double) -> Float? {
        guard let b = blobs.first(where: { $0.blob == blob }), unit < b.units.count else { return nil }
        let u = b.units[unit]
        let xs: [Double] = [0] + Self.percentiles + [100]
        let ys: [Float] = [u.min, u.p1, u.p5, u.p10, u.p25, u.p50, u.p75, u.p90, u.p95, u.p99, u.max]
        guard p >= 0, p <= 100 else { return nil }
        for i in 1..<xs.count where p <= xs[i] {
            let t = Float((p - xs[i - 1]) / (xs[i] - xs[i - 1]))
            return ys[i - 1] + t * (ys[i] - ys[i - 1])
        }
        return u.max
    }
}
