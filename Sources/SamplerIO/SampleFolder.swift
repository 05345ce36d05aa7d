import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler

/// The output folder of `sample`, written as samples arrive so that an
/// interrupted run loses nothing, and read back to resume (docs/outputs.md
/// has the schema):
///
///     samples/NNNN.png   one image per accepted sample
///     samples.json       settings, per-sample records, segments, summary
///     state.json         the sampler's state after the last accepted batch, per band
///                        (state.prev.json: the one before, until samples.json is replaced)
///     codes.npy          n x d codes;  embeddings.npy: n x D E-features
///     sheet.png          contact sheet, one labelled row per band
///     report.html        sheet, activation histograms, figures
///
/// Write order: PNGs, the arrays (extended in place), state.json, then
/// samples.json, replaced atomically: samples.json is the commit point. A run
/// killed before it leaves extra rows in the arrays (dropped on resume) and
/// possibly a newer state.json (recognised by its sample count; the state of
/// the last commit is then state.prev.json).
public final class SampleFolder {
    public static let format = 2

    public struct Record: Codable, Sendable {
        public var index: Int
        public var band: Int
        public var activations: [Float]
        /// Gradient steps since the start of the run when it was accepted.
        public var step: Int
        /// Walker (0..<K) that produced it.
        public var walker: Int
        /// Dataset index of the real image whose code the walker started from (data variant).
        public var start: Int?
        /// Steps the walker took from that start.
        public var walk: Int
        public var file: String
    }

    /// What makes two runs the same run (a resume must match all but `n`).
    public struct Settings: Codable, Sendable, Equatable {
        public var pipeline: String
        public var method: String
        public var variant: String?
        public var k: Int
        public var seed: UInt64
        public var neurons: [String]
        public var ranges: [String]
        public var maxSteps: Int

        enum CodingKeys: String, CodingKey { case pipeline, method, variant, k, seed, neurons, ranges, maxSteps = "max_steps" }

        public init(pipeline: String, method: String, variant: String?, k: Int, seed: UInt64, neurons: [String],
                    ranges: [String], maxSteps: Int) {
            self.pipeline = pipeline; self.method = method; self.variant = variant; self.k = k; self.seed = seed
            self.neurons = neurons; self.ranges = ranges; self.maxSteps = maxSteps
        }

        /// The settings that differ from `other`, by name.
        public func differences(from other: Settings) -> [String] {
            var out: [String] = []
            func check<T: Equatable>(_ name: String, _ a: T, _ b: T) { if a != b { out.append("\(name) \(b) -> \(a)") } }
            check("pipeline", pipeline, other.pipeline); check("method", method, other.method)
            check("variant", variant ?? "-", other.variant ?? "-"); check("-k", k, other.k); check("--seed", seed, other.seed)
            check("--neuron", neurons, other.neurons); check("--range", ranges, other.ranges)
            check("--max-steps", maxSteps, other.maxSteps)
            return out
        }
    }

    /// One invocation of `sample` on the folder.
    public struct Segment: Codable, Sendable {
        public var started: String
        public var command: [String]
        public var n: Int
        public var steps: Int
        public var seconds: Double
        public var accepted: Int
        /// The tool's version and the source commit of the build that ran it.
        public var tool: String?
        public var commit: String?
    }

    public struct Manifest: Codable, Sendable {
        public var format: Int
        public var tool: String
        public var settings: Settings
        public var n: Int
        public var neurons: [String]
        public var bands: [[Band]]
        public var samples: [Record]
        public var segments: [Segment]
        /// Per band: the gradient steps taken so far (over all segments).
        public var steps: [Int]
        public var summary: [String: Double]?
        /// FNV-1a (64 bits, hex) of the committed rows of codes.npy, checked on resume.
        public var codesChecksum: String?
        /// The weights files of the last segment, with their SHA-256.
        public var weights: [WeightFileRecord]?
        /// Per band, per neuron: the activation closest to the band that the
        /// sampler reached (written when a band ends short of n samples).
        public var closest: [[Float]?]?
    }

