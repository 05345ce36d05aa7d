import Foundation
import ImageIO
import Testing
import TestSupport

/// report.html and samples.json stand alone: what was run, by which build,
/// on which weights, per band; a band without samples is marked, not broken.
@Suite(.serialized)
struct ReportTests {
    let pipeline = Paths.root + "/Tests/Fixtures/sampler/pipeline.json"
    let lenetWeights = Paths.models + "/lenet_mnist/lenet_iter_10000.caffemodel"

    func json(_ path: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }
    func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    func sha256(_ file: String) throws -> String {
        let r = try runCLI([file], executable: "/usr/bin/sha256sum")
        return String(r.stdout.prefix(64))
    }

    /// Two bands over two segments (a first run, then a larger -n).
    @Test func provenanceAndPerBandFiguresOfAResumedMultiBandRun() throws {
        let dir = try temporaryDirectory("report")
        let base = ["sample", "--pipeline", pipeline, "--neuron", "ip2:3", "--range", "6:9", "--range", "0:3",
                    "-k", "6", "--seed", "4", "--threads", "1", "--out", dir]
        #expect(try runCLI(base + ["-n", "4"]).status == 0)
        let r = try runCLI(base + ["-n", "8", "--columns", "5", "--tile", "32", "--label-tiles"])
        #expect(r.status == 0, "\(r.stderr)")
        let m = try json(dir + "/samples.json")
        // Numbers are numbers; each sample names its walker.
        let settings = try #require(m["settings"] as? [String: Any])
        #expect(settings["k"] as? Int == 6 && settings["seed"] as? Int == 4 && settings["max_steps"] as? Int == 3000)
        #expect(m["n"] as? Int == 8)
        let samples = try #require(m["samples"] as? [[String: Any]])
        #expect(samples.count == 16 && samples.allSatisfy { ($0["walker"] as? Int).map { (0..<6).contains($0) } == true })
        // Segments: both command lines, the tool and its commit.
        let segments = try #require(m["segments"] as? [[String: Any]])
        #expect(segments.count == 2)
        #expect(segments.allSatisfy { ($0["tool"] as? String)?.hasPrefix("inverse-set ") == true })
        let version = try runCLI(["--version"]).stdout
        if let commit = segments.last?["commit"] as? String { #expect(version.contains(commit), "\(version)") }
        // Weights: the classifier's file with its sha256; G has none (random).
        let weights = try #require(m["weights"] as? [[String: Any]])
        let classifier = try #require(weights.first { $0["net"] as? String == "classifier" })
        #expect(classifier["sha256"] as? String == (try sha256(lenetWeights)) && classifier["random"] as? Bool == false)
        #expect(weights.contains { $0["net"] as? String == "generator" && $0["random"] as? Bool == true && $0["file"] as? String == "" })

        let html = try text(dir + "/report.html")
        #expect(html.contains("<h1>Inverse set of ip2:3</h1>"))
        for seg in segments {
            let command = try #require(seg["command"] as? [String])
            #expect(html.contains(command.joined(separator: " ")), "command line \(command) missing")
        }
        #expect(html.contains("n = 8 per band, K = 6, seed 4"))
        let steps = (m["steps"] as? [Int] ?? []).reduce(0, +)
        #expect(steps > 0 && html.contains("\(steps) gradient steps and") && html.contains("over 2 segment(s)"))
        #expect(html.contains(classifier["sha256"] as! String))
        #expect(html.contains("class=\"warning\"><b>Random weights:</b> the generator has no weights file"))
        if let commit = segments.last?["commit"] as? String { #expect(html.contains("commit \(commit)")) }
        // Per-band figures: one table row per band; a histogram per band with its axes.
        #expect(html.contains("class=\"fig bands\""))
        #expect(html.contains("<td>1: [6.0, 9.0]</td><td>8</td>") && html.contains("<td>2: [0.0, 3.0]</td><td>8</td>"), "\(html)")
        #expect(html.components(separatedBy: "samples per bin (y), activation (x)").count == 3)
        // The sheet: 5 columns of 32-pixel tiles, two band rows, a caption strip under each tile.
        let sheet = try PNGImage.read(dir + "/sheet.png")
        #expect(sheet.height == 2 + 2 * (32 + 10 + 2), "height \(sheet.height)")
        #expect(sheet.width > 2 + 5 * (32 + 2) && sheet.width < 2 + 5 * (32 + 2) + 200, "width \(sheet.width)")
    }

    /// Captions name the classifier's top class when the pipeline has labels,
    /// also without a dataset: same tiles, longer captions than without labels.
    @Test func tileCaptionsNameTheTopClass() throws {
        let dir = try temporaryDirectory("captions")
        let args = ["--neuron", "ip2:3=4:9", "-n", "4", "--seed", "3", "--threads", "1", "--columns", "4", "--tile", "40", "--label-tiles"]
        let plain = try runCLI(["sample", "--pipeline", pipeline, "--out", dir + "/plain"] + args)
        let labelled = try runCLI(["sample", "--pipeline", Paths.root + "/Tests/Fixtures/sampler/labelled_pipeline.json",
                                   "--out", dir + "/labelled"] + args)
        #expect(plain.status == 0 && labelled.status == 0, "\(plain.stderr)\n\(labelled.stderr)")
        let a = try PNGImage.read(dir + "/plain/sheet.png"), b = try PNGImage.read(dir + "/labelled/sheet.png")
        #expect(a.width == b.width && a.height == b.height && a.height == 2 + 40 + 10 + 2)
        // Ink per pixel row: the tiles (rows 2..<42) are the same, the caption strip has more text.
        func ink(_ img: PNGImage, _ rows: Range<Int>) -> Int {
            rows.reduce(0) { acc, y in acc + (0..<(img.width * img.channels)).filter { img.pixels[y * img.width * img.channels + $0] < 128 }.count }
        }
        #expect(Array(a.pixels[0..<(42 * a.width * a.channels)]) == Array(b.pixels[0..<(42 * b.width * b.channels)]))
        #expect(ink(b, 42..<52) > ink(a, 42..<52), "the labelled captions carry the class names")
    }

    @Test func titleFollowsTheMethod() throws {
        let dir = try temporaryDirectory("titles")
        for (method, title) in [("am", "Activation maximisation of ip2:3=5:10"), ("ppgn", "PPGN samples of ip2:3=5:10")] {
            let r = try runCLI(["sample", "--pipeline", pipeline, "--neuron", "ip2:3=5:10", "-n", "4", "--method", method,
                                "--threads", "1", "--out", dir + "/" + method])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try text(dir + "/\(method)/report.html").contains("<h1>\(title)</h1>"), "\(method)")
        }
        let paper = try runCLI(["sample", "--pipeline", pipeline, "--neuron", "ip2:3=5:10", "-n", "4", "--variant", "paper",
                                "--threads", "1", "--out", dir + "/paper"])
        #expect(paper.status == 0, "\(paper.stderr)")
        #expect(try text(dir + "/paper/report.html").contains("(the paper's algorithm)</h1>"))
    }

    /// A band out of reach stops once the walkers stop getting nearer (long
    /// before --max-steps), records the closest activation, and the report
    /// marks it instead of showing a broken sheet.
    @Test func anUnreachableBandStopsEarlyAndIsMarked() throws {
        let dir = try temporaryDirectory("stall")
        let r = try runCLI(["sample", "--pipeline", pipeline, "--neuron", "ip2:3=500:600", "-n", "5", "--max-steps", "3000",
                            "--threads", "1", "--out", dir])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("none in the band, the closest activation no nearer for 200 steps"), "\(r.stderr)")
        // The progress line shows the best activation so far while none is in the band.
        #expect(r.stderr.contains("0/5 samples") && r.stderr.contains("closest ip2:3=500:600~"), "\(r.stderr)")
        let m = try json(dir + "/samples.json")
        let steps = try #require((m["steps"] as? [Int])?.first)
        #expect(steps < 3000, "stopped at \(steps) steps")
        let closest = try #require(((m["closest"] as? [Any])?.first as? [Double])?.first)
        #expect(closest < 500 && r.stderr.contains("reached \(Float(closest))"), "\(closest): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/sheet.png"))
        #expect(r.stdout.contains("no sheet (no sample)"), "\(r.stdout)")
        let html = try text(dir + "/report.html")
        #expect(!html.contains("src=\"sheet.png\"") && html.contains("No sample was accepted"))
        #expect(html.contains("class=\"closest\"") && html.contains("closest activation reached: \(Float(closest))"))
        // --stall-steps 0 walks on to --max-steps.
        let full = try runCLI(["sample", "--pipeline", pipeline, "--neuron", "ip2:3=500:600", "-n", "5", "--max-steps", "400",
                               "--stall-steps", "0", "--threads", "1", "--out", dir + "/full"])
        let fullSteps = try json(dir + "/full/samples.json")["steps"] as? [Int]
        #expect(full.status == 2 && fullSteps == [400], "\(full.stderr)")
    }
}
