import Foundation
import Sampler
import SamplerIO
import Testing
import TestSupport

/// `sample` and `evaluate` on the shipped Fashion pipeline, judged against
/// Fashion-MNIST's test split (Debian's dataset-fashion-mnist).
@Suite(.serialized)
struct EvaluateCommandTests {
    @Test func sampleReportsAndEvaluateRecomputesTheFigures() throws {
        let dir = try temporaryDirectory("evaluate")
        let r = try runCLI(["sample", "--pipeline", Paths.models + "/fashion/pipeline.json", "--neuron", "fc8:7=10:15",
                            "-n", "40", "--seed", "1", "--prior-count", "2000", "--out", dir])
        #expect(r.status == 0, "\(r.stderr)")
        let path = dir + "/evaluation.json"
        let saved = try #require(FolderEvaluation.read(dir), "sample wrote no evaluation.json")
        let band = try #require(saved.bands.first)
        // 452 of the 10,000 test images have fc8:7 in [10, 15] on the shipped classifier.
        #expect(band.realImages.count == 452 && saved.evaluationImages == 10_000)
        #expect(band.samples.sampleCount == 40 && band.control.sampleCount == 40)
        #expect(band.nearest.count == 40 && band.topClass?.count == 40)
        // Samples of the sneaker unit's band are classified as sneakers (class 7) mostly.
        #expect(band.topClass!.filter { $0 == 7 }.count >= 30, "\(band.topClass!)")
        for f in ["report.html", "real/\(band.realImages[0]).png", "real/\(band.nearest[0].image).png"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + f), "\(f) missing")
        }
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        #expect(html.contains("Against the real inverse set") && html.contains("capped at p95") && html.contains("nearest: "))
        try FileManager.default.removeItem(atPath: path)
        let e = try runCLI(["evaluate", dir])
        #expect(e.status == 0, "\(e.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(e.lastLine.utf8)) as? [String: Any])
        #expect(j["real_in_band"] as? Int == 452)
        let again = try #require(FolderEvaluation.read(dir)?.bands.first)
        #expect(again.samples == band.samples && again.control == band.control)
        #expect(abs((j["coverage"] as? Double ?? -1) - band.samples.coverage!) < 1e-12)
        #expect(e.stdout.contains("capped_precision"))
    }

    @Test func evaluateErrorsNameWhatIsWrong() throws {
        let dir = try temporaryDirectory("evalerr")
        let none = try runCLI(["evaluate", dir + "/missing"])
        #expect(none.status == 1 && none.stderr.contains("no samples.json"), "\(none.stderr)")
        // A folder of the small test pipeline, which names no dataset.
        let small = try runCLI(["sample", "--pipeline", Paths.root + "/Tests/Fixtures/sampler/pipeline.json", "--neuron", "ip2:3=4:9",
                                "-n", "5", "--out", dir + "/small", "--threads", "1"])
        #expect(small.status == 0, "\(small.stderr)")
        let noData = try runCLI(["evaluate", dir + "/small"])
        #expect(noData.status == 1 && noData.stderr.contains("names no dataset") && noData.stderr.contains("--dataset"), "\(noData.stderr)")
        let bad = try runCLI(["evaluate", dir + "/small", "--dataset", dir + "/nowhere"])
        #expect(bad.status == 1 && bad.stderr.contains("no such dataset"), "\(bad.stderr)")
    }
}
