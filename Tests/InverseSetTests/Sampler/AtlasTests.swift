import Foundation
import ImageIO
import Layers
import Sampler
import SamplerIO
import Testing
import TestSupport

/// `inverse-set atlas`: the parsing of units and bands, per-unit seeds and
/// shards, and whole sweeps of the shipped Fashion classifier's fc8 units,
/// on the local backend and through a real one-node Slurm cluster.
@Suite(.serialized)
struct AtlasTests {
    // MARK: - Parsing, seeds, shards

    @Test func unitListsAreRangesAndLists() throws {
        #expect(try Atlas.parseUnits("0-3,7,2", count: 10) == [0, 1, 2, 3, 7])
        #expect(try Atlas.parseUnits("9", count: 10) == [9])
        for bad in ["5-2", "x", "1-", "-1", "0-10", "3,,a"] {
            #expect(throws: SamplerError.self, "'\(bad)' must be refused") { try Atlas.parseUnits(bad, count: 10) }
        }
        let message = catchMessage { _ = try Atlas.parseUnits("0-10", count: 10) }
        #expect(message.contains("units 0-9"), "\(message)")
    }

    @Test func bandsAreNumbersOrPercentiles() throws {
        let b = try Atlas.parseBands("p90:p99,p99:max,1.5:2,min:p5")
        #expect(b.map(\.0) == ["p90:p99", "p99:max", "1.5:2", "min:p5"])
        #expect(b[0].1 == .percentile(90) && b[0].2 == .percentile(99))
        #expect(b[1].2 == .percentile(100))
        #expect(b[2].1 == .value(1.5) && b[2].2 == .value(2))
        #expect(b[3].1 == .percentile(0))
        for bad in ["p90", "p101:max", "a:b", "1:2:3", "nan:1"] {
            #expect(throws: SamplerError.self, "'\(bad)' must be refused") { try Atlas.parseBands(bad) }
        }
    }

    @Test func unitSeedsDependOnTheSweepSeedAndTheUnitOnly() throws {
        func plan(_ units: [Int], seed: UInt64) -> Atlas.Plan {
            Atlas.Plan(pipeline: "p.json", layer: "fc8", position: "unit", units: units, bandSpecs: [], bands: [],
                       n: 10, k: 2, seed: seed, maxSteps: 10, method: "inverse-set", variant: "data", dataset: "d",
                       split: "test", evaluationImages: 0, priorCount: 10, threads: 1)
        }
        let all = plan(Array(0..<10), seed: 5), alone = plan([7], seed: 5), other = plan(Array(0..<10), seed: 6)
        #expect(all.seed(of: 7) == alone.seed(of: 7))
        #expect(all.seed(of: 7) != other.seed(of: 7))
        #expect(Set((0..<10).map(all.seed(of:))).count == 10)
        // Shards are disjoint and cover the plan.
        let shards = (0..<3).map { Atlas.shard(all, $0, of: 3) }
        #expect(shards.flatMap { $0 }.sorted() == Array(0..<10))
        #expect(Set(shards[0]).isDisjoint(with: shards[1]))
        #expect(all.neuron(3) == "fc8:3")
        var map = all
        map.position = "2,5"; map.layer = "conv5"
        #expect(map.neuron(3) == "conv5:3@2,5")
    }

    // MARK: - Whole sweeps

    /// The arguments of every sweep below: four fc8 units of the shipped
    /// classifier, one band per unit from the dataset's percentiles.
    static func sweepArguments(_ world: SmallFashion, out: String, units: String = "0-3") -> [String] {
        ["atlas", "--pipeline", world.pipeline, "--layer", "fc8", "--units", units, "--bands", "p90:p99",
         "-n", "60", "-k", "6", "--seed", "11", "--prior-count", "\(world.trainCount)", "--out", out]
    }

    /// One local sweep, shared by the tests that compare with it.
    static let local: Result<(world: SmallFashion, dir: String, index: AtlasJSON), Error> = Result {
        let world = try SmallFashion.make()
        let dir = try temporaryDirectory("atlas-local")
        let r = try runCLI(sweepArguments(world, out: dir) + ["--jobs", "2"])
        guard r.status == 0 else { throw SamplerError("local atlas failed (\(r.status)): \(r.stderr)") }
        return (world, dir, try AtlasJSON.read(dir))
    }

