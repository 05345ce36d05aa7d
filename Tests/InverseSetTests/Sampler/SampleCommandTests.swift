import Foundation
import ImageIO
import Runtime
import Testing
import TestSupport

/// `inverse-set sample` end to end on the small test pipeline: f = the real
/// LeNet, E = LeNet cut at ip1, G = a small generator with seeded filler
/// weights. Every claim of the output is re-checked by separate forward
/// passes (`inverse-set run` of G, the glue's clip, then `run` of LeNet).
@Suite(.serialized)
struct SampleCommandTests {
    let pipeline = Paths.root + "/Tests/Fixtures/sampler/pipeline.json"
    let generator = Paths.root + "/Tests/Fixtures/sampler/small_generator.prototxt"
    let lenet = Paths.models + "/lenet_mnist/lenet.prototxt"
    let lenetWeights = Paths.models + "/lenet_mnist/lenet_iter_10000.caffemodel"

    struct Summary: Decodable {
        var accepted: Int; var in_band: Double; var steps: Int; var diversity: Double; var trunk_passes_per_step: Double
    }
    struct Manifest: Decodable {
        struct Row: Decodable { var activations: [Float]; var band: Int; var step: Int; var file: String }
        var samples: [Row]
        var neurons: [String]
    }

    func sample(_ args: [String], out: String) throws -> (CLIResult, Summary?) {
        let r = try runCLI(["sample", "--pipeline", pipeline, "--out", out, "--threads", "1"] + args)
        let s = try? JSONDecoder().decode(Summary.self, from: Data(r.lastLine.utf8))
        return (r, s)
    }

