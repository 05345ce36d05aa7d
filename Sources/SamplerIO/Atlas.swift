import Foundation
import GraphIR
import ImageIO
import Runtime
import Sampler

/// A sweep over the units of one layer: one resumable sample folder per unit,
/// an index over all of them (docs/atlas.md).
///
///     DIR/plan.json                  what to sample: layer, units, bands per unit, seeds, settings
///     DIR/cache/*.npy                the shared passes over the dataset (computed once by `plan`)
///     DIR/units/<blob>_<unit>/       a sample folder (samples.json, report.html, ...) and, when
///                                    finished, unit.json; error.txt when the unit failed
///     DIR/thumbs/<blob>_<unit>_*.png strips of samples per band and of the top real images
///     DIR/atlas.json, DIR/index.html the merged results (`merge`)
public enum Atlas {
    /// What the sweep samples, fixed when it starts (a rerun must match it).
    public struct Plan: Codable, Sendable, Equatable {
        public var format = 1
        public var pipeline: String
        public var layer: String
        /// "centre", "Y,X", "mean", or "unit" for vector blobs.
        public var position: String
        public var units: [Int]
        /// The bands as given (numbers or percentiles, e.g. "p90:p99").
        public var bandSpecs: [String]
        /// bands[i][j]: band j of units[i], in activation units.
        public var bands: [[Band]]
        public var n: Int
        public var k: Int
        public var seed: UInt64
        public var maxSteps: Int
        public var method: String
        public var variant: String
        /// The evaluation dataset; "" when the sweep has none (numeric bands
        /// only, no code prior from a cache, no evaluation).
        public var dataset: String
        public var split: String
        public var evaluationImages: Int
        public var priorCount: Int
        public var threads: Int
        /// Units left out when planning, with the reason (a band that is empty
        /// over the dataset, e.g. p95:p99.5 of a unit that is 0 on 99.5% of it).
        public var skipped: [Failure] {
            get { skippedUnits ?? [] }
            set { skippedUnits = newValue }
        }
        /// Optional in the file: plans written before units could be skipped have none.
        var skippedUnits: [Failure]? = nil

        /// The units that are sampled: `units` less `skipped`.
        public var runnable: [Int] {
            let out = Set(skipped.map(\.unit))
            return units.filter { !out.contains($0) }
        }

        public init(pipeline: String, layer: String, position: String, units: [Int], bandSpecs: [String], bands: [[Band]],
                    n: Int, k: Int, seed: UInt64, maxSteps: Int, method: String, variant: String, dataset: String,
                    split: String, evaluationImages: Int, priorCount: Int, threads: Int) {
            self.pipeline = pipeline; self.layer = layer; self.position = position; self.units = units
            self.bandSpecs = bandSpecs; self.bands = bands; self.n = n; self.k = k; self.seed = seed
            self.maxSteps = maxSteps; self.method = method; self.variant = variant; self.dataset = dataset
            self.split = split; self.evaluationImages = evaluationImages; self.priorCount = priorCount; self.threads = threads
        }

        enum CodingKeys: String, CodingKey {
            case format, pipeline, layer, position, units, bandSpecs = "band_specs", bands, n, k, seed
            case maxSteps = "max_steps", method, variant, dataset, split, evaluationImages = "evaluation_images"
            case priorCount = "prior_count", threads, skippedUnits = "skipped"
        }

        /// The neuron spec of unit `u` (its band comes from `bands`).
        public func neuron(_ u: Int) -> String { Atlas.neuron(layer: layer, unit: u, position: position) }

