import Foundation
import Testing
import TestSupport

/// The shipped Fashion-MNIST models (trained by tools/train-fashion.sh) meet
/// their figures on the 10,000 test images, and the README's main job runs on
/// them. Needs Debian's dataset-fashion-mnist (tools/setup.sh installs it).
@Suite(.serialized)
struct ShippedFashionModelTests {
    let dir = Paths.models + "/fashion"

    func score(_ net: String, weights: String) throws -> [String: Any] {
        let r = try runCLI(["score", dir + "/" + net, "--weights", weights, "--iterations", "100"])
        try #require(r.status == 0, "\(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.lastLine.utf8)) as? [String: Any])
        return try #require(j["outputs"] as? [String: Any])
    }

    @Test func classifierIsAtLeast90PercentAccurate() throws {
        let out = try score("classifier_train.prototxt", weights: dir + "/classifier.caffemodel")
        let accuracy = try #require(out["accuracy"] as? Double)
        #expect(accuracy >= 0.90, "test accuracy \(accuracy)")
    }

    @Test func reconstructionsKeepTheirLabel() throws {
        let out = try score("reconstruction_eval.prototxt",
                            weights: dir + "/classifier.caffemodel," + dir + "/generator.caffemodel")
        let accuracy = try #require(out["accuracy"] as? Double)
        #expect(accuracy >= 0.90, "G(E(x)) keeps the label of \(accuracy * 100)% of the test images")
    }

    @Test func weightsFitTheBudget() throws {
        let fm = FileManager.default
        var total = 0
        for f in try fm.contentsOfDirectory(atPath: dir) where f.hasSuffix(".caffemodel") {
            total += (try fm.attributesOfItem(atPath: dir + "/" + f)[.size] as? Int) ?? 0
        }
        #expect(total > 0 && total <= 25_000_000, "\(total) bytes of weights")
    }

    @Test func defaultMainJobSamplesInBand() throws {
        let out = try temporaryDirectory("fashion")
        // The README's first command, with fewer samples.
        let r = try runCLI(["sample", "--neuron", "fc8:7", "--range", "10:15", "-n", "10", "--out", out], cwd: Paths.root)
        #expect(r.status == 0, "\(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.lastLine.utf8)) as? [String: Any])
        #expect(j["accepted"] as? Int == 10 && j["in_band"] as? Double == 1)
        #expect(r.stdout.contains("sheet.png") && r.stdout.contains("report.html"))
        #expect(FileManager.default.fileExists(atPath: out + "/sheet.png"))
        // fc8 units are classes: the report names them from labels.txt.
        let report = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        #expect(report.contains("fc8:7 (Sneaker)"))
    }
}
