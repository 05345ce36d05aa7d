import Foundation
import Testing
import CaffeImport
import GraphIR
import Layers
import Runtime
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

    /// The generator's images are about as sharp as real ones: mean |4-neighbour
    /// Laplacian| (OpenCV's ksize 1, borders reflected) of G(E(x)) over that
    /// of x, on 500 test images. OpenCV's importer measures 0.917 on 2,000
    /// (tools/reference/measure_generator.py); phase A alone gave 0.60.
    @Test func reconstructionsAreSharp() throws {
        var graph = try CaffeModel.load(prototxt: dir + "/reconstruction_eval.prototxt", state: NetState(phase: "TEST"))
        try CaffeModel.attachWeights(&graph, from: dir + "/classifier.caffemodel")
        try CaffeModel.attachWeights(&graph, from: dir + "/generator.caffemodel")
        let net = try Net(graph: graph, registry: try builtinRegistry(), phase: .test, threads: 2)
        func laplacian(_ t: Tensor) -> Double {
            let n = t.shape[0], h = t.shape[2], w = t.shape[3]
            func reflect(_ i: Int, _ size: Int) -> Int { i < 0 ? -i : (i >= size ? 2 * size - 2 - i : i) }
            var sum = 0.0
            for b in 0..<n {
                let base = b * h * w
                func px(_ y: Int, _ x: Int) -> Double { Double(min(1, max(0, t[base + reflect(y, h) * w + reflect(x, w)]))) }
                for y in 0..<h { for x in 0..<w {
                    sum += abs(px(y - 1, x) + px(y + 1, x) + px(y, x - 1) + px(y, x + 1) - 4 * px(y, x))
                } }
            }
            return sum
        }
        var real = 0.0, generated = 0.0
        for _ in 0..<5 {
            try net.forward([:])
            real += laplacian(try #require(try net.blob("data")))
            generated += laplacian(try #require(try net.blob("gen")))
        }
        let ratio = generated / real
        #expect(ratio >= 0.85 && ratio <= 1.0, "sharpness \(ratio)")
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
