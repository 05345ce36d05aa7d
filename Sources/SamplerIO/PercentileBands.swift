import Foundation
import Sampler

/// Bands written with percentiles of the neuron over a dataset ("p90:p99",
/// "p99:max", "min:p10"), as `sample --range` and `SPEC=Z1:Z2` accept them
/// beside plain numbers: bands that real images reach.
public enum PercentileBands {
    /// Whether a band text names a percentile (pNN, min or max) in a bound.
    public static func usesPercentiles(_ text: String) -> Bool {
        text.split(separator: ":", omittingEmptySubsequences: false).contains { b in
            let t = b.trimmingCharacters(in: .whitespaces)
            return t == "min" || t == "max" || t.hasPrefix("p")
        }
    }

    /// Resolves `texts[run][k]` (the band of neuron k in run `run`) to bands.
    /// Percentiles are taken over the activations of `neurons` on the
    /// dataset's evaluation split (one pass of f, only when some text needs
    /// it); `note` gets one line per resolved percentile band.
    public static func resolve(_ loaded: LoadedPipeline, neurons: [NeuronSpec], texts: [[String]], dataset: String?,
                               note: (String) -> Void) throws -> [[Band]] {
        var values: [[Double]]? = nil   // per neuron, over the images
        var source = ""
        func activations() throws -> [[Double]] {
            if let values { return values }
            // Any band will do while reading activations: they do not depend on it.
            try loaded.pipeline.setNeurons(neurons.map { ($0, try Band(low: 0, high: 1)) })
            let split = loaded.spec.data?.evaluation_split ?? "test"
            let data: ImageDataset
            do { data = try loaded.dataset(dataset, split: split) } catch {
                throw SamplerError("percentile bands need a dataset: \(error)")
            }
            let scores = try loaded.score(data)
            let v = neurons.indices.map { k in scores.activations.map { Double($0[k]) } }
            values = v
            source = "\(scores.activations.count) images of \(data.source)"
            return v
        }
        return try texts.map { run in
            try run.enumerated().map { k, text in
                guard usesPercentiles(text) else { return try Band(parsing: text) }
                let ends = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard ends.count == 2 else { throw SamplerError("band '\(text)': expected LOW:HIGH, e.g. p90:p99 or 1:2") }
                let v = try activations()[k]
                func value(_ b: Atlas.Bound) -> Float {
                    switch b {
                    case .value(let x): return x
                    case .percentile(let p): return Float(SampleQuality.quantile(v, p / 100))
                    }
                }
                let low = value(try Atlas.parseBound(ends[0], in: text)), high = value(try Atlas.parseBound(ends[1], in: text))
                guard low < high else {
                    throw SamplerError("neuron '\(neurons[k])': band '\(text)' is [\(low), \(high)] over the \(source), which is empty; choose other percentiles (`inverse-set stats --blobs \(neurons[k].blob)` lists them)")
                }
                note("neuron \(neurons[k]) band \(text) over the \(source): [\(low), \(high)]")
                return try Band(low: low, high: high)
            }
        }
    }
}
