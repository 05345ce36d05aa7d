import Foundation
import ImageIO
import Layers
import Runtime
import SamplerIO
import Testing
import TestSupport

/// `run` on PNGs as people call it, and weights that cannot pass for
/// trained ones (`init`, tools/fetch-paper-models).
@Suite(.serialized)
struct RunAndWeightsTests {
    let fashion = Paths.models + "/fashion"
    let lenet = Paths.models + "/lenet_mnist/lenet.prototxt"

    /// Two Fashion-MNIST test images as PNGs, and the classifier input the
    /// pipeline's own preprocessing makes of them.
    func twoImages(_ dir: String) throws -> (pngs: [String], input: Tensor) {
        let data = try ImageDataset.load("/usr/share/datasets/fashion-mnist", split: "test")
        let pngs = try (0..<2).map { i -> String in
            let path = dir + "/image\(i).png"
            try data.image(i).png().write(to: path)
            return path
        }
        let loaded = try LoadedPipeline.load(fashion + "/pipeline.json", registry: try builtinRegistry())
        return (pngs, try loaded.inputs(data, [0, 1]))
    }

    /// PNGs of a 1-channel [0, 1] net get the preprocessing of the pipeline
    /// next to it (not ImageNet's 255 and BGR): fc8 matches the pipeline's own
    /// input; two PNGs are one batch of two; the top 5 is printed with labels.
    @Test func pngBatchWithTheNetsPreprocessingAndTopFive() throws {
        let dir = try temporaryDirectory("runpng")
        let (pngs, input) = try twoImages(dir)
        let args = ["run", fashion + "/classifier_deploy.prototxt", "--weights", fashion + "/classifier.caffemodel"]
        let r = try runCLI(args + ["--input", "data=\(pngs[0]),\(pngs[1])", "--out", dir + "/png"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("pipeline.json (data.preprocess): raw scale 1.0"), "\(r.stderr)")
        try NPY.write(input, to: dir + "/input.npy")
        let n = try runCLI(args + ["--input", "data=\(dir)/input.npy", "--out", dir + "/npy"])
        #expect(n.status == 0, "\(n.stderr)")
        let a = try NPY.read(dir + "/png/fwd_fc8.npy"), b = try NPY.read(dir + "/npy/fwd_fc8.npy")
        #expect(a.shape.dims == [2, 10], "one batch item per PNG, not the declared batch filled with copies")
        #expect(relativeError(a.array, b.array) <= 1e-4, "\(a.array) vs \(b.array)")
        // Test images 0 and 1 are an ankle boot and a pullover; the classifier gets both.
        let lines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("prob top-5") }
        #expect(lines.count == 2, "\(r.stdout)")
        #expect(lines.first?.contains("image0.png): Ankle boot (9)") == true && lines.last?.contains("image1.png): Pullover (2)") == true, "\(r.stdout)")
        // The same with the flag repeated.
        let repeated = try runCLI(args + ["--input", "data=\(pngs[0])", "--input", "data=\(pngs[1])", "--out", dir + "/rep"])
        #expect(repeated.status == 0, "\(repeated.stderr)")
        let again = try NPY.read(dir + "/rep/fwd_fc8.npy")
        #expect(again.array == a.array)
    }