    func manifest(_ dir: String) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/samples.json")))
    }

    /// Recomputes G(code) -> clip to [0, 1] -> LeNet for every saved code and
    /// returns the requested LeNet blob, one row per sample.
    func recheck(_ dir: String, blob: String) throws -> (rows: [[Float]], shape: [Int]) {
        let work = try temporaryDirectory("recheck")
        let g = try runCLI(["run", generator, "--input", "code=\(dir)/codes.npy", "--out", work, "--seed", "1"])
        try #require(g.status == 0, "\(g.stderr)")
        let image = try NPY.read(work + "/fwd_image.npy")
        let clipped = image.array.map { min(max($0, 0), 1) }
        try NPY.write(Tensor(shape: image.shape, values: clipped), to: work + "/clipped.npy")
        let f = try runCLI(["run", lenet, "--weights", lenetWeights, "--input", "data=\(work)/clipped.npy", "--out", work])
        try #require(f.status == 0, "\(f.stderr)")
        let a = try NPY.read(work + "/fwd_\(blob).npy")
        let n = a.shape[0], per = a.array.count / n
        let all = a.array
        return ((0..<n).map { Array(all[$0 * per..<($0 + 1) * per]) }, a.shape.dims)
    }

    @Test func everySampleIsInBandWhenRechecked() throws {
        let dir = try temporaryDirectory("sample")
        let (r, s) = try sample(["--neuron", "ip2:3", "--range", "5:10", "-n", "24", "-k", "8", "--seed", "3"], out: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(s)
        #expect(summary.accepted == 24 && summary.in_band == 1 && summary.steps > 0)
        // E = LeNet cut at ip1: one pass of the shared trunk per evaluation.
        #expect(summary.trunk_passes_per_step == 1)
        let m = try manifest(dir)
        #expect(m.samples.count == 24)
        let (rows, _) = try recheck(dir, blob: "ip2")
        #expect(rows.count == 24)
        for (row, saved) in zip(rows, m.samples) {
            #expect(row[3] >= 5 && row[3] <= 10, "re-checked activation \(row[3]) is outside 5:10")
            #expect(abs(row[3] - saved.activations[0]) <= 1e-3 * max(1, abs(row[3])))
        }
        for i in 0..<24 {
            #expect(FileManager.default.fileExists(atPath: dir + String(format: "/samples/%04d.png", i)))
        }
        for f in ["sheet.png", "report.html", "codes.npy", "embeddings.npy"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f) missing")
        }
        // The diversity command recomputes the run's metrics.
        let d = try runCLI(["diversity", dir])
        #expect(d.status == 0, "\(d.stderr)")
        let recomputed = try #require(try JSONSerialization.jsonObject(with: Data(d.lastLine.utf8)) as? [String: Any])
        #expect(abs((recomputed["diversity"] as? Double ?? -1) - summary.diversity) <= 1e-4 * summary.diversity)
        #expect(recomputed["in_band"] as? Double == 1)
    }

    @Test func sameSeedSameCodesOtherSeedOtherCodes() throws {
        let args = ["--neuron", "ip2:1=0:2", "-n", "12", "-k", "6"]
        let a = try temporaryDirectory("seedA"), b = try temporaryDirectory("seedB"), c = try temporaryDirectory("seedC")
        #expect(try sample(args + ["--seed", "7"], out: a).0.status == 0)
        #expect(try sample(args + ["--seed", "7"], out: b).0.status == 0)
        #expect(try sample(args + ["--seed", "8"], out: c).0.status == 0)
        let ca = try NPY.read(a + "/codes.npy").array, cb = try NPY.read(b + "/codes.npy").array
        let cc = try NPY.read(c + "/codes.npy").array
        #expect(ca.count == 12 * 16)
        #expect(ca == cb)
        #expect(ca != cc)
    }

    @Test func intersectionOfTwoNeurons() throws {
        let dir = try temporaryDirectory("both")
        let (r, s) = try sample(["--neuron", "ip2:3=3:6", "--neuron", "ip2:5=-1:1", "-n", "16", "--seed", "1"], out: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(s?.accepted == 16)
        let m = try manifest(dir)
        #expect(m.neurons == ["ip2:3=3:6", "ip2:5=-1:1"])
        for row in try recheck(dir, blob: "ip2").rows {
            #expect(row[3] >= 3 && row[3] <= 6 && row[5] >= -1 && row[5] <= 1, "\(row[3]), \(row[5])")
        }
    }

    @Test func convolutionNeuronsAtPositions() throws {
        let dir = try temporaryDirectory("conv")
        // Channel 7 of conv2 (8x8 maps) at row 2, column 2.
        let (r, s) = try sample(["--neuron", "conv2:7@2,2", "--range=-0.5:0", "-n", "12", "--seed", "2"], out: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(s?.accepted == 12)
        let (rows, shape) = try recheck(dir, blob: "conv2")
        #expect(shape == [12, 50, 8, 8])
        for row in rows {
            let a = row[7 * 64 + 2 * 8 + 2]
            #expect(a >= -0.5 && a <= 0, "conv2[7, 2, 2] = \(a)")
        }
    }

    @Test func severalBandsGiveOneRowEach() throws {
        let dir = try temporaryDirectory("bands")
        let (r, s) = try sample(["--neuron", "ip2:3", "--range", "6:9", "--range", "0:3", "-n", "8", "--seed", "4"], out: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(s?.accepted == 16)
        let m = try manifest(dir)
        let rows = try recheck(dir, blob: "ip2").rows
        for (row, saved) in zip(rows, m.samples) {
            let (lo, hi): (Float, Float) = saved.band == 0 ? (6, 9) : (0, 3)
            #expect(row[3] >= lo && row[3] <= hi, "band \(saved.band): \(row[3])")
        }
        #expect(m.samples.filter { $0.band == 0 }.count == 8 && m.samples.filter { $0.band == 1 }.count == 8)
    }

    /// Starts `args`, waits until samples.json lists at least `atLeast` samples, kills it with SIGKILL.
    func startAndKill(_ args: [String], dir: String, atLeast: Int) throws -> Int {
        let p = try startCLI(args)
        var before = 0
        for _ in 0..<3000 {
            if let m = try? manifest(dir), m.samples.count >= atLeast { before = m.samples.count; break }
            if !p.isRunning { break }
            usleep(10_000)
        }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        return before
    }

    @Test func killedRunResumesExactlyAsAnUninterruptedRun() throws {
        let dir = try temporaryDirectory("resume"), whole = try temporaryDirectory("whole")
        let args = ["sample", "--pipeline", pipeline, "--threads", "1",
                    "--neuron", "ip2:3=4:9", "-n", "400", "-k", "10", "--seed", "5"]
        let before = try startAndKill(args + ["--out", dir], dir: dir, atLeast: 20)
        let saved = try manifest(dir).samples
        #expect(before >= 20 && saved.count < 400, "the run was not interrupted mid-way (\(saved.count) samples)")
        let kept = saved.count * 16
        let codesBefore = Array(try NPY.read(dir + "/codes.npy").array.prefix(kept))
        // The same command again resumes and ends with exactly n samples, the
        // first ones untouched, and the walk continued from the saved state: the
        // codes are those of a run that was never interrupted.
        let again = try runCLI(args + ["--out", dir])
        #expect(again.status == 0, "\(again.stderr)")
        let after = try manifest(dir).samples
        #expect(after.count == 400)
        let codesAfter = try NPY.read(dir + "/codes.npy").array
        #expect(codesAfter.count == 400 * 16)
        #expect(Array(codesAfter.prefix(codesBefore.count)) == codesBefore)
        #expect(FileManager.default.fileExists(atPath: dir + "/samples/0399.png"))
        let uninterrupted = try runCLI(args + ["--out", whole])
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        #expect(try NPY.read(whole + "/codes.npy").array == codesAfter)
        #expect(try manifest(whole).samples.map(\.step) == after.map(\.step))
    }

    struct Totals: Decodable {
        struct Segment: Decodable { var steps: Int; var seconds: Double; var accepted: Int; var n: Int }
        var segments: [Segment]
        var steps: [Int]
    }

    @Test func aLargerNTakesNewStepsWithoutCopiesAndKeepsTotals() throws {
        let dir = try temporaryDirectory("extend")
        let base = ["--neuron", "ip2:3=4:9", "-k", "8", "--seed", "2"]
        let (r1, s1) = try sample(base + ["-n", "24"], out: dir)
        #expect(r1.status == 0, "\(r1.stderr)")
        let (r2, s2) = try sample(base + ["-n", "40"], out: dir)
        #expect(r2.status == 0, "\(r2.stderr)")
        let m = try manifest(dir)
        #expect(m.samples.count == 40)
        let lastStep = m.samples.prefix(24).map(\.step).max()!
        #expect(m.samples.suffix(16).allSatisfy { $0.step > lastStep }, "the new samples come from new steps")
        // No new sample repeats an old one.
        let codes = try NPY.read(dir + "/codes.npy").array
        let rows = (0..<40).map { Array(codes[($0 * 16)..<(($0 + 1) * 16)]) }
        for i in 24..<40 { for j in 0..<i { #expect(rows[i] != rows[j], "sample \(i) copies \(j)") } }
        // Steps and seconds add up over the two segments.
        let totals = try JSONDecoder().decode(Totals.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/samples.json")))
        #expect(totals.segments.count == 2 && totals.segments.map(\.accepted) == [24, 16] && totals.segments.map(\.n) == [24, 40])
        #expect(s2?.steps == totals.segments.reduce(0) { $0 + $1.steps } && s2!.steps > s1!.steps)
        #expect(totals.steps == [s2!.steps])
        // A smaller -n leaves the folder as it is and says so.
        let (r3, s3) = try sample(base + ["-n", "10"], out: dir)
        #expect(r3.status == 0 && s3?.accepted == 40 && r3.stderr.contains("more than -n 10"), "\(r3.stderr)")
        // Other settings are refused, naming what differs.
        let (r4, _) = try sample(["--neuron", "ip2:3=4:9", "-k", "8", "--seed", "3", "-n", "40"], out: dir)
        #expect(r4.status == 1 && r4.stderr.contains("--seed 2 -> 3"), "\(r4.stderr)")
    }

    @Test func oneWriterPerFolderAndResumeChecksTheCodes() throws {
        let dir = try temporaryDirectory("lock")
        let args = ["sample", "--pipeline", pipeline, "--threads", "1", "--neuron", "ip2:3=4:9", "-n", "3000", "--out", dir]
        let p = try startCLI(args)
        for _ in 0..<3000 where (try? manifest(dir))?.samples.isEmpty ?? true { usleep(10_000) }
        let second = try runCLI(args)
        #expect(second.status == 1 && second.stderr.contains("in use by another inverse-set process (pid \(p.processIdentifier))"), "\(second.stderr)")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        // A codes.npy changed behind the folder's back is refused on resume.
        let committed = try manifest(dir).samples.count
        let c = try NPY.read(dir + "/codes.npy")
        c.data[0] += 1
        try NPY.write(Tensor(shape: [committed, 16], values: Array(c.array.prefix(committed * 16))), to: dir + "/codes.npy")
        let third = try runCLI(args)
        #expect(third.status == 1 && third.stderr.contains("checksum"), "\(third.stderr)")
    }

    @Test func baselinesWriteTheSameOutputs() throws {
        for method in ["am", "ppgn"] {
            let dir = try temporaryDirectory(method)
            let (r, s) = try sample(["--neuron", "ip2:3=5:10", "-n", "10", "--seed", "1", "--method", method], out: dir)
            #expect(r.status == 0, "\(method): \(r.stderr)")
            #expect(s?.accepted == 10, "\(method)")
            #expect(try manifest(dir).samples.count == 10)
            #expect(try NPY.read(dir + "/codes.npy").shape.dims == [10, 16])
            // The reported activations are the true ones.
            let rows = try recheck(dir, blob: "ip2").rows
            for (row, saved) in zip(rows, try manifest(dir).samples) {
                #expect(abs(row[3] - saved.activations[0]) <= 1e-3 * max(1, abs(row[3])), "\(method)")
            }
        }
    }

    @Test func badNeuronsAndBandsAreClearErrors() throws {
        let dir = try temporaryDirectory("errors")
        let missing = try sample(["--neuron", "fc9:1=0:1"], out: dir + "/a").0
        #expect(missing.status == 1 && missing.stderr.contains("fc9") && missing.stderr.contains("ip2"), "\(missing.stderr)")
        let range = try sample(["--neuron", "ip2:10=0:1"], out: dir + "/b").0
        #expect(range.status == 1 && range.stderr.contains("ip2") && range.stderr.contains("10"), "\(range.stderr)")
        let outside = try sample(["--neuron", "conv2:7@9,2=0:1"], out: dir + "/c").0
        #expect(outside.status == 1 && outside.stderr.contains("8x8"), "\(outside.stderr)")
        let empty = try sample(["--neuron", "ip2:3=5:5"], out: dir + "/d").0
        #expect(empty.status == 1 && empty.stderr.contains("Z1 < Z2"), "\(empty.stderr)")
        let reversed = try sample(["--neuron", "ip2:3", "--range", "9:2"], out: dir + "/e").0
        #expect(reversed.status == 1, "\(reversed.stderr)")
        let nowhere = try sample(["--neuron", "ip2:3=5:10", "--pipeline", Paths.root + "/Tests/Fixtures/sampler/mismatch_pipeline.json"],
                                 out: dir + "/f").0
        #expect(nowhere.status == 1 && nowhere.stderr.contains("24") && nowhere.stderr.contains("28"), "\(nowhere.stderr)")
    }

    @Test func unreachableBandStopsWithClosestValuesAndKeepsWork() throws {
        let dir = try temporaryDirectory("far")
        let (r, s) = try sample(["--neuron", "ip2:3=500:600", "-n", "5", "--max-steps", "60"], out: dir)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("closest") && r.stderr.contains("500"), "\(r.stderr)")
        #expect(s?.accepted == 0 && s?.steps == 60)
        #expect(FileManager.default.fileExists(atPath: dir + "/samples.json"))
    }

    @Test func nonFiniteWalkersRestartAndNoNaNIsWritten() throws {
        let dir = try temporaryDirectory("nan")
        let r = try runCLI(["sample", "--pipeline", Paths.root + "/Tests/Fixtures/sampler/nan_pipeline.json",
                            "--neuron", "ip2:3=3:8", "-n", "20", "--seed", "0", "--out", dir, "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("NaN or Inf") && r.stderr.contains("restarted"), "\(r.stderr)")
        let m = try manifest(dir)
        #expect(m.samples.count == 20)
        #expect(m.samples.allSatisfy { $0.activations.allSatisfy(\.isFinite) && $0.activations[0] >= 3 && $0.activations[0] <= 8 })
        #expect(try NPY.read(dir + "/codes.npy").array.allSatisfy(\.isFinite))
        #expect(try NPY.read(dir + "/embeddings.npy").array.allSatisfy(\.isFinite))
    }
}