    public let dir: String
    public private(set) var manifest: Manifest
    public private(set) var codes: [[Float]] = []
    public private(set) var embeddings: [[Float]] = []
    /// Per band, the sampler state saved with the last committed batch.
    public private(set) var states: [Int: SamplerState] = [:]

    static func encoder() -> JSONEncoder {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return enc
    }
    static func decoder() -> JSONDecoder {
        let dec = JSONDecoder()
        dec.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return dec
    }

    /// Opens `dir` for a run with `settings`: a new folder, or the folder of
    /// an earlier run of the same settings (any `n`) to extend or resume.
    public init(dir: String, settings: Settings, n: Int, neurons: [String], bands: [[Band]], tool: String) throws {
        self.dir = dir
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), !isDir.boolValue {
            throw SamplerError("\(dir): is a file, not a folder; choose another --out")
        }
        do { try FileManager.default.createDirectory(atPath: dir + "/samples", withIntermediateDirectories: true) } catch {
            throw SamplerError("\(dir): cannot create the output folder (\((error as NSError).localizedFailureReason ?? error.localizedDescription))")
        }
        lock = try Self.lock(dir)
        manifest = Manifest(format: Self.format, tool: tool, settings: settings, n: n, neurons: neurons, bands: bands,
                            samples: [], segments: [], steps: Array(repeating: 0, count: bands.count), summary: nil)
        let path = dir + "/samples.json"
        guard let data = FileManager.default.contents(atPath: path) else { return }
        struct Version: Decodable { var format: Int? }
        guard (try? Self.decoder().decode(Version.self, from: data))?.format == Self.format else {
            throw SamplerError("\(path): written by another version of inverse-set (or not by inverse-set); choose another --out")
        }
        let old: Manifest
        do { old = try Self.decoder().decode(Manifest.self, from: data) } catch {
            throw SamplerError("\(path): exists but cannot be read (\(error)); choose another --out")
        }
        let diff = settings.differences(from: old.settings)
        guard diff.isEmpty, old.neurons == neurons, old.bands == bands else {
            var what = diff
            if old.neurons != neurons { what.append("neurons \(old.neurons) -> \(neurons)") }
            if old.bands != bands {
                func text(_ b: [[Band]]) -> String { b.map { $0.map(\.description).joined(separator: " ") }.joined(separator: ", ") }
                what.append("bands \(text(old.bands)) -> \(text(bands))\(diff.isEmpty ? " (percentile bands over another dataset?)" : "")")
            }
            throw SamplerError("\(dir) holds a different run (\(what.joined(separator: ", "))); rerun with the earlier flags to resume, or choose another --out")
        }
        let c = try NPY.read(dir + "/codes.npy"), e = try NPY.read(dir + "/embeddings.npy")
        let rows = old.samples.count
        guard c.shape.rank == 2, c.shape[0] >= rows, e.shape.rank == 2, e.shape[0] >= rows else {
            throw SamplerError("\(dir): codes.npy / embeddings.npy hold fewer rows than samples.json lists (\(rows)); the folder is damaged: choose another --out")
        }
        codes = (0..<rows).map { Array(UnsafeBufferPointer(start: c.data + $0 * c.shape[1], count: c.shape[1])) }
        embeddings = (0..<rows).map { Array(UnsafeBufferPointer(start: e.data + $0 * e.shape[1], count: e.shape[1])) }
        if let sum = old.codesChecksum, sum != Self.checksum(codes) {
            throw SamplerError("\(dir): codes.npy does not hold the codes samples.json committed (checksum \(Self.checksum(codes)), expected \(sum)); the folder was changed by something else: choose another --out")
        }
        manifest = old
        manifest.n = n
        manifest.tool = tool
        manifest.summary = nil
        rowsOnDisk = c.shape[0] == rows && e.shape[0] == rows ? rows : 0
        // The saved states count only when they belong to the committed samples:
        // state.json, or state.prev.json when a run stopped between the two writes.
        for name in ["state.json", "state.prev.json"] {
            if let s = FileManager.default.contents(atPath: dir + "/" + name),
               let saved = try? Self.decoder().decode(SavedStates.self, from: s), saved.samples == rows {
                states = Dictionary(uniqueKeysWithValues: saved.bands.map { ($0.band, $0.state) })
                break
            }
        }
    }

    /// Opens the folder of a finished (or interrupted) run as it is, to
    /// evaluate or report on it.
    public convenience init(existing dir: String) throws {
        guard let data = FileManager.default.contents(atPath: dir + "/samples.json") else {
            throw SamplerError("\(dir): no samples.json; is it a folder written by inverse-set sample?")
        }
        struct Header: Decodable { var format: Int?; var settings: Settings?; var n: Int?; var neurons: [String]?; var bands: [[Band]]?; var tool: String? }
        guard let h = try? Self.decoder().decode(Header.self, from: data), h.format == Self.format,
              let settings = h.settings, let n = h.n, let neurons = h.neurons, let bands = h.bands else {
            throw SamplerError("\(dir)/samples.json: not a samples.json of this version of inverse-set")
        }
        try self.init(dir: dir, settings: settings, n: n, neurons: neurons, bands: bands, tool: h.tool ?? "")
    }

    /// The open lock file: one writer per folder.
    private let lock: Int32

    deinit { close(lock) }

    /// Takes DIR/.lock (flock, released when the process ends however it
    /// ends) or names the process that holds it.
    static func lock(_ dir: String) throws -> Int32 {
        let path = dir + "/.lock"
        let fd = open(path, O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw SamplerError("\(path): cannot be opened (\(String(cString: strerror(errno))))") }
        // A few tries: `atlas --status` and the local sweep's progress line probe
        // the lock of unfinished folders for an instant.
        var locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        for _ in 0..<5 where !locked {
            usleep(50_000)
            locked = flock(fd, LOCK_EX | LOCK_NB) == 0
        }
        if !locked {
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = read(fd, &buffer, 31)
            let holder = String(decoding: buffer.prefix(max(0, n)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw SamplerError("\(dir) is in use by another inverse-set process (pid \(holder.isEmpty ? "unknown" : holder)); wait for it to finish, stop it, or choose another --out")
        }
        let pid = Data("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, pid.count, 0) }
        return fd
    }

    /// FNV-1a over the floats' bytes, as 16 hex digits.
    static func checksum(_ rows: [[Float]]) -> String { String(format: "%016llx", hash(rows[...])) }

    /// FNV-1a state after `rows`, continuing from `h` (so appended rows extend it).
    static func hash(_ rows: ArraySlice<[Float]>, from start: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var h = start
        for r in rows {
            for v in r {
                var bits = v.bitPattern
                for _ in 0..<4 { h = (h ^ UInt64(bits & 0xff)) &* 0x100_0000_01b3; bits >>= 8 }
            }
        }
        return h
    }
    /// The hash of the codes held, and how many rows it covers.
    private var codesHash: (rows: Int, value: UInt64) = (0, 0xcbf2_9ce4_8422_2325)

    struct SavedStates: Codable {
        struct Entry: Codable { var band: Int; var state: SamplerState }
        var samples: Int
        var bands: [Entry]
    }

    public func samples(band: Int) -> [Sample] {
        manifest.samples.enumerated().filter { $1.band == band }.map { i, r in
            Sample(code: codes[i], activations: r.activations, embedding: embeddings[i], step: r.step, image: nil,
                   walker: r.walker, start: r.start, walk: r.walk)
        }
    }

    /// Opens a segment (one invocation); its steps and seconds grow with
    /// every commit until the process ends.
    public func beginSegment(command: [String], tool: String? = nil, commit: String? = nil) {
        segmentStart = Date()
        manifest.segments.append(Segment(started: ISO8601DateFormatter().string(from: segmentStart), command: command,
                                         n: manifest.n, steps: 0, seconds: 0, accepted: 0, tool: tool, commit: commit))
    }

    /// Records the weights files the run reads.
    public func setWeights(_ w: [WeightFileRecord]) { manifest.weights = w }

    /// Records the closest activations reached in a band that ended short (nil: it did not).
    public func setClosest(_ values: [Float]?, band: Int) {
        var c = manifest.closest ?? []
        while c.count < manifest.bands.count { c.append(nil) }
        guard band < c.count else { return }
        c[band] = values
        manifest.closest = c
    }
    private var segmentStart = Date()

    /// Band `band` has taken `steps` gradient steps in all (over all segments).
    public func setSteps(_ steps: Int, band: Int) {
        guard band < manifest.steps.count else { return }
        if !manifest.segments.isEmpty {
            manifest.segments[manifest.segments.count - 1].steps += max(0, steps - manifest.steps[band])
            manifest.segments[manifest.segments.count - 1].seconds = Date().timeIntervalSince(segmentStart)
        }
        manifest.steps[band] = max(manifest.steps[band], steps)
    }

    /// Totals over all segments.
    public var totalSteps: Int { manifest.steps.reduce(0, +) }
    public var totalSeconds: Double { manifest.segments.reduce(0) { $0 + $1.seconds } }

    /// Appends samples of `band` with the sampler state after their step:
    /// PNGs first, then the arrays, the state and the manifest.
    public func append(_ batch: [Sample], band: Int, state: SamplerState?, image: (Sample) -> PNGImage?) throws {
        for s in batch {
            let index = manifest.samples.count
            let file = String(format: "samples/%04d.png", index)
            if let img = image(s) { try img.write(to: dir + "/" + file) }
            manifest.samples.append(Record(index: index, band: band, activations: s.activations, step: s.step,
                                           walker: s.walker, start: s.start, walk: s.walk, file: file))
            codes.append(s.code)
            embeddings.append(s.embedding)
        }
        if let state { states[band] = state; setSteps(state.step, band: band) }
        if !manifest.segments.isEmpty { manifest.segments[manifest.segments.count - 1].accepted += batch.count }
        codesHash = (codes.count, Self.hash(codes[codesHash.rows...], from: codesHash.value))
        manifest.codesChecksum = String(format: "%016llx", codesHash.value)
        try flush()
    }

    /// Writes the new rows of codes.npy and embeddings.npy (appended in
    /// place; the first time, or when a file cannot be extended, replaced
    /// whole), state.json, then samples.json, each replaced atomically.
    public func flush() throws {
        try save(codes, "codes.npy")
        try save(embeddings, "embeddings.npy")
        rowsOnDisk = codes.count
        let saved = SavedStates(samples: manifest.samples.count,
                                bands: states.keys.sorted().map { SavedStates.Entry(band: $0, state: states[$0]!) })
        // The state of the last commit stays as state.prev.json until samples.json
        // of the new one is in place.
        let statePath = dir + "/state.json"
        if FileManager.default.fileExists(atPath: statePath) { _ = rename(statePath, dir + "/state.prev.json") }
        try write(try Self.encoder().encode(saved), to: statePath)
        try write(try Self.encoder().encode(manifest), to: dir + "/samples.json")
    }

    public func setSummary(_ s: [String: Double]) { manifest.summary = s }

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

    private func write(_ data: Data, to path: String) throws {
        try atomically(path) { p in
            guard FileManager.default.createFile(atPath: p, contents: data) else { throw SamplerError("\(p): cannot be written") }
        }
    }

    func atomically(_ path: String, _ write: (String) throws -> Void) throws {
        let tmp = path + ".part"
        try write(tmp)
        if rename(tmp, path) != 0 { throw SamplerError("\(path): cannot be replaced (\(String(cString: strerror(errno))))") }
    }
}