    @Test func aOneChannelNetWithoutPreprocessingIsRefusedWithTheFlags() throws {
        let dir = try temporaryDirectory("run1ch")
        let (pngs, _) = try twoImages(dir)
        let r = try runCLI(["run", lenet, "--input", "data=\(pngs[0])", "--out", dir + "/out"])
        #expect(r.status == 1 && r.stderr.contains("pass --raw-scale 1") && r.stderr.contains("--raw-scale 255"), "\(r.stderr)")
        let ok = try runCLI(["run", lenet, "--input", "data=\(pngs[0])", "--raw-scale", "1", "--out", dir + "/out"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try NPY.read(dir + "/out/fwd_prob.npy").shape.dims == [1, 10])
    }

    /// A net whose input is declared (C, H, W), without a batch axis, gets
    /// one image of that rank from one PNG; several PNGs are refused.
    @Test func aRankThreeInputTakesOnePNG() throws {
        let dir = try temporaryDirectory("run3")
        let (pngs, _) = try twoImages(dir)
        try """
            layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 28 dim: 28 } } }
            layer { name: "double" type: "Power" bottom: "data" top: "double" power_param { scale: 2 } }
            """.write(toFile: dir + "/rank3.prototxt", atomically: true, encoding: .utf8)
        let r = try runCLI(["run", dir + "/rank3.prototxt", "--input", "data=\(pngs[0])", "--raw-scale", "1", "--out", dir + "/out"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try NPY.read(dir + "/out/fwd_double.npy")
        #expect(out.shape.dims == [1, 28, 28])
        let image = try PNGImage.read(pngs[0])
        #expect(abs(out[14 * 28 + 14] - 2 * Float(image.pixels[14 * 28 + 14]) / 255) < 1e-5)
        let two = try runCLI(["run", dir + "/rank3.prototxt", "--input", "data=\(pngs[0]),\(pngs[1])", "--raw-scale", "1", "--out", dir + "/out2"])
        #expect(two.status == 1 && two.stderr.contains("no batch axis") && two.stderr.contains("2 PNGs"), "\(two.stderr)")
    }

    /// `init` marks what it fills: loading the file warns, and a name that a
    /// SHA256SUMS next to it lists (downloaded weights) is refused.
    @Test func initWeightsAreMarkedRandomAndNeverReplaceDownloads() throws {
        let dir = try temporaryDirectory("initmark")
        let w = dir + "/random_lenet.caffemodel"
        #expect(try runCLI(["init", lenet, "--out", w]).status == 0)
        let inspect = try runCLI(["inspect", lenet, "--weights", w])
        #expect(inspect.status == 0 && inspect.stderr.contains("random_lenet.caffemodel holds random weights written by `inverse-set init`"), "\(inspect.stderr)")
        // Trained weights copied whole (net surgery) are not marked.
        let copy = dir + "/copy.caffemodel"
        #expect(try runCLI(["init", lenet, "--weights", Paths.models + "/lenet_mnist/lenet_iter_10000.caffemodel", "--out", copy]).status == 0)
        #expect(!(try runCLI(["inspect", lenet, "--weights", copy]).stderr.contains("random weights")))
        try "0123  real.caffemodel\n".write(toFile: dir + "/SHA256SUMS", atomically: true, encoding: .utf8)
        let refused = try runCLI(["init", lenet, "--out", dir + "/real.caffemodel"])
        #expect(refused.status == 1 && refused.stderr.contains("lists it as downloaded trained weights") && refused.stderr.contains("random_real.caffemodel"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/real.caffemodel"))
    }

    /// tools/fetch-paper-models with downloads from a local folder: a file it
    /// did not download is refused with its path, and a download that fails
    /// the published SHA-1 is never recorded in SHA256SUMS.
    @Test func fetchPaperModelsRecordsOnlyWhatItChecked() throws {
        let script = Paths.root + "/tools/fetch-paper-models"
        let models = try temporaryDirectory("fetch"), source = try temporaryDirectory("fetchsrc")
        func fetch() throws -> CLIResult {
            var env = ProcessInfo.processInfo.environment
            env["FETCH_PAPER_MODELS_URL_BASE"] = "file://" + source
            return try runCLI([script, models], environment: env, executable: "/bin/bash")
        }
        // Already there (random weights from init), not listed: refused, nothing recorded.
        FileManager.default.createFile(atPath: models + "/bvlc_reference_caffenet.caffemodel", contents: Data("random".utf8))
        let there = try fetch()
        #expect(there.status == 1 && there.stderr.contains("delete \(models)/bvlc_reference_caffenet.caffemodel"), "\(there.stderr)")
        #expect(!FileManager.default.fileExists(atPath: models + "/SHA256SUMS"))
        // Downloaded, but not the model zoo's file: refused before any sha256 is recorded.
        try FileManager.default.removeItem(atPath: models + "/bvlc_reference_caffenet.caffemodel")
        FileManager.default.createFile(atPath: source + "/bvlc_reference_caffenet.caffemodel", contents: Data("not caffenet".utf8))
        let wrong = try fetch()
        #expect(wrong.status == 1 && wrong.stderr.contains("does not match the published SHA-1"), "\(wrong.stderr)")
        #expect(!FileManager.default.fileExists(atPath: models + "/SHA256SUMS"))
        // A listed file that does not match names the file to delete.
        try "\(String(repeating: "0", count: 64))  bvlc_reference_caffenet.caffemodel\n".write(toFile: models + "/SHA256SUMS", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: models + "/bvlc_reference_caffenet.caffemodel")
        let listed = try fetch()
        #expect(listed.status == 1 && listed.stderr.contains("delete \(models)/bvlc_reference_caffenet.caffemodel"), "\(listed.stderr)")
    }

    @Test func sha256MatchesKnownDigests() throws {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two blocks of padding (56 bytes) and a multi-block message.
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000)) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        // A file read in 1 MiB pieces (3 MiB + 5 bytes: pieces that end mid-block) against sha256sum.
        let dir = try temporaryDirectory("sha")
        var bytes = [UInt8](repeating: 0, count: 3 << 20 + 5)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        FileManager.default.createFile(atPath: dir + "/f", contents: Data(bytes))
        let r = try runCLI([dir + "/f"], executable: "/usr/bin/sha256sum")
        #expect(SHA256.hex(file: dir + "/f") == String(r.stdout.prefix(64)))
        #expect(SHA256.hex(file: dir + "/missing") == nil)
        // Pieces of uneven sizes give the digest of the whole.
        var h = SHA256.Hasher256()
        var at = 0
        for size in [1, 63, 64, 65, 7, 1_000, 100_003] where at < bytes.count {
            let end = min(bytes.count, at + size)
            bytes[at..<end].withUnsafeBufferPointer { h.update($0) }
            at = end
        }
        bytes[at...].withUnsafeBufferPointer { h.update($0) }
        #expect(h.finish() == String(r.stdout.prefix(64)))
    }
}