    @Test(.enabled(if: SmallFashion.available, "needs Debian's dataset-fashion-mnist (tools/setup.sh installs it)"))
    func localSweepWritesFoldersIndexAndResumesWithoutRecomputing() throws {
        let (world, dir, index) = try Self.local.get()
        #expect(index.units.map(\.unit) == [0, 1, 2, 3])
        #expect(index.failed.isEmpty && index.pending.isEmpty)
        for u in index.units {
            #expect(u.accepted == [60], "unit \(u.unit)")
            #expect(u.in_band == 1, "unit \(u.unit)")
            #expect(u.real_in_band[0] > 0, "unit \(u.unit): no real image in its p90:p99 band")
            #expect(u.codes_checksum != nil)
            for f in ["units/fc8_\(u.unit)/report.html", "units/fc8_\(u.unit)/samples.json", "units/fc8_\(u.unit)/evaluation.json",
                      "thumbs/fc8_\(u.unit)_b0.png", "thumbs/fc8_\(u.unit)_top.png"] {
                #expect(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f) missing")
            }
        }
        // The bands are the percentiles of each unit over the evaluation images.
        let values = try percentiles(world: world, unit: 2, of: [0.9, 0.99])
        #expect(abs(Double(index.units[2].bands[0].low) - values[0]) < 1e-4 * max(1, abs(values[0])))
        #expect(abs(Double(index.units[2].bands[0].high) - values[1]) < 1e-4 * max(1, abs(values[1])))
        // The index: one row per unit, each with its strips and a link to its report.
        let html = try String(contentsOfFile: dir + "/index.html", encoding: .utf8)
        #expect(html.components(separatedBy: "<tr><td>").count - 1 == 4)
        #expect(html.contains("src=\\\"thumbs\\/fc8_3_b0.png\\\"") && html.contains("href=\\\"units\\/fc8_3\\/report.html\\\""),
                "\(html.suffix(3000))")
        // Rerunning the same command recomputes nothing.
        let stamp = try modificationDate(dir + "/units/fc8_1/unit.json")
        let again = try runCLI(Self.sweepArguments(world, out: dir))
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try modificationDate(dir + "/units/fc8_1/unit.json") == stamp)
        #expect(try AtlasJSON.read(dir).units.map(\.codes_checksum) == index.units.map(\.codes_checksum))
        // Other settings on the same folder are refused, naming them.
        var changed = Self.sweepArguments(world, out: dir)
        changed[changed.firstIndex(of: "11")!] = "12"
        let refused = try runCLI(changed)
        #expect(refused.status != 0 && refused.stderr.contains("--seed"), "\(refused.stderr)")
    }

    @Test(.enabled(if: SmallFashion.available, "needs Debian's dataset-fashion-mnist (tools/setup.sh installs it)"))
    func aUnitRerunAloneGivesTheSameSamples() throws {
        let (world, _, index) = try Self.local.get()
        let dir = try temporaryDirectory("atlas-one")
        let r = try runCLI(Self.sweepArguments(world, out: dir, units: "2"))
        #expect(r.status == 0, "\(r.stderr)")
        let alone = try AtlasJSON.read(dir)
        #expect(alone.units.count == 1)
        #expect(alone.units.first?.codes_checksum == index.units[2].codes_checksum)
        #expect(alone.units.first?.bands == index.units[2].bands)
    }

    @Test(.enabled(if: SmallFashion.available, "needs Debian's dataset-fashion-mnist (tools/setup.sh installs it)"))
    func aFailedUnitDoesNotStopTheOthersAndIsRetriedByARerun() throws {
        let (world, _, index) = try Self.local.get()
        let dir = try temporaryDirectory("atlas-fail")
        // Plan the sweep, then damage unit 1's folder before its workers run:
        // a samples.json that is not JSON.
        let args = Self.sweepArguments(world, out: dir, units: "0-2")
        try FileManager.default.createDirectory(atPath: dir + "/units/fc8_1", withIntermediateDirectories: true)
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: dir + "/units/fc8_1/samples.json"))
        let r = try runCLI(args + ["--jobs", "2"])
        #expect(r.status == 2, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("1 unit(s) failed") && r.stderr.contains("unit 1:"), "\(r.stderr)")
        let failed = try AtlasJSON.read(dir)
        #expect(failed.units.map(\.unit) == [0, 2])
        #expect(failed.failed.map(\.unit) == [1])
        let status = try runCLI(["atlas", "--status", dir])
        #expect(status.status == 0 && status.stdout.contains("failed: 1: 1"), "\(status.stdout)")
        let html = try String(contentsOfFile: dir + "/index.html", encoding: .utf8)
        #expect(html.contains("1 failed unit(s)"))
        // Repaired, the same command runs only unit 1.
        try FileManager.default.removeItem(atPath: dir + "/units/fc8_1/samples.json")
        let stamp = try modificationDate(dir + "/units/fc8_0/unit.json")
        let retry = try runCLI(args)
        #expect(retry.status == 0, "\(retry.stderr)")
        #expect(try modificationDate(dir + "/units/fc8_0/unit.json") == stamp)
        let fixed = try AtlasJSON.read(dir)
        #expect(fixed.units.map(\.unit) == [0, 1, 2] && fixed.failed.isEmpty)
        #expect(fixed.units.map(\.codes_checksum) == Array(index.units.prefix(3)).map(\.codes_checksum))
    }

    @Test(.enabled(if: SmallFashion.available, "needs Debian's dataset-fashion-mnist (tools/setup.sh installs it)"))
    func unitsWhoseBandIsEmptyAreSkippedNotFatal() throws {
        let (world, _, _) = try Self.local.get()
        // fc6 unit 1 is 0 on about two thirds of the images (p50 = 0: the band is empty), unit 11 on 43%.
        let dir = try temporaryDirectory("atlas-skip")
        let r = try runCLI(["atlas", "--pipeline", world.pipeline, "--layer", "fc6", "--units", "1,11", "--bands", "p0:p50",
                            "-n", "12", "-k", "4", "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("1 of 2 units skipped"), "\(r.stderr)")
        let index = try AtlasJSON.read(dir)
        #expect(index.units.map(\.unit) == [11])
        let html = try String(contentsOfFile: dir + "/index.html", encoding: .utf8)
        #expect(html.contains("1 unit(s) skipped") && html.contains("unit 1: band 'p0:p50' is [0, 0]"), "\(html.prefix(3000))")
        #expect(html.contains("from the minimum"))
        // Every unit empty: refused, naming a unit.
        let none = try runCLI(["atlas", "--pipeline", world.pipeline, "--layer", "fc6", "--units", "1", "--bands", "min:min",
                               "--out", try temporaryDirectory("atlas-none")])
        #expect(none.status != 0 && none.stderr.contains("every unit's bands are empty"), "\(none.stderr)")
    }

    @Test(.enabled(if: SmallFashion.available, "needs Debian's dataset-fashion-mnist (tools/setup.sh installs it)"))
    func aWorkerThatDiesIsReportedNotASuccess() throws {
        let (world, source, _) = try Self.local.get()
        // A finished sweep with unit 3 undone and its cache damaged: the workers
        // cannot start, and the command must say so instead of exiting 0.
        let dir = try temporaryDirectory("atlas-dead") + "/atlas"
        try FileManager.default.copyItem(atPath: source, toPath: dir)
        try FileManager.default.removeItem(atPath: dir + "/units/fc8_3/unit.json")
        try Data("{ damaged".utf8).write(to: URL(fileURLWithPath: dir + "/cache/cache.json"))
        let r = try runCLI(Self.sweepArguments(world, out: dir))
        #expect(r.status == 2, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("worker 0 exited with status 1") && r.stderr.contains("1 unit(s) not run (3)"), "\(r.stderr)")
        let log = try String(contentsOfFile: dir + "/logs/worker0.log", encoding: .utf8)
        #expect(log.contains("cache.json: missing or damaged"), "\(log)")
    }

    @Test(.enabled(if: SmallFashion.available, "needs Debian's dataset-fashion-mnist (tools/setup.sh installs it)"))
    func unitsThatDoNotFillTheirBandAreNamed() throws {
        let (world, _, _) = try Self.local.get()
        let dir = try temporaryDirectory("atlas-short")
        let r = try runCLI(Self.sweepArguments(world, out: dir, units: "0") + ["--max-steps", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("1 unit(s) did not fill a band within --max-steps (0)"), "\(r.stderr)")
        let status = try runCLI(["atlas", "--status", dir])
        #expect(status.stdout.contains("short of n = 60 in a band: 1: 0"), "\(status.stdout)")
        #expect(try String(contentsOfFile: dir + "/index.html", encoding: .utf8).contains(" of 60 samples"))
    }

    @Test func slurmDryRunPrintsTheScripts() throws {
        let r = try runCLI(["atlas", "--backend", "slurm", "--dry-run", "--layer", "fc8", "--bands", "p90:p99",
                            "--out", "/tmp/atlas-dry", "--partition", "short", "--array-throttle", "4", "--tasks", "16",
                            "--sbatch-arg=--account=lab", "--mem", "6G", "--time", "02:00:00"])
        #expect(r.status == 0, "\(r.stderr)")
        for line in ["#SBATCH --array=0-15%4", "#SBATCH --partition=short", "#SBATCH --account=lab", "#SBATCH --mem=6G",
                     "#SBATCH --time=02:00:00", "--shard \"$SLURM_ARRAY_TASK_ID/16\"", "atlas --merge '/tmp/atlas-dry'"] {
            #expect(r.stdout.contains(line), "'\(line)' missing from:\n\(r.stdout)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/atlas-dry/slurm/atlas.sbatch"))
        // Paths are quoted for the shell, a quote in them included.
        let odd = try runCLI(["atlas", "--backend", "slurm", "--dry-run", "--layer", "fc8", "--bands", "1:2",
                              "--out", "/tmp/it's an atlas", "--allow-missing-weights"])
        #expect(odd.stdout.contains("--out '/tmp/it'\\''s an atlas'") && odd.stdout.contains("'--allow-missing-weights'"), "\(odd.stdout)")
        let zero = try runCLI(["atlas", "--backend", "slurm", "--dry-run", "--layer", "fc8", "--bands", "1:2", "--out", "/tmp/x", "--tasks", "0"])
        #expect(zero.status != 0 && zero.stderr.contains("--tasks"), "\(zero.stderr)")
    }

    /// Units of a blob whose name needs escaping in a file name (fileSafe's %2F)
    /// are linked with the "%" escaped, so the browser finds the folder.
    @Test func indexLinksEscapeFolderNames() throws {
        let plan = Atlas.Plan(pipeline: "p.json", layer: "inception_3a/output", position: "centre", units: [4], bandSpecs: ["1:2"],
                              bands: [[try Band(low: 1, high: 2)]], n: 10, k: 2, seed: 1, maxSteps: 10, method: "inverse-set",
                              variant: "data", dataset: "", split: "test", evaluationImages: 0, priorCount: 10, threads: 1)
        let unit = Atlas.UnitResult(unit: 4, neuron: "inception_3a/output:4", bands: plan.bands[0], accepted: [7], samples: [], control: [],
                                    realInBand: [], activation: [], inBand: 1, steps: 3, seconds: 1, codesChecksum: nil, topImages: [],
                                    notes: [])
        let html = Atlas.html(Atlas.Index(plan: plan, units: [unit], failed: [], pending: []))
        #expect(plan.folderName(4) == "inception_3a%2Foutput_4")
        #expect(html.contains("units\\/inception_3a%252Foutput_4\\/report.html"), "\(html.suffix(2500))")
        #expect(html.contains("7 of 10 samples"))
    }

    /// The Slurm backend on a real one-node cluster (tools/slurm-local.sh):
    /// one array task is killed while its unit is half sampled, the same
    /// command is submitted again, and the merged index equals the local
    /// backend's for the same seed.
    @Test(.enabled(if: SmallFashion.available && SlurmCluster.canRun,
                   "needs root, Debian's dataset-fashion-mnist and Slurm (slurmctld, slurmd, slurm-client, munge: bash tools/setup.sh --tests)"))
    func slurmSweepSurvivesAKilledTaskAndEqualsTheLocalOne() throws {
        let (world, _, local) = try Self.local.get()
        let cluster = try SlurmCluster.start()
        defer { cluster.stop() }
        let dir = try temporaryDirectory("atlas-slurm")
        let args = Self.sweepArguments(world, out: dir) + ["--backend", "slurm", "--mem", "2G"]
        let submit = try runCLI(args, environment: cluster.environment)
        try #require(submit.status == 0, "\(submit.stderr)")
        #expect(submit.stdout.contains("submitted array job"), "\(submit.stdout)")
        let jobs = try cluster.jobs(dir)
        #expect(jobs.tasks == 4)
        // Kill unit 1's task (task 1) once some but not all of its samples are written.
        var killed = false
        let deadline = Date().addingTimeInterval(240)
        while Date() < deadline {
            let count = samplesWritten(dir + "/units/fc8_1")
            if count > 0 && count < 60 {
                try cluster.run(["scancel", "\(jobs.array)_1"])
                killed = true
                break
            }
            if FileManager.default.fileExists(atPath: dir + "/units/fc8_1/unit.json") { break }
            usleep(5_000)
        }
        try #require(killed, "unit 1 finished before its task could be killed midway")
        try cluster.waitFor([jobs.array, jobs.merge])
        let partial = try AtlasJSON.read(dir)
        #expect(partial.pending == [1], "pending \(partial.pending), failed \(partial.failed)")
        #expect(partial.units.map(\.unit) == [0, 2, 3])
        let status = try runCLI(["atlas", "--status", dir])
        #expect(status.stdout.contains("pending: 1: 1"), "\(status.stdout)")
        // Resubmitting the same command runs only the missing unit, resuming its folder.
        let again = try runCLI(args, environment: cluster.environment)
        try #require(again.status == 0, "\(again.stderr)")
        let second = try cluster.jobs(dir)
        #expect(second.tasks == 1 && second.units == 1)
        try cluster.waitFor([second.array, second.merge])
        let merged = try AtlasJSON.read(dir)
        #expect(merged.pending.isEmpty && merged.failed.isEmpty)
        #expect(merged.units.map(\.unit) == local.units.map(\.unit))
        for (a, b) in zip(merged.units, local.units) {
            #expect(a.codes_checksum == b.codes_checksum, "unit \(a.unit): the Slurm sweep's codes differ from the local one's")
            #expect(a.bands == b.bands && a.accepted == b.accepted && a.activation == b.activation)
            #expect(a.samples == b.samples, "unit \(a.unit): evaluation figures differ")
            #expect(a.steps == b.steps, "unit \(a.unit): \(a.steps) steps against \(b.steps)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/slurm/atlas.sbatch"))
    }

    // MARK: - Helpers

    func percentiles(world: SmallFashion, unit: Int, of ps: [Double]) throws -> [Double] {
        let t = try NPY.read(try Self.local.get().dir + "/cache/eval_activations.npy")
        let c = t.shape[1]
        let values = (0..<t.shape[0]).map { Double(t.array[$0 * c + unit]) }
        return ps.map { SampleQuality.quantile(values, $0) }
    }

    func modificationDate(_ path: String) throws -> Date {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
    }

    func samplesWritten(_ folder: String) -> Int {
        guard let data = FileManager.default.contents(atPath: folder + "/samples.json"),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let samples = object["samples"] as? [Any] else { return 0 }
        return samples.count
    }

    func catchMessage(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }
}

/// atlas.json, as a numpy/pandas user would read it.
struct AtlasJSON: Decodable {
    struct Band: Decodable, Equatable { var low: Float; var high: Float }
    struct Quality: Decodable, Equatable {
        var coverage: Double?; var capped_precision: Double?; var near_duplicates: Double?; var distinct: Int?
    }
    struct Unit: Decodable {
        var unit: Int; var bands: [Band]; var accepted: [Int]; var in_band: Double; var real_in_band: [Int]
        var codes_checksum: String?; var activation: [Float]; var samples: [Quality]; var steps: Int
    }
    struct Failure: Decodable { var unit: Int; var error: String }
    var units: [Unit]; var failed: [Failure]; var pending: [Int]

    static func read(_ dir: String) throws -> AtlasJSON {
        try JSONDecoder().decode(AtlasJSON.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/atlas.json")))
    }
}

/// A small copy of Fashion-MNIST (the first images of each split, as IDX
/// files) and a pipeline of the shipped models that names it, so that sweeps
/// read a few hundred images instead of 70,000.
struct SmallFashion: Sendable {
    static let source = "/usr/share/datasets/fashion-mnist"
    static var available: Bool { FileManager.default.fileExists(atPath: source + "/t10k-images-idx3-ubyte.gz") }

    var pipeline: String
    var trainCount = 1000
    var testCount = 300

    static func make() throws -> SmallFashion {
        let dir = try temporaryDirectory("small-fashion")
        var world = SmallFashion(pipeline: dir + "/pipeline.json")
        for (prefix, count) in [("train", world.trainCount), ("t10k", world.testCount)] {
            let images = try IDXFile.read("\(source)/\(prefix)-images-idx3-ubyte.gz")
            let labels = try IDXFile.read("\(source)/\(prefix)-labels-idx1-ubyte.gz")
            try writeIDX(images, count: count, to: "\(dir)/data/\(prefix)-images-idx3-ubyte")
            try writeIDX(labels, count: count, to: "\(dir)/data/\(prefix)-labels-idx1-ubyte")
        }
        let models = Paths.models + "/fashion"
        let spec = """
        {
          "generator": { "prototxt": "\(models)/generator_deploy.prototxt", "weights": "\(models)/generator.caffemodel",
                         "input": "fc6", "output": "gen" },
          "classifier": { "prototxt": "\(models)/classifier_deploy.prototxt", "weights": "\(models)/classifier.caffemodel", "input": "data" },
          "encoder": { "cut": "fc6" },
          "glue": { "clip": { "low": 0, "high": 1 } },
          "display": { "low": 0, "high": 1 },
          "codes": { "low": 0, "upper_bound_file": "\(models)/fc6_code_upper_bound.txt", "init_low": 0, "init_high": 0.33 },
          "labels": "\(models)/labels.txt",
          "data": { "dataset": "\(dir)/data", "prior_split": "train", "prior_count": \(world.trainCount),
                    "evaluation_split": "test", "code_blob": "fc6", "preprocess": { "raw_scale": 1 } }
        }
        """
        try Data(spec.utf8).write(to: URL(fileURLWithPath: world.pipeline))
        return world
    }

    /// Writes the first `count` items of `array` (bytes) as an IDX file.
    static func writeIDX(_ array: IDXArray, count: Int, to path: String) throws {
        guard case .bytes(let bytes) = array.elements else { throw SamplerError("\(path): expected bytes") }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var out = Data([0, 0, 0x08, UInt8(array.dims.count)])
        for (i, d) in array.dims.enumerated() {
            let v = UInt32(i == 0 ? count : d).bigEndian
            withUnsafeBytes(of: v) { out.append(contentsOf: $0) }
        }
        out.append(contentsOf: bytes.prefix(count * array.itemSize))
        try out.write(to: URL(fileURLWithPath: path))
    }
}

/// A one-node Slurm cluster on localhost (tools/slurm-local.sh), for one test.
struct SlurmCluster {
    /// The script needs root (SlurmUser=root) and Debian's slurmctld, slurmd,
    /// slurm-client and munge (`tools/setup.sh --tests`, run by tools/test.sh,
    /// installs them; so does the script itself).
    static var canRun: Bool {
        getuid() == 0 && ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch", "/usr/sbin/munged"]
            .allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let dir: String
    let environment: [String: String]

    static func start() throws -> SlurmCluster {
        let dir = try temporaryDirectory("slurm")
        // A port of its own, so that a cluster left over by another run does not answer.
        let port = 20_000 + Int(getpid() % 10_000) * 2
        var env = ProcessInfo.processInfo.environment
        env["SLURM_LOCAL_PORT"] = "\(port)"
        let r = try runCLI([Paths.root + "/tools/slurm-local.sh", "start", dir], environment: env, executable: "/bin/bash")
        guard r.status == 0 else { throw SamplerError("tools/slurm-local.sh start failed (\(r.status)): \(r.stderr)") }
        env["SLURM_CONF"] = dir + "/slurm.conf"
        return SlurmCluster(dir: dir, environment: env)
    }

    func stop() {
        _ = try? runCLI([Paths.root + "/tools/slurm-local.sh", "stop", dir], environment: environment, executable: "/bin/bash")
    }

    @discardableResult
    func run(_ args: [String]) throws -> String {
        let r = try runCLI(Array(args.dropFirst()), environment: environment, executable: "/usr/bin/" + args[0])
        guard r.status == 0 else { throw SamplerError("\(args.joined(separator: " ")) failed: \(r.stderr)") }
        return r.stdout
    }

    struct Jobs: Decodable { var array: String; var merge: String; var tasks: Int; var units: Int }

    func jobs(_ atlas: String) throws -> Jobs {
        try JSONDecoder().decode(Jobs.self, from: Data(contentsOf: URL(fileURLWithPath: atlas + "/slurm/jobs.json")))
    }

    /// Waits until none of `ids` (and none of their array tasks) is queued or running.
    func waitFor(_ ids: [String], timeout: TimeInterval = 300) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let r = try runCLI(["-h", "-o", "%i", "-t", "PD,R,CF,CG,S", "-j", ids.joined(separator: ",")],
                               environment: environment, executable: "/usr/bin/squeue")
            // squeue says "Invalid job id" once a finished job has left its memory.
            if r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || r.stderr.contains("Invalid job id") { return }
            usleep(200_000)
        }
        throw SamplerError("Slurm jobs \(ids) still queued after \(Int(timeout)) s; logs in \(dir)")
    }
}
