import Foundation
import ImageIO
import Runtime
import Testing
import TestSupport

/// The command line as users type it (issue 17): negative bands without `=`,
/// units by class name, near-miss suggestions, --version, the default pipeline
/// from any directory, help that wraps cleanly with an example, Ctrl-C,
/// files given as --out.
@Suite(.serialized)
struct CommandHabitsTests {
    let sampler = Paths.root + "/Tests/Fixtures/sampler"
    let lenet = Paths.models + "/lenet_mnist/lenet.prototxt"
    let fashionData = "/usr/share/datasets/fashion-mnist"

    struct Manifest: Decodable {
        struct Band: Decodable { var low: Float; var high: Float }
        struct Row: Decodable { var activations: [Float]; var band: Int; var walker: Int }
        var samples: [Row]
        var bands: [[Band]]
    }
    func manifest(_ dir: String) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/samples.json")))
    }

    @Test func versionPrintsTheToolAndItsCommit() throws {
        let r = try runCLI(["--version"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("inverse-set 0.2"), "\(r.stdout)")
        // Built from this checkout: the commit is named.
        if FileManager.default.fileExists(atPath: Paths.root + "/.git") {
            #expect(r.stdout.contains("commit "), "\(r.stdout)")
        }
    }

    @Test func aNegativeBandNeedsNoEqualsSign() throws {
        let dir = try temporaryDirectory("negative")
        let r = try runCLI(["sample", "--pipeline", sampler + "/pipeline.json", "--neuron", "ip2:3", "--range", "-2:3",
                            "-n", "4", "--seed", "1", "--threads", "1", "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let m = try manifest(dir)
        #expect(m.bands.first?.first?.low == -2 && m.bands.first?.first?.high == 3)
        #expect(m.samples.count == 4 && m.samples.allSatisfy { $0.activations[0] >= -2 && $0.activations[0] <= 3 })
    }

    @Test func unitsByClassNameAndNearMisses() throws {
        let labelled = sampler + "/labelled_pipeline.json"
        let byName = try temporaryDirectory("byname"), byIndex = try temporaryDirectory("byindex")
        let common = ["-n", "6", "--seed", "2", "--threads", "1", "--range", "4:9"]
        let a = try runCLI(["sample", "--pipeline", labelled, "--neuron", "ip2:Three", "--out", byName] + common)
        #expect(a.status == 0, "\(a.stderr)")
        let b = try runCLI(["sample", "--pipeline", labelled, "--neuron", "ip2:3", "--out", byIndex] + common)
        #expect(b.status == 0, "\(b.stderr)")
        // The name is unit 3: the same walk, the same codes.
        #expect(FileManager.default.contents(atPath: byName + "/codes.npy") == FileManager.default.contents(atPath: byIndex + "/codes.npy"))
        let dir = try temporaryDirectory("typos")
        let cases: [([String], String)] = [
            (["--pipeline", labelled, "--neuron", "ip2:thre"], "no class named 'thre' (did you mean 'three'?)"),
            (["--pipeline", sampler + "/pipeline.json", "--neuron", "ip2:three"], "units are named only when the pipeline has a labels file"),
            (["--pipeline", labelled, "--neuron", "conv22:3"], "no blob 'conv22' (did you mean 'conv2'?)"),
            (["--pipeline", labelled, "--neuron", "pre(ipp1):3"], "no layer named 'ipp1' (did you mean 'ip1'?)"),
        ]
        for (args, expected) in cases {
            let r = try runCLI(["sample", "--out", dir + "/x", "--range", "0:1"] + args)
            #expect(r.status == 1 && r.stderr.contains(expected), "\(args): \(r.stderr)")
        }
        // A layer type one letter off is named.
        let proto = dir + "/typo.prototxt"
        try "input: \"x\" input_shape { dim: 1 dim: 1 dim: 4 dim: 4 }\nlayer { name: \"c\" type: \"Convolutoin\" bottom: \"x\" top: \"y\" convolution_param { num_output: 1 kernel_size: 1 } }\n"
            .write(toFile: proto, atomically: true, encoding: .utf8)
        let t = try runCLI(["inspect", proto])
        #expect(t.status == 1 && t.stderr.contains("'Convolutoin' (did you mean 'Convolution'?)"), "\(t.stderr)")
        // Stats names a near miss too.
        let s = try runCLI(["stats", "--pipeline", sampler + "/pipeline.json", "--dataset", fashionData, "--blobs", "ip3", "--limit", "10"])
        #expect(s.status == 1 && s.stderr.contains("did you mean 'ip"), "\(s.stderr)")
    }

    /// The paper's pipeline before its download names the missing file and where to read how to get it.
    @Test func missingPipelineWeightsPointToTheReadme() throws {
        let dir = try temporaryDirectory("noweights")
        try FileManager.default.copyItem(atPath: Paths.models + "/caffenet-fc6/README.md", toPath: dir + "/README.md")
        let spec = try String(contentsOfFile: Paths.models + "/caffenet-fc6/pipeline.json", encoding: .utf8)
            .replacingOccurrences(of: "\"../", with: "\"\(Paths.models)/")
        try spec.write(toFile: dir + "/pipeline.json", atomically: true, encoding: .utf8)
        let r = try runCLI(["sample", "--pipeline", dir + "/pipeline.json", "--neuron", "fc8:980", "--range", "40:50", "--out", dir + "/out"])
        #expect(r.status == 1 && r.stderr.contains("generator.caffemodel: no such file (weights of")
                && r.stderr.contains("\(dir)/README.md says how to get it"), "\(r.stderr)")
    }

    @Test func theDefaultPipelineIsFoundFromAnyDirectory() throws {
        let cwd = try temporaryDirectory("cwd")
        let r = try runCLI(["stats", "--blobs", "fc8", "--units", "7", "--limit", "50"], cwd: cwd)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("50 images of") && r.stdout.contains("fc8"), "\(r.stdout)")
    }

    @Test func percentileBandsAreThoseOfStats() throws {
        let dir = try temporaryDirectory("percentiles")
        let pipeline = sampler + "/pipeline.json"
        let r = try runCLI(["sample", "--pipeline", pipeline, "--dataset", fashionData, "--neuron", "ip2:3", "--range", "p90:p99",
                            "--variant", "paper", "--no-evaluate", "-n", "4", "--threads", "1", "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("band p90:p99 over the 10000 images"), "\(r.stderr)")
        let s = try runCLI(["stats", "--pipeline", pipeline, "--dataset", fashionData, "--blobs", "ip2", "--json"])
        #expect(s.status == 0, "\(s.stderr)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [String: Any])
        let unit = try #require(((stats["blobs"] as? [[String: Any]])?.first?["units"] as? [[String: Any]])?[3])
        let p90 = try #require(unit["p90"] as? Double), p99 = try #require(unit["p99"] as? Double)
        let band = try #require(try manifest(dir).bands.first?.first)
        #expect(abs(Double(band.low) - p90) <= 1e-4 * max(1, abs(p90)) && abs(Double(band.high) - p99) <= 1e-4 * max(1, abs(p99)),
                "band \(band.low):\(band.high), stats \(p90):\(p99)")
        // The same flags over another dataset give other bands: the folder names them.
        let other = dir + "-other.npy"
        let pixels: [Float] = (0..<(5 * 784)).map { i in Float((i * 7919) % 101) / 100 }
        try NPY.write(Tensor(shape: [5, 1, 28, 28], values: pixels), to: other)
        let again = try runCLI(["sample", "--pipeline", pipeline, "--dataset", other, "--neuron", "ip2:3", "--range", "p90:p99",
                                "--variant", "paper", "--no-evaluate", "-n", "4", "--threads", "1", "--out", dir])
        #expect(again.status == 1 && again.stderr.contains("holds a different run (bands [\(band.low), \(band.high)] -> ["), "\(again.stderr)")
        // A percentile band without a dataset says what is missing.
        let none = try runCLI(["sample", "--pipeline", pipeline, "--neuron", "ip2:3=p90:p99", "--out", dir + "/b"])
        #expect(none.status == 1 && none.stderr.contains("percentile bands need a dataset"), "\(none.stderr)")
    }

    /// Every subcommand's help: paragraphs wrapped at 80 columns without
    /// ragged short lines inside them, an example, and --neuron required.
    @Test func helpWrapsCleanlyWithAnExample() throws {
        for command in ["sample", "evaluate", "stats", "diversity", "inspect", "run", "init", "train", "score", "bench", "layers", "atlas"] {
            let r = try runCLI([command, "--help"], environment: ["COLUMNS": "80", "PATH": "/usr/bin:/bin"])
            #expect(r.status == 0, "\(command): \(r.stderr)")
            #expect(r.stdout.contains("Example: inverse-set \(command)"), "\(command) has no example")
            let prose = r.stdout.components(separatedBy: "USAGE:")[0].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (i, line) in prose.enumerated() where i + 1 < prose.count {
                let next = prose[i + 1]
                #expect(line.count <= 80, "\(command): \(line)")
                // A line cut short in the middle of a paragraph is a hard break re-wrapped.
                let midParagraph = !line.isEmpty && !next.isEmpty && !next.hasPrefix(" ") && !line.hasPrefix(" ")
                #expect(!(midParagraph && line.count < 50), "\(command): ragged line '\(line)'")
            }
        }
        let usage = try runCLI(["sample", "--help"]).stdout
        #expect(usage.contains("--neuron <neuron> ...") && !usage.contains("[--neuron <neuron> ...]"), "\(usage)")
        let missing = try runCLI(["sample", "--out", try temporaryDirectory("noneuron")])
        #expect(missing.status != 0 && missing.stderr.contains("--neuron"), "\(missing.stderr)")
    }

    @Test func aFileAsOutGetsAPlainMessage() throws {
        let dir = try temporaryDirectory("fileout")
        let file = dir + "/taken"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        let run = try runCLI(["run", lenet, "--input", "data=\(Paths.fixture("real_lenet"))/in_data.npy", "--out", file])
        #expect(run.status == 1 && run.stderr.contains("taken: is a file, not a folder; choose another --out"), "\(run.stderr)")
        #expect(!run.stderr.contains("NSCocoaErrorDomain") && !run.stderr.contains("Code="), "\(run.stderr)")
        let sample = try runCLI(["sample", "--pipeline", sampler + "/pipeline.json", "--neuron", "ip2:3=4:9", "--out", file])
        #expect(sample.status == 1 && sample.stderr.contains("is a file, not a folder"), "\(sample.stderr)")
        // init's --out is a file: a folder there is refused and left alone.
        let folder = dir + "/folder"
        try FileManager.default.createDirectory(atPath: folder + "/inside", withIntermediateDirectories: true)
        let initInto = try runCLI(["init", lenet, "--out", folder])
        #expect(initInto.status == 1 && initInto.stderr.contains("folder: is a folder; give --out a file name"), "\(initInto.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder + "/inside"))
    }

    /// Ctrl-C: status 130, how many samples the folder keeps (as samples.json
    /// says) and the command that resumes, which then completes the run.
    @Test func ctrlCSaysWhatWasKeptAndHowToResume() throws {
        let dir = try temporaryDirectory("ctrlc")
        let args = ["sample", "--pipeline", sampler + "/pipeline.json", "--threads", "1", "--neuron", "ip2:3=4:9",
                    "-n", "3000", "--out", dir]
        let err = Pipe()
        let p = try startCLI(args, stderr: err)
        for _ in 0..<3000 where (try? manifest(dir))?.samples.isEmpty ?? true { usleep(10_000) }
        kill(p.processIdentifier, SIGINT)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 130, "\(text)")
        let kept = try manifest(dir).samples.count
        #expect(kept > 0 && kept < 3000)
        // The count is read when the signal arrives; a batch may still commit before the exit.
        let reported = text.components(separatedBy: "interrupted; \(dir) keeps ").dropFirst().first
            .flatMap { Int($0.prefix { $0.isNumber }) }
        #expect(reported.map { $0 > 0 && $0 <= kept } == true, "\(text)")
        #expect(text.contains("Resume with the same command:\n  \(BuildProducts.executable) sample --pipeline"), "\(text)")
        // The printed command resumes (a smaller -n ends at once with what is there).
        let again = try runCLI(args.map { $0 == "3000" ? String(kept) : $0 })
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try manifest(dir).samples.count == kept)
    }
}
