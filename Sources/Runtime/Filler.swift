import GraphIR

/// Caffe's weight fillers (FillerParameter), for nets whose trained weights
/// are not at hand. `fan_in` = count / shape[0], `fan_out` = count / shape[1],
/// as Caffe computes them.
public enum Filler {
    public static func fill(_ t: Tensor, with p: ParamMessage?, rng: inout SplitMix64, layer: String) throws {
        let p = p ?? ParamMessage()
        func read<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as ParamError {
                throw RuntimeError.layer(name: layer, type: "filler", message: e.description, location: e.location)
            }
        }
        let type = try read { try p.string("type", default: "constant") }
        let n = t.count, d = t.data
        let fanIn = t.shape.rank > 0 && t.shape[0] > 0 ? n / t.shape[0] : n
        let fanOut = t.shape.rank > 1 && t.shape[1] > 0 ? n / t.shape[1] : n
        func norm() throws -> Float {
            switch try read({ try p.enumName("variance_norm", default: "FAN_IN") }) {
            case "FAN_OUT": return Float(fanOut)
            case "AVERAGE": return Float(fanIn + fanOut) / 2
            default: return Float(fanIn)
            }
        }
        switch type {
        case "constant":
            t.fill(try read { try p.float("value", default: 0) })
        case "uniform":
            let lo = try read { try p.float("min", default: 0) }, hi = try read { try p.float("max", default: 1) }
            for i in 0..<n { d[i] = lo + (hi - lo) * rng.uniform() }
        case "gaussian":
            let mean = try read { try p.float("mean", default: 0) }, std = try read { try p.float("std", default: 1) }
            for i in 0..<n { d[i] = mean + std * rng.gaussian() }
            let sparse = try read { try p.int("sparse", default: -1) }
            if sparse >= 0, t.shape.rank >= 1 {
                // Keep each weight with probability sparse / num_outputs.
                let keep = Float(sparse) / Float(max(1, t.shape[0]))
                for i in 0..<n where rng.uniform() >= keep { d[i] = 0 }
            }
        case "positive_unitball":
            for i in 0..<n { d[i] = rng.uniform() }
            let dim = max(1, n / max(1, t.shape.rank > 0 ? t.shape[0] : 1))
            var i = 0
            while i < n {
                var s: Float = 0
                for j in i..<min(n, i + dim) { s += d[j] }
                if s > 0 { for j in i..<min(n, i + dim) { d[j] /= s } }
                i += dim
            }
        case "xavier":
            let a = (3 / (try norm())).squareRoot()
            for i in 0..<n { d[i] = -a + 2 * a * rng.uniform() }
        case "msra":
            let std = (2 / (try norm())).squareRoot()
            for i in 0..<n { d[i] = std * rng.gaussian() }
        case "bilinear":
            // Upsampling kernel for Deconvolution: (C, 1, K, K) with K even or odd.
            guard t.shape.rank == 4, t.shape[2] == t.shape[3] else {
                throw RuntimeError.layer(name: layer, type: "filler", message: "bilinear filler needs a 4-d square kernel, got \(t.shape)", location: nil)
            }
            let k = t.shape[3]
            let f = Float((k + 1) / 2)
            let c = Float(2 * f - 1 - Float(f).truncatingRemainder(dividingBy: 2)) / (2 * f)
            for i in 0..<n {
                let x = Float(i % k), y = Float((i / k) % k)
                d[i] = (1 - abs(x / f - c)) * (1 - abs(y / f - c))
            }
        default:
            throw RuntimeError.layer(name: layer, type: "filler",
                message: "unknown filler type '\(type)' (known: constant, uniform, gaussian, positive_unitball, xavier, msra, bilinear)",
                location: p.location)
        }
    }
}
