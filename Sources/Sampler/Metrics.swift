/// The paper's measures of a sample set.
public enum Metrics {
    /// Mean pairwise Euclidean distance between embeddings (Table 1's diversity).
    public static func meanPairwiseDistance(_ e: [[Float]]) -> Double {
        guard e.count > 1 else { return 0 }
        var total = 0.0, pairs = 0
        for i in 0..<e.count {
            for j in (i + 1)..<e.count {
                var s = 0.0
                for (a, b) in zip(e[i], e[j]) { let d = Double(a - b); s += d * d }
                total += s.squareRoot(); pairs += 1
            }
        }
        return total / Double(pairs)
    }

    /// Fraction of samples whose every activation lies in its band.
    public static func fractionInBand(_ activations: [[Float]], bands: [Band]) -> Double {
        guard !activations.isEmpty else { return 0 }
        let ok = activations.filter { zip($0, bands).allSatisfy { $1.contains($0) } }.count
        return Double(ok) / Double(activations.count)
    }
}
