import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler

/// A sample folder judged against the real inverse set: the dataset images
/// (of a split the sampler did not use) whose activations lie in each band,
/// embedded by the same E (`SampleQuality` has the figures). The control is
/// G's own reconstructions G(code(x)) of those images (of as many of them as
/// there are samples), judged the same way: the ceiling of what this
/// generator can show at that count.
public struct FolderEvaluation: Codable, Sendable {
    public struct Nearest: Codable, Sendable {
        /// Dataset index of the nearest evaluation image (any activation) in E.
        public var image: Int
        public var distance: Double
        /// Its label, when the dataset has labels.
        public var label: Int?
    }
    public struct BandFigures: Codable, Sendable {
        public var band: Int
        public var bands: [Band]
        /// Dataset indices of the real images inside every band.
        public var realImages: [Int]
        public var samples: SampleQuality
        public var control: SampleQuality
        /// Per sample of the band (in folder order): its nearest evaluation image.
        public var nearest: [Nearest]
        /// Per sample: the classifier's top class (when it has a class blob).
        public var topClass: [Int]?
        public var sampleIndices: [Int]

        enum CodingKeys: String, CodingKey {
            case band, bands, realImages = "real_images", samples, control, nearest, topClass = "top_class"
            case sampleIndices = "sample_indices"
        }
    }
    public var dataset: String
    public var split: String?
    public var evaluationImages: Int
    public var bands: [BandFigures]

    enum CodingKeys: String, CodingKey { case dataset, split, evaluationImages = "evaluation_images", bands }

    /// Evaluates `folder` with the pipeline it was sampled with.
    public static func evaluate(folder: SampleFolder, loaded: LoadedPipeline, neurons: [NeuronSpec],
                                dataset: String?, split: String?) throws -> FolderEvaluation {
        let split = split ?? (dataset == nil ? (loaded.spec.data?.evaluation_split ?? "test") : nil)
        let data = try loaded.dataset(dataset, split: split)
        guard let firstBands = folder.manifest.bands.first else { throw SamplerError("\(folder.dir): holds no bands") }
        try loaded.pipeline.setNeurons(zip(neurons, firstBands).map { ($0, $1) })
        let scores = try loaded.score(data, withCodes: true)
        return try evaluate(folder: folder, loaded: loaded, neurons: neurons, scores: scores, data: data, split: split)
    }

    /// The same from scores of the evaluation images computed beforehand
    /// (activations of `neurons`, E's features and codes), as an atlas
    /// computes them once for a whole layer.
    public static func evaluate(folder: SampleFolder, loaded: LoadedPipeline, neurons: [NeuronSpec],
                                scores: DatasetScores, data: ImageDataset, split: String?) throws -> FolderEvaluation {
        let m = folder.manifest
        let p = loaded.pipeline
        let classBlob = Self.classBlob(loaded)
        var figures: [BandFigures] = []
        for (b, bands) in m.bands.enumerated() {
            try p.setNeurons(zip(neurons, bands).map { ($0, $1) })
            let rows = scores.inBand(bands)
            let real = scores.subset(rows)
            let indices = m.samples.enumerated().filter { $1.band == b }.map(\.offset)
            let sampleSet = PointSet(rows: indices.map { folder.embeddings[$0] }, dim: scores.embeddings.dim)
            let acts = indices.map { m.samples[$0].activations }
            let quality = SampleQuality(samples: sampleSet, real: real.embeddings, activations: acts, bands: bands,
                                        threads: p.threads)
            var control = SampleQuality(samples: PointSet(flat: [], dim: scores.embeddings.dim), real: real.embeddings,
                                        threads: p.threads)
            if var codes = real.codes, codes.count > 0 {
                // As many reconstructions as there are samples (a fixed random subset
                // when the band holds more real images): coverage and recall grow with
                // the count, so the ceiling is taken at the samples' count.
                if indices.count > 0 && codes.count > indices.count {
                    var pick = SplitMix64(seed: 0xC0DE + UInt64(b))
                    var order = Array(0..<codes.count)
                    order.shuffle(using: &pick)
                    codes = codes.subset(Array(order.prefix(indices.count)).sorted())
                }
                let boxed = Tensor(shape: [codes.count, codes.dim], values: codes.values)
                p.box.project(boxed)
                let rec = try loaded.generate(PointSet(flat: boxed.array, dim: codes.dim))
                control = SampleQuality(samples: rec.embeddings, real: real.embeddings, activations: rec.activations, bands: bands,
                                        threads: p.threads)
            }
            let nearest = sampleSet.nearest(in: scores.embeddings, threads: p.threads).map { j, dist in
                Nearest(image: scores.indices[j], distance: dist, label: scores.labels?[j])
            }
            var top: [Int]? = nil
            if let classBlob, !indices.isEmpty {
                top = try p.topClasses(codes: PointSet(rows: indices.map { folder.codes[$0] }, dim: p.codeSize), blob: classBlob)
            }
            figures.append(BandFigures(band: b, bands: bands, realImages: real.indices, samples: quality, control: control,
                                       nearest: nearest, topClass: top, sampleIndices: indices))
        }
        // The real images the report shows: each band's first 24 and every nearest image.
        var shown = Set<Int>()
        for f in figures { shown.formUnion(f.realImages.prefix(24)); shown.formUnion(f.nearest.map(\.image)) }
        try FileManager.default.createDirectory(atPath: folder.dir + "/real", withIntermediateDirectories: true)
        for i in shown.sorted() { try data.image(i).png().write(to: folder.dir + "/real/\(i).png") }
        return FolderEvaluation(dataset: data.source, split: split, evaluationImages: data.count, bands: figures)
    }

    /// The classifier's class blob: the last vector blob with one unit per label.
    static func classBlob(_ loaded: LoadedPipeline) -> ValueID? {
        let f = loaded.pipeline.classifier
        guard !loaded.labels.isEmpty else { return nil }
        return f.graph.values.indices.reversed().map(ValueID.init).first { v in
            let s = f.shapes[v.index]
            return s.rank >= 2 && s[1] == loaded.labels.count && s.count(from: 2) == 1
        }
    }

    public func write(to dir: String) throws {
        let data = try SampleFolder.encoder().encode(self)
        guard FileManager.default.createFile(atPath: dir + "/evaluation.json", contents: data) else {
            throw SamplerError("\(dir)/evaluation.json: cannot be written")
        }
    }

    public static func read(_ dir: String) -> FolderEvaluation? {
        guard let data = FileManager.default.contents(atPath: dir + "/evaluation.json") else { return nil }
        return try? SampleFolder.decoder().decode(FolderEvaluation.self, from: data)
    }
}