        /// The seed of unit `u`: derived from the sweep's seed and the unit alone,
        /// so any unit rerun by itself gives the same samples.
        public func seed(of u: Int) -> UInt64 {
            var g = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: u) &* 0x9E37_79B9_7F4A_7C15))
            return g.next()
        }

        public func folderName(_ u: Int) -> String { "\(NPY.fileSafe(layer))_\(u)" }
    }

    /// One finished unit, as the index shows it.
    public struct UnitResult: Codable, Sendable, Equatable {
        public var unit: Int
        public var neuron: String
        public var bands: [Band]
        /// Per band: samples accepted, and the evaluation figures (samples and control).
        public var accepted: [Int]
        public var samples: [SampleQuality]
        public var control: [SampleQuality]
        public var realInBand: [Int]
        /// Over the evaluation images: min, median, 99th percentile, max of the unit.
        public var activation: [Float]
        public var inBand: Double
        public var steps: Int
        public var seconds: Double
        /// Checksum of the unit's codes.npy (equal for equal runs, whatever the backend).
        public var codesChecksum: String?
        /// Dataset indices of the evaluation images with the highest activations.
        public var topImages: [Int]
        public var notes: [String]

        public init(unit: Int, neuron: String, bands: [Band], accepted: [Int], samples: [SampleQuality], control: [SampleQuality],
                    realInBand: [Int], activation: [Float], inBand: Double, steps: Int, seconds: Double, codesChecksum: String?,
                    topImages: [Int], notes: [String]) {
            self.unit = unit; self.neuron = neuron; self.bands = bands; self.accepted = accepted; self.samples = samples
            self.control = control; self.realInBand = realInBand; self.activation = activation; self.inBand = inBand
            self.steps = steps; self.seconds = seconds; self.codesChecksum = codesChecksum; self.topImages = topImages; self.notes = notes
        }

        enum CodingKeys: String, CodingKey {
            case unit, neuron, bands, accepted, samples, control, realInBand = "real_in_band", activation
            case inBand = "in_band", steps, seconds, codesChecksum = "codes_checksum", topImages = "top_images", notes
        }
    }

    public struct Failure: Codable, Sendable, Equatable { public var unit: Int; public var error: String }

    /// atlas.json: the plan and every finished unit, for numpy/pandas users.
    public struct Index: Codable, Sendable {
        public init(plan: Plan, units: [UnitResult], failed: [Failure], pending: [Int]) {
            self.plan = plan; self.units = units; self.failed = failed; self.pending = pending
        }
        public var plan: Plan
        public var units: [UnitResult]
        public var failed: [Failure]
        public var pending: [Int]
    }

    // MARK: - Parsing

    /// "0-255", "0-9,17" -> the unit list, in order, without repeats.
    public static func parseUnits(_ s: String, count: Int) throws -> [Int] {
        var out: [Int] = [], seen = Set<Int>()
        for part in s.split(separator: ",") {
            let r = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            let range: ClosedRange<Int>
            if r.count == 1, let a = r[0] { range = a...a }
            else if r.count == 2, let a = r[0], let b = r[1], a <= b { range = a...b }
            else { throw SamplerError("--units '\(s)': expected ranges and lists like 0-255 or 0-9,17") }
            guard range.lowerBound >= 0, range.upperBound < count else {
                throw SamplerError("--units '\(s)': the layer has units 0-\(count - 1)")
            }
            for u in range where seen.insert(u).inserted { out.append(u) }
        }
        guard !out.isEmpty else { throw SamplerError("--units '\(s)' names no unit") }
        return out
    }

    /// One bound of a band: a number, "pNN" (percentile of the unit over the
    /// dataset), "min" or "max".
    public enum Bound: Equatable, Sendable {
        case value(Float), percentile(Double)

        /// The bound in activation units: a percentile of `values` (one per image).
        public func value(over values: [Double]) -> Float {
            switch self {
            case .value(let v): return v
            case .percentile(let p): return Float(SampleQuality.quantile(values, p / 100))
            }
        }
    }

    public static func parseBound(_ s: String, in spec: String) throws -> Bound {
        let t = s.trimmingCharacters(in: .whitespaces)
        if t == "min" { return .percentile(0) }
        if t == "max" { return .percentile(100) }
        if t.hasPrefix("p"), let p = Double(t.dropFirst()), p >= 0, p <= 100 { return .percentile(p) }
        if let v = Float(t), v.isFinite { return .value(v) }
        throw SamplerError("band '\(spec)': '\(t)' is not a number, pNN (0 to 100), min or max")
    }

    /// "p90:p99,p99:max" or "1:2,2:3" -> per band its two bounds.
    public static func parseBands(_ s: String) throws -> [(String, Bound, Bound)] {
        try s.split(separator: ",").map { part in
            let spec = String(part)
            let ends = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard ends.count == 2 else { throw SamplerError("band '\(spec)': expected LOW:HIGH, e.g. p90:p99 or 1:2") }
            return (spec, try parseBound(ends[0], in: spec), try parseBound(ends[1], in: spec))
        }
    }

    // MARK: - Planning and the shared passes

    /// The shared passes: the evaluation images' activations of every unit,
    /// features and codes; the code prior's codes, real and reconstructed
    /// features and activations. Written once under DIR/cache.
    public struct Cache: Sendable {
        public var evalActivations: PointSet      // M x C
        public var evalEmbeddings: PointSet
        public var evalCodes: PointSet
        public var evalLabels: [Int]?
        public var priorCodes: PointSet
        public var priorRealEmbeddings: PointSet
        public var priorRealActivations: PointSet   // N x C
        public var priorEmbeddings: PointSet
        public var priorActivations: PointSet       // N x C
        public var priorSources: [Int]

        static let names = ["eval_activations", "eval_embeddings", "eval_codes", "prior_codes", "prior_real_embeddings",
                            "prior_real_activations", "prior_embeddings", "prior_activations"]

        func write(to dir: String) throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let sets = [evalActivations, evalEmbeddings, evalCodes, priorCodes, priorRealEmbeddings, priorRealActivations,
                        priorEmbeddings, priorActivations]
            for (name, set) in zip(Self.names, sets) {
                try NPY.write(Tensor(shape: [set.count, set.dim], values: set.values), to: "\(dir)/\(name).npy")
            }
            let extra = Extra(evalLabels: evalLabels, priorSources: priorSources)
            guard FileManager.default.createFile(atPath: dir + "/cache.json", contents: try JSONEncoder().encode(extra)) else {
                throw SamplerError("\(dir)/cache.json: cannot be written")
            }
        }

        struct Extra: Codable { var evalLabels: [Int]?; var priorSources: [Int] }

        public static func read(from dir: String) throws -> Cache {
            func set(_ name: String) throws -> PointSet {
                let t = try NPY.read("\(dir)/\(name).npy")
                guard t.shape.rank == 2 else { throw SamplerError("\(dir)/\(name).npy: not a matrix; delete \(dir) to recompute it") }
                return PointSet(flat: t.array, dim: max(t.shape[1], 1))
            }
            guard let data = FileManager.default.contents(atPath: dir + "/cache.json"),
                  let extra = try? JSONDecoder().decode(Extra.self, from: data) else {
                throw SamplerError("\(dir)/cache.json: missing or damaged; delete \(dir) to recompute the cache")
            }
            let s = try names.map(set)
            return Cache(evalActivations: s[0], evalEmbeddings: s[1], evalCodes: s[2], evalLabels: extra.evalLabels,
                         priorCodes: s[3], priorRealEmbeddings: s[4], priorRealActivations: s[5], priorEmbeddings: s[6],
                         priorActivations: s[7], priorSources: extra.priorSources)
        }

        /// The code prior of unit column `c`.
        func prior(unit c: Int) -> CodePrior {
            CodePrior(codes: priorCodes, realEmbeddings: priorRealEmbeddings,
                      realActivations: column(priorRealActivations, c), embeddings: priorEmbeddings,
                      activations: column(priorActivations, c), sources: priorSources)
        }

        /// The evaluation scores of unit column `c`.
        func scores(unit c: Int) -> DatasetScores {
            DatasetScores(indices: Array(0..<evalActivations.count), activations: column(evalActivations, c),
                          embeddings: evalEmbeddings, codes: evalCodes, labels: evalLabels)
        }

        func column(_ s: PointSet, _ c: Int) -> [[Float]] { (0..<s.count).map { [s.values[$0 * s.dim + c]] } }
    }

    /// Sets the pipeline's neurons to every unit of the layer (band irrelevant).
    /// The neuron spec of `unit` of `layer` at `position` ("unit", "centre", "mean" or "Y,X").
    static func neuron(layer: String, unit u: Int, position: String) -> String {
        switch position {
        case "unit", "centre": return "\(layer):\(u)"
        case "mean": return "\(layer):\(u):mean"
        default: return "\(layer):\(u)@\(position)"
        }
    }

    static func allUnits(_ loaded: LoadedPipeline, layer: String, position: String) throws -> Int {
        let f = loaded.pipeline.classifier
        guard let v = f.graph.value(named: layer) ?? f.graph.output(ofLayer: layer) else {
            throw SamplerError("--layer '\(layer)': the classifier has no blob '\(layer)' (blobs: \(f.graph.blobNames.joined(separator: ", ")))")
        }
        let count = f.shapes[v.index].rank >= 2 ? f.shapes[v.index][1] : 1
        let any = try Band(low: 0, high: 1)
        let specs = try (0..<count).map { u in (try NeuronSpec(parsing: neuron(layer: layer, unit: u, position: position)), any) }
        try loaded.pipeline.setNeurons(specs)
        return count
    }

    /// Reads the layer's activations over the datasets once, resolves the
    /// bands, and writes plan.json and the cache. A plan that exists must
    /// match `plan` in every setting (a rerun of the same command); then
    /// nothing is recomputed.
    public static func prepare(dir: String, plan draft: Plan, unitsSpec: String?, bandsSpec: String, loaded: LoadedPipeline,
                               log: (String) -> Void) throws -> Plan {
        let planPath = dir + "/plan.json"
        try FileManager.default.createDirectory(atPath: dir + "/units", withIntermediateDirectories: true)
        let count = try allUnits(loaded, layer: draft.layer, position: draft.position)
        var plan = draft
        plan.units = try unitsSpec.map { try parseUnits($0, count: count) } ?? Array(0..<count)
        let parsed = try parseBands(bandsSpec)
        plan.bandSpecs = parsed.map(\.0)
        if let data = FileManager.default.contents(atPath: planPath) {
            let old: Plan
            do { old = try JSONDecoder().decode(Plan.self, from: data) } catch {
                throw SamplerError("\(planPath): cannot be read (\(error)); choose another --out")
            }
            var compare = old
            compare.bands = plan.bands
            compare.evaluationImages = plan.evaluationImages
            compare.skippedUnits = plan.skippedUnits
            guard compare == plan else {
                throw SamplerError("\(dir) holds another sweep (its plan.json differs in \(differences(old, plan).joined(separator: ", "))); rerun with its settings, or choose another --out")
            }
            if plan.dataset.isEmpty || FileManager.default.fileExists(atPath: dir + "/cache/cache.json") { return old }
        }
        if plan.dataset.isEmpty {
            // No dataset: numeric bands, the same for every unit.
            let bands = try parsed.map { spec, lo, hi in
                guard case .value(let a) = lo, case .value(let b) = hi else {
                    throw SamplerError("band '\(spec)': percentiles need a dataset (--dataset D, or data.dataset in the pipeline); give numbers, e.g. 1:2")
                }
                guard a < b else { throw SamplerError("band '\(spec)' is empty: its low end must lie below its high end") }
                return try Band(low: a, high: b)
            }
            plan.bands = Array(repeating: bands, count: plan.units.count)
            try writeJSON(plan, to: planPath)
            return plan
        }
        log("atlas: reading \(plan.dataset) (\(plan.split)) and the code prior for \(count) units of \(plan.layer)")
        let evalData = try ImageDataset.load(plan.dataset, split: plan.split)
        let m = evalData.count
        let eval = try loaded.score(evalData, indices: Array(0..<m), withCodes: true)
        guard let evalCodes = eval.codes else { throw SamplerError("internal: no codes from the evaluation pass") }
        // The pipeline's prior split, as `sample` reads it.
        let prior = try SamplingRun.prior(loaded, dataset: nil, count: plan.priorCount)
        let cache = Cache(evalActivations: PointSet(rows: eval.activations, dim: count), evalEmbeddings: eval.embeddings,
                          evalCodes: evalCodes, evalLabels: eval.labels, priorCodes: prior.codes,
                          priorRealEmbeddings: prior.realEmbeddings, priorRealActivations: PointSet(rows: prior.realActivations, dim: count),
                          priorEmbeddings: prior.embeddings, priorActivations: PointSet(rows: prior.activations, dim: count),
                          priorSources: prior.sources)
        // Bands per unit from the evaluation images' activations.
        plan.evaluationImages = m
        // A unit whose band is empty (both ends equal: a unit that is 0 on more
        // than 99.5% of the images has p95 = p99.5 = 0) is skipped, not sampled.
        plan.skipped = []
        plan.bands = try plan.units.map { u in
            let values = (0..<m).map { Double(cache.evalActivations.values[$0 * count + u]) }
            var bands: [Band] = []
            for (spec, lo, hi) in parsed {
                let a = lo.value(over: values), b = hi.value(over: values)
                guard a < b else {
                    plan.skipped.append(Failure(unit: u, error: "band '\(spec)' is [\(Report.short(a)), \(Report.short(b))] over the dataset, which is empty; choose other bands for it"))
                    return []
                }
                bands.append(try Band(low: a, high: b))
            }
            return bands
        }
        if plan.runnable.isEmpty {
            throw SamplerError("every unit's bands are empty over the dataset (e.g. unit \(plan.units[0]): \(plan.skipped.first?.error ?? "")); choose other bands")
        }
        if !plan.skipped.isEmpty {
            log("atlas: \(plan.skipped.count) of \(plan.units.count) units skipped, their bands being empty over the dataset (units \(plan.skipped.prefix(12).map { String($0.unit) }.joined(separator: ", "))\(plan.skipped.count > 12 ? ", ..." : ""))")
        }
        try cache.write(to: dir + "/cache")
        try writeJSON(plan, to: planPath)
        return plan
    }

    static func differences(_ a: Plan, _ b: Plan) -> [String] {
        var out: [String] = []
        if a.pipeline != b.pipeline { out.append("--pipeline") }
        if a.layer != b.layer { out.append("--layer") }
        if a.position != b.position { out.append("--position") }
        if a.units != b.units { out.append("--units") }
        if a.bandSpecs != b.bandSpecs { out.append("--bands") }
        if a.n != b.n { out.append("-n") }
        if a.k != b.k { out.append("-k") }
        if a.seed != b.seed { out.append("--seed") }
        if a.maxSteps != b.maxSteps { out.append("--max-steps") }
        if a.method != b.method || a.variant != b.variant { out.append("--method/--variant") }
        if a.dataset != b.dataset || a.split != b.split { out.append("--dataset/--split") }
        if a.priorCount != b.priorCount { out.append("--prior-count") }
        if a.threads != b.threads { out.append("--threads") }
        return out.isEmpty ? ["its format"] : out
    }

    public static func readPlan(_ dir: String) throws -> Plan {
        guard let data = FileManager.default.contents(atPath: dir + "/plan.json") else {
            throw SamplerError("\(dir): no plan.json; is it a folder written by inverse-set atlas?")
        }
        do { return try JSONDecoder().decode(Plan.self, from: data) } catch {
            throw SamplerError("\(dir)/plan.json: cannot be read (\(error))")
        }
    }

    // MARK: - Units

    public enum UnitState: String, Sendable { case done, failed, running, pending }

    public static func state(_ dir: String, plan: Plan, unit u: Int) -> UnitState {
        let folder = "\(dir)/units/\(plan.folderName(u))"
        if FileManager.default.fileExists(atPath: folder + "/unit.json") { return .done }
        if isLocked(folder) { return .running }
        if FileManager.default.fileExists(atPath: folder + "/error.txt") { return .failed }
        return .pending
    }

    /// Whether another process holds the folder's sample lock.
    static func isLocked(_ folder: String) -> Bool {
        let fd = open(folder + "/.lock", O_RDWR)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { flock(fd, LOCK_UN); return false }
        return true
    }

    /// Samples, evaluates and summarises one unit (resuming its folder), and
    /// writes unit.json; a failure is written to error.txt and thrown.
    public static func runUnit(_ u: Int, dir: String, plan: Plan, cache: Cache?, evaluation: ImageDataset?, loaded: LoadedPipeline,
                               command: [String], tool: String) throws -> UnitResult {
        guard let index = plan.units.firstIndex(of: u) else { throw SamplerError("unit \(u) is not in the plan") }
        let folderDir = "\(dir)/units/\(plan.folderName(u))"
        do {
            try? FileManager.default.removeItem(atPath: folderDir + "/error.txt")
            let bands = plan.bands[index]
            let neuron = plan.neuron(u)
            let spec = try NeuronSpec(parsing: neuron)
            let column = u   // the cache's columns are the layer's units
            var request = SampleRequest(neurons: [spec], bandSets: bands.map { [$0] })
            request.n = plan.n; request.k = plan.k; request.seed = plan.seed(of: u); request.maxSteps = plan.maxSteps
            request.method = SampleRequest.Method(rawValue: plan.method) ?? .inverseSet
            request.variant = SamplerSettings.Variant(rawValue: plan.variant) ?? .data
            // Without a cache (no dataset) the sampler reads the pipeline's own prior, if it names one.
            request.prior = cache?.prior(unit: column)
            request.command = command
            let ranges = bands.map { "\($0.low):\($0.high)" }
            let settings = SampleFolder.Settings(pipeline: plan.pipeline, method: plan.method,
                                                 variant: request.method == .inverseSet ? plan.variant : nil, k: plan.k,
                                                 seed: request.seed, neurons: [neuron], ranges: ranges, maxSteps: plan.maxSteps)
            let folder = try SampleFolder(dir: folderDir, settings: settings, n: plan.n, neurons: [neuron],
                                          bands: bands.map { [$0] }, tool: tool)
            let outcome = try SamplingRun.run(request, loaded: loaded, folder: folder) { _, _, _ in }
            // The evaluation against the real images of the band, when the sweep has a dataset.
            var ev: FolderEvaluation? = nil
            var values: [Float] = [], top: [Int] = [], data: ImageDataset? = nil
            if let cache, let dataset = evaluation {
                let scores = cache.scores(unit: column)
                let e = try FolderEvaluation.evaluate(folder: folder, loaded: loaded, neurons: [spec], scores: scores,
                                                      data: dataset, split: plan.split)
                try e.write(to: folderDir)
                ev = e; data = dataset
                values = scores.activations.map { $0[0] }
                top = Array(values.indices.sorted { values[$0] > values[$1] }.prefix(8))
            }
            try Report.write(folder: folder, context: Report.Context(neurons: [neuron], labels: [""], classNames: loaded.labels,
                                                                      notes: outcome.notes, facts: outcome.facts), evaluation: ev)
            // Strips: the first 8 samples of each band, the 8 evaluation images with the highest activation.
            try FileManager.default.createDirectory(atPath: dir + "/thumbs", withIntermediateDirectories: true)
            for b in bands.indices {
                let tiles = folder.manifest.samples.filter { $0.band == b }.prefix(8)
                    .compactMap { try? PNGImage.read(folderDir + "/" + $0.file) }
                if !tiles.isEmpty {
                    try ContactSheet.make(tiles: tiles, columns: 8, rowLabels: nil, tileSize: 32, padding: 1)
                        .write(to: "\(dir)/thumbs/\(plan.folderName(u))_b\(b).png")
                }
            }
            let topTiles = try data.map { d in try top.map { try d.image($0).png() } } ?? []
            if !topTiles.isEmpty {
                try ContactSheet.make(tiles: topTiles, columns: 8, rowLabels: nil, tileSize: 32, padding: 1)
                    .write(to: "\(dir)/thumbs/\(plan.folderName(u))_top.png")
            }
            let d = values.map(Double.init)
            let result = UnitResult(unit: u, neuron: neuron, bands: bands,
                                    accepted: bands.indices.map { b in folder.manifest.samples.filter { $0.band == b }.count },
                                    samples: ev?.bands.map(\.samples) ?? [], control: ev?.bands.map(\.control) ?? [],
                                    realInBand: ev?.bands.map(\.realImages.count) ?? [],
                                    activation: d.isEmpty ? [] : [Float(d.min() ?? .nan), Float(SampleQuality.quantile(d, 0.5)),
                                                                  Float(SampleQuality.quantile(d, 0.99)), Float(d.max() ?? .nan)],
                                    inBand: outcome.inBand, steps: outcome.steps, seconds: (outcome.seconds * 100).rounded() / 100,
                                    codesChecksum: folder.manifest.codesChecksum, topImages: top, notes: outcome.notes)
            try writeJSON(result, to: folderDir + "/unit.json")
            return result
        } catch {
            try? FileManager.default.createDirectory(atPath: folderDir, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: folderDir + "/error.txt", contents: Data("\(error)\n".utf8))
            throw error
        }
    }

    /// The finished units among `units` with a band that holds fewer than n samples.
    public static func shortUnits(_ dir: String, plan: Plan, among units: [Int]) -> [Int] {
        units.filter { u in result(dir, plan: plan, unit: u)?.accepted.contains { $0 < plan.n } ?? false }
    }

    /// Unit `u`'s unit.json, when it is finished and readable.
    static func result(_ dir: String, plan: Plan, unit u: Int) -> UnitResult? {
        FileManager.default.contents(atPath: "\(dir)/units/\(plan.folderName(u))/unit.json")
            .flatMap { try? SampleFolder.decoder().decode(UnitResult.self, from: $0) }
    }

    /// `value` as pretty, key-sorted JSON (non-finite numbers as strings, as
    /// sample folders write them) at `path`.
    static func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: try SampleFolder.encoder().encode(value)) else {
            throw SamplerError("\(path): cannot be written")
        }
    }

    /// Units of shard i of N (round robin over the plan's units).
    public static func shard(_ plan: Plan, _ i: Int, of n: Int) -> [Int] {
        plan.runnable.enumerated().filter { $0.offset % n == i }.map(\.element)
    }

    // MARK: - Merging

    /// Reads every unit's state and result, writes atlas.json and index.html.
    @discardableResult
    public static func merge(dir: String) throws -> Index {
        let plan = try readPlan(dir)
        var results: [UnitResult] = [], failed: [Failure] = [], pending: [Int] = []
        for u in plan.runnable {
            let folder = "\(dir)/units/\(plan.folderName(u))"
            if let r = result(dir, plan: plan, unit: u) {
                results.append(r)
            } else if let e = try? String(contentsOfFile: folder + "/error.txt", encoding: .utf8) {
                failed.append(Failure(unit: u, error: e.trimmingCharacters(in: .whitespacesAndNewlines)))
            } else {
                pending.append(u)
            }
        }
        let index = Index(plan: plan, units: results, failed: failed, pending: pending)
        try writeJSON(index, to: dir + "/atlas.json")
        try html(index).write(toFile: dir + "/index.html", atomically: true, encoding: .utf8)
        return index
    }

    /// "50 samples", or in red "34 of 50 samples" for a band that did not fill.
    static func acceptedText(_ accepted: Int, of n: Int) -> String {
        accepted >= n ? "\(accepted) samples"
            : "<b style=\"color:#a00\" title=\"the band did not fill within --max-steps; the unit's report names the closest activation reached\">\(accepted) of \(n) samples</b>"
    }

    public static func html(_ index: Index) -> String {
        let p = index.plan
        func f(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "–" }
        var out = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Atlas of \(Report.escape(p.layer))</title><style>"
        out += "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:2px 6px;border-bottom:1px solid #eee;font-size:12px;text-align:right}"
        out += "th{cursor:pointer;background:#f6f6f6;position:sticky;top:0}td.l{text-align:left}img{image-rendering:pixelated;height:33px;display:block}button{margin-left:4px}"
        out += "</style></head><body><h1>Atlas of \(Report.escape(p.layer)) (\(p.units.count) units)</h1>"
        out += "<p>bands \(Report.escape(p.bandSpecs.joined(separator: ", "))) \(p.dataset.isEmpty ? "(no dataset: no evaluation)" : "(percentiles over the \(p.evaluationImages) images of <code>\(Report.escape(p.dataset))</code>, \(Report.escape(p.split)))"), n = \(p.n) per band, K = \(p.k), seed \(p.seed), method \(Report.escape(p.method))\(p.method == "inverse-set" ? " (\(Report.escape(p.variant)))" : ""), pipeline <code>\(Report.escape(p.pipeline))</code>. "
        out += "\(index.units.count) done, \(index.failed.count) failed, \(index.pending.count) pending\(p.skipped.isEmpty ? "" : ", \(p.skipped.count) skipped"). Click a column to sort (all units, then shown 100 a page); <a href=\"atlas.json\">atlas.json</a> has every figure.</p>"
        if !p.skipped.isEmpty {
            out += "<details><summary>\(p.skipped.count) unit(s) skipped when planning</summary><ul>"
            for sk in p.skipped { out += "<li>unit \(sk.unit): \(Report.escape(sk.error))</li>" }
            out += "</ul></details>"
        }
        if !index.failed.isEmpty {
            out += "<details><summary style=\"color:#a00\">\(index.failed.count) failed unit(s)</summary><ul>"
            for fl in index.failed { out += "<li>unit \(fl.unit): \(Report.escape(String(fl.error.prefix(300))))</li>" }
            out += "</ul></details>"
        }
        // The rows live in a script as [sort values, row HTML] and are drawn a page at a
        // time: with thousands of units the browser lays out and loads one page, not the
        // whole table (docs/scaling.md).
        out += "<p id=\"pager\"></p><table id=\"t\"><thead><tr><th>unit</th>"
        for (j, b) in p.bandSpecs.enumerated() { out += "<th class=\"l\">samples, band \(j + 1) (\(Report.escape(b)))</th>" }
        out += "<th class=\"l\">top real images</th><th>min</th><th>median</th><th>p99</th><th>max</th><th>in band</th>"
        out += "<th>real in band</th><th>coverage</th><th>capped precision</th><th>near-dup</th><th>distinct</th><th>report</th></tr></thead><tbody id=\"b\"></tbody></table>"
        var rows: [[String]] = []
        for r in index.units {
            // The folder name as a URL path: "%" (fileSafe's escapes, e.g. %2F) as %25.
            let name = p.folderName(r.unit).replacingOccurrences(of: "%", with: "%25")
            var values: [Double?] = [Double(r.unit)]
            var html = "<tr><td>\(r.unit)</td>"
            func cell(_ v: Double?, _ text: String? = nil) { values.append(v); html += "<td>\(text ?? f(v))</td>" }
            for j in p.bandSpecs.indices {
                var band = j < r.bands.count ? "[\(Report.short(r.bands[j].low)), \(Report.short(r.bands[j].high))]" : ""
                // A band that starts at the unit's minimum holds every image where the unit is silent.
                if j < r.bands.count, let floor = r.activation.first, r.bands[j].low <= floor {
                    band += " <b title=\"the band starts at the unit's minimum over the dataset: it includes the images where the unit is silent; choose a higher low percentile\">from the minimum</b>"
                }
                values.append(j < r.bands.count ? Double(r.bands[j].low) : nil)
                html += "<td class=\"l\"><img src=\"thumbs/\(name)_b\(j).png\" alt=\"\"><small>\(band), \(Self.acceptedText(j < r.accepted.count ? r.accepted[j] : 0, of: p.n))</small></td>"
            }
            values.append(nil)
            html += r.topImages.isEmpty ? "<td class=\"l\">–</td>" : "<td class=\"l\"><img src=\"thumbs/\(name)_top.png\" alt=\"\"></td>"
            for i in 0..<4 { if i < r.activation.count { cell(Double(r.activation[i]), Report.short(r.activation[i])) } else { cell(nil) } }
            cell(r.inBand)
            cell(Double(r.realInBand.first ?? 0), r.realInBand.map(String.init).joined(separator: " / "))
            cell(r.samples.first?.coverage, r.samples.map { f($0.coverage) }.joined(separator: " / "))
            cell(r.samples.first?.cappedPrecision, r.samples.map { f($0.cappedPrecision) }.joined(separator: " / "))
            cell(r.samples.first?.nearDuplicates, r.samples.map { f($0.nearDuplicates) }.joined(separator: " / "))
            cell(r.samples.first?.distinctFraction, r.samples.map { f($0.distinctFraction) }.joined(separator: " / "))
            values.append(nil)
            html += "<td><a href=\"units/\(name)/report.html\">report</a></td></tr>"
            // Missing values sort last either way (NaN is not valid JSON: they are written as null).
            rows.append(values.map { $0.map { $0.isFinite ? String($0) : "null" } ?? "null" } + [html])
        }
        // JSONEncoder writes "/" as "\/", so no "</script>" can end the script early.
        let json = (try? JSONEncoder().encode(rows)).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
        out += "<script>var R=\(json).map(function(r){return {v:r.slice(0,-1).map(function(x){return x==='null'?null:parseFloat(x);}),h:r[r.length-1]};});"
        out += "var P=100,page=0,col=0,up=true;"
        out += "function draw(){var n=Math.max(1,Math.ceil(R.length/P));page=Math.min(page,n-1);"
        out += "document.getElementById('b').innerHTML=R.slice(page*P,(page+1)*P).map(function(r){return r.h;}).join('');"
        out += "var q=document.getElementById('pager');q.innerHTML='units '+(R.length?page*P+1:0)+'-'+Math.min(R.length,(page+1)*P)+' of '+R.length+' ';"
        out += "[['first',0],['previous',page-1],['next',page+1],['last',n-1]].forEach(function(b){var a=document.createElement('button');a.textContent=b[0];"
        out += "a.disabled=b[1]<0||b[1]>=n||b[1]===page;a.onclick=function(){page=b[1];draw();};q.appendChild(a);});}"
        out += "document.querySelectorAll('#t th').forEach(function(h,i){h.onclick=function(){up=col===i?!up:false;col=i;"
        out += "R.sort(function(x,y){var a=x.v[i],c=y.v[i];if(a===null)return c===null?0:1;if(c===null)return -1;return up?a-c:c-a;});page=0;draw();};});"
        out += "draw();"
        out += "</script></body></html>\n"
        return out
    }
}
