import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler

/// What the pipeline's f (and E) say about dataset images: per image the
/// activations of the pipeline's current neurons, E's features, and (when
/// asked) G's code for the image.
public struct DatasetScores: Sendable {
    /// Dataset indices of the rows.
    public var indices: [Int]
    public var activations: [[Float]]
    public var embeddings: PointSet
    public var codes: PointSet?
    /// Labels of the rows, when the dataset has labels.
    public var labels: [Int]?

    /// The rows whose activations lie in every band.
    public func inBand(_ bands: [Band]) -> [Int] {
        activations.indices.filter { zip(activations[$0], bands).allSatisfy { $1.contains($0) } }
    }

    public func subset(_ rows: [Int]) -> DatasetScores {
        DatasetScores(indices: rows.map { indices[$0] }, activations: rows.map { activations[$0] },
                      embeddings: embeddings.subset(rows), codes: codes?.subset(rows),
                      labels: labels.map { l in rows.map { l[$0] } })
    }
}

/// G's output for codes, read back through the pipeline: the reconstructions
/// G(code(x)) of real images (the control of the evaluation) or any codes.
public struct Generated: Sendable {
    public var activations: [[Float]]
    public var embeddings: PointSet
    /// G's raw outputs, one row per code.
    public var images: [[Float]]
}

extension LoadedPipeline {
    /// The classifier blob that holds G's code for an image: data.code_blob,
    /// or E's output when E is f cut at a blob whose size is the code size.
    public func codeBlob() throws -> ValueID {
        let f = pipeline.classifier
        if let name = spec.data?.code_blob {
            guard let v = f.graph.value(named: name) ?? f.graph.output(ofLayer: name) else {
                throw SamplerError("\(path): data.code_blob '\(name)' is not a blob of the classifier (blobs: \(f.graph.blobNames.joined(separator: ", ")))")
            }
            guard f.shapes[v.index].count(from: 1) == pipeline.codeSize else {
                throw SamplerError("\(path): data.code_blob '\(name)' has \(f.shapes[v.index].count(from: 1)) values per image; G's code has \(pipeline.codeSize)")
            }
            return v
        }
        if let cut = spec.encoder.cut, let v = f.graph.value(named: cut) ?? f.graph.output(ofLayer: cut),
           f.shapes[v.index].count(from: 1) == pipeline.codeSize {
            return v
        }
        throw SamplerError("\(path): no classifier blob is known to be G's code; name it as data.code_blob (e.g. \"fc6\")")
    }

    /// The dataset named by the pipeline (data.dataset) or `override`, at `split`.
    public func dataset(_ override: String?, split: String?) throws -> ImageDataset {
        guard let path = override ?? spec.data?.dataset.map(resolve) else {
            throw SamplerError("\(self.path): names no dataset (data.dataset); give one with --dataset")
        }
        return try ImageDataset.load(path, split: split)
    }

    /// Images `indices` of `data` as f's input, preprocessed as data.preprocess says.
    public func inputs(_ data: ImageDataset, _ indices: [Int]) throws -> Tensor {
        let shape = pipeline.imageShape(indices.count)
        let (c, h, w) = (shape[1], shape[2], shape[3])
        let t = Tensor(shape: shape)
        for (row, i) in indices.enumerated() {
            let img = try data.image(i)
            try preprocessor.write(unitHWC: img.converted(toChannels: c), width: img.width, height: img.height,
                                   into: t.data + row * c * h * w, channels: c, height: h, width: w)
        }
        return t
    }

    /// f and E on dataset images (all, or `indices`), in batches.
    public func score(_ data: ImageDataset, indices: [Int]? = nil, withCodes: Bool = false,
                      batch: Int = 100) throws -> DatasetScores {
        let all = indices ?? Array(0..<data.count)
        let code = withCodes ? try codeBlob() : nil
        var acts: [[Float]] = [], emb: [Float] = [], codes: [Float] = []
        var dim = 0
        for start in stride(from: 0, to: all.count, by: batch) {
            let part = Array(all[start..<min(start + batch, all.count)])
            let r = try pipeline.score(images: try inputs(data, part), codeBlob: code)
            acts += r.activations
            emb += r.embeddings.array
            dim = r.embeddings.count / part.count
            if let c = r.codes { codes += c.array }
        }
        return DatasetScores(indices: all, activations: acts, embeddings: PointSet(flat: emb, dim: max(dim, 1)),
                             codes: withCodes ? PointSet(flat: codes, dim: pipeline.codeSize) : nil,
                             labels: data.labels.map { l in all.map { l[$0] } })
    }

    /// G -> glue -> f (and E) on codes, in batches.
    public func generate(_ codes: PointSet, keepImages: Bool = false, batch: Int = 100) throws -> Generated {
        var acts: [[Float]] = [], emb: [Float] = [], images: [[Float]] = []
        var dim = 0
        for start in stride(from: 0, to: codes.count, by: batch) {
            let n = min(batch, codes.count - start)
            let t = Tensor(shape: [n, codes.dim], values: Array(codes.values[(start * codes.dim)..<((start + n) * codes.dim)]))
            let ev = try pipeline.forward(t)
            acts += ev.activations
            emb += ev.embeddings.array
            dim = ev.embeddings.count / n
            if keepImages {
                let per = ev.generated.count / n
                for i in 0..<n { images.append(Array(UnsafeBufferPointer(start: ev.generated.data + i * per, count: per))) }
            }
        }
        return Generated(activations: acts, embeddings: PointSet(flat: emb, dim: max(dim, 1)), images: images)
    }
}

extension UnitImage {
    /// The same pixels with `c` channels: gray repeated for colour, colour
    /// reduced to luma (Rec. 709, as `Preprocessor.unitFloats`).
    func converted(toChannels c: Int) -> [Float] {
        if c == channels { return hwc }
        let n = width * height
        var out = [Float](repeating: 0, count: n * c)
        for p in 0..<n {
            if channels == 1 {
                for j in 0..<c { out[p * c + j] = hwc[p] }
            } else {
                let r = hwc[p * channels], g = hwc[p * channels + 1], b = hwc[p * channels + 2]
                out[p * c] = 0.2125 * r + 0.7154 * g + 0.0721 * b
                for j in 1..<c { out[p * c + j] = out[p * c] }
            }
        }
        return out
    }
}
