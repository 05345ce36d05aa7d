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
                let low = try Atlas.parseBound(ends[0], in: text).value(over: v)
                let high = try Atlas.parseBound(ends[1], in: text).value(over: v)
                guard low < high else {
                    throw SamplerError("neuron '\(neurons[k])': band '\(text)' is [\(low), \(high)] over the \(source), which is empty; choose other percentiles (`inverse-set stats --blobs \(neurons[k].blob)` lists them)")
                }
                note("neuron \(neurons[k]) band \(text) over the \(source): [\(low), \(high)]")
                return try Band(low: low, high: high)
            }
        }
    }
}

extension LoadedPipeline {
    /// The classifier's top class of each sample of `folder`, by name, when
    /// the pipeline has labels and f has a class vector of as many units
    /// (read through G and the glue from the saved codes); [:] otherwise.
    /// The pipeline's neurons are restored afterwards.
    public func topClasses(of folder: SampleFolder, restoring neurons: [(NeuronSpec, Band)]) throws -> [Int: String] {
        let f = pipeline.classifier
        guard !labels.isEmpty, !folder.codes.isEmpty,
              let blob = f.graph.blobNames.last(where: { name in
                  guard let v = f.graph.value(named: name) else { return false }
                  let s = f.shapes[v.index]
                  return s.rank >= 2 && s[1] == labels.count && s.count(from: 2) == 1
              }) else { return [:] }
        let any = try Band(low: 0, high: 1)
        try pipeline.setNeurons(try (0..<labels.count).map { (try NeuronSpec(parsing: "\(blob):\($0)"), any) })
        defer { try? pipeline.setNeurons(neurons) }
        let out = try generate(PointSet(rows: folder.codes, dim: folder.codes[0].count))
        var top: [Int: String] = [:]
        for (i, a) in out.activations.enumerated() {
            if let best = a.indices.max(by: { a[$0] < a[$1] }) { top[i] = labels[best] }
        }
        return top
    }
}
