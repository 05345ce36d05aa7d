import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler

/// The output folder of `sample`, written as samples arrive so an interrupted
/// run loses nothing, and read back to resume.
///
///     samples/NNNN.png   one image per accepted sample
///     samples.json       configuration + per-sample activations, band, step
///     codes.npy          n x d codes;  embeddings.npy: n x D E-features
///     sheet.png          contact sheet, one labelled row per band
///     report.html        sheet, activation histograms, metrics
final class SampleFolder {
    struct Record: Codable {
        var index: Int
        var band: Int
        var activations: [Float]
        var step: Int
        var file: String
    }
    struct Manifest: Codable {
        var version: String
        var configuration: [String: String]
        var neurons: [String]
        var bands: [[Band]]
        var samples: [Record]
        var summary: [String: Double]?
    }

    let dir: String
    var manifest: Manifest
    var codes: [[Float]] = []
    var embeddings: [[Float]] = []

    init(dir: String, configuration: [String: String], neurons: [String], bands: [[Band]]) throws {
        self.dir = dir
        try Toolbox.makeDirectory(dir + "/samples")
        manifest = Manifest(version: "inverse-set 0.1", configuration: configuration, neurons: neurons, bands: bands, samples: [])
        let path = dir + "/samples.json"
        if let data = FileManager.default.contents(atPath: path) {
            let old: Manifest
            do { old = try JSONDecoder().decode(Manifest.self, from: data) } catch {
                throw SamplerError("\(path): exists but is not a samples.json of inverse-set (\(error)); choose another --out")
            }
            // -n may change between runs: a larger n extends the folder.
            guard old.configuration.filter({ $0.key != "n" }) == configuration.filter({ $0.key != "n" }),
                  old.neurons == neurons, old.bands == bands else {
                throw SamplerError("\(dir) holds a different run (its samples.json has other settings); rerun with the same flags to resume, or choose another --out")
            }
            let c = try NPY.read(dir + "/codes.npy"), e = try NPY.read(dir + "/embeddings.npy")
            let n = old.samples.count
            // The arrays are replaced before samples.json, so a run killed in
            // between leaves them longer than the manifest: the manifest
            // counts, the extra rows are dropped (and sampled again).
            guard c.shape.rank == 2, c.shape[0] >= n, e.shape.rank == 2, e.shape[0] >= n else {
                throw SamplerError("\(dir): codes.npy / embeddings.npy hold fewer rows than samples.json lists (\(n)); the folder is damaged: choose another --out")
            }
            codes = (0..<n).map { Array(UnsafeBufferPointer(start: c.data + $0 * c.shape[1], count: c.shape[1])) }
            embeddings = (0..<n).map { Array(UnsafeBufferPointer(start: e.data + $0 * e.shape[1], count: e.shape[1])) }
            manifest = old
            // Arrays that match the manifest are extended in place; longer
            // ones (a killed run) are rewritten whole at the next flush.
            rowsOnDisk = c.shape[0] == n && e.shape[0] == n ? n : 0
            manifest.configuration = configuration
            manifest.summary = nil
        }
    }

    func samples(band: Int) -> [Sample] {
        manifest.samples.enumerated().filter { $1.band == band }.map { i, r in
            Sample(code: codes[i], activations: r.activations, embedding: embeddings[i], step: r.step, image: nil)
        }
    }

    /// Appends samples: PNGs first, then the arrays and the manifest (see
    /// `flush`).
    func append(_ batch: [Sample], band: Int, image: (Sample) -> PNGImage?) throws {
        for s in batch {
            let index = manifest.samples.count
            let file = String(format: "samples/%04d.png", index)
            if let img = image(s) { try img.write(to: dir + "/" + file) }
            manifest.samples.append(Record(index: index, band: band, activations: s.activations, step: s.step, file: file))
            codes.append(s.code)
            embeddings.append(s.embedding)
        }
        try flush()
    }

    /// Writes what `append` added: the new rows of codes.npy and
    /// embeddings.npy (appended in place; the first time, or when a file is
    /// not one we can extend, the whole array is replaced atomically), then
    /// samples.json, replaced atomically. samples.json is the commit point: a
    /// run killed before it leaves the arrays with extra rows, which a resume
    /// drops and overwrites.
    func flush() throws {
        try save(codes, "codes.npy")
        try save(embeddings, "embeddings.npy")
        rowsOnDisk = codes.count
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(manifest)
        try atomically(dir + "/samples.json") { p in
            guard FileManager.default.createFile(atPath: p, contents: data) else { throw SamplerError("\(p): cannot be written") }
        }
    }

    /// How many rows of the arrays are on disk (known to be, this process).
    private var rowsOnDisk = 0

    private func save(_ rows: [[Float]], _ name: String) throws {
        let path = dir + "/" + name, width = rows.first?.count ?? 0
        if rowsOnDisk > 0, rowsOnDisk == rows.count { return }   // nothing new
        if rowsOnDisk > 0, rowsOnDisk < rows.count, width > 0 {
            let added = rows[rowsOnDisk...].flatMap { $0 }
            let done = try added.withUnsafeBufferPointer {
                try NPY.appendRows($0, columns: width, rowsBefore: rowsOnDisk, to: path)
            }
            if done { return }
        }
        try atomically(path) { try NPY.write(Self.matrix(rows), to: $0, growable: true) }
    }

    static func matrix(_ rows: [[Float]]) -> Tensor {
        let w = rows.first?.count ?? 0
        return Tensor(shape: [rows.count, w], values: rows.flatMap { $0 })
    }

    func atomically(_ path: String, _ write: (String) throws -> Void) throws {
        let tmp = path + ".part"
        try write(tmp)
        if rename(tmp, path) != 0 { throw SamplerError("\(path): cannot be replaced (\(String(cString: strerror(errno))))") }
    }
}
