import Foundation
import Testing
import CaffeImport
import GraphIR
import ImageIO
import Runtime
import TestSupport

/// `inverse-set train-generator`: the files it writes for the shipped
/// Fashion classifier are the shipped ones; a small classifier gets a
/// generator and a pipeline that `sample` uses; every data source; errors.
struct TrainGeneratorTests {
    static let fashion = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

    /// The shipped Fashion prototxts are what the command writes.
    @Test func writesTheShippedFashionFiles() throws {
        let dir = try temporaryDirectory("tgfashion")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCLI(["train-generator", "Models/fashion/classifier_deploy.prototxt",
                            "--weights", "Models/fashion/classifier.caffemodel", "--data", Self.fashion,
                            "--out", dir, "--files-only"], cwd: Paths.root)
        #expect(r.status == 0, "\(r.stderr)")
        for name in ["generator_train.prototxt", "generator_solver.prototxt", "generator_adversarial_train.prototxt",
                     "generator_adversarial_solver.prototxt", "discriminator_train.prototxt",
                     "discriminator_solver.prototxt", "generator_deploy.prototxt"] {
            let ours = try String(contentsOfFile: dir + "/" + name, encoding: .utf8)
                .replacingOccurrences(of: dir, with: "Models/fashion")
            let shipped = try String(contentsOfFile: Paths.models + "/fashion/" + name, encoding: .utf8)
            #expect(ours == shipped, "\(name) differs from the shipped file")
        }
    }

    /// 40 grey 8x8 images: a bright square in one of four corners (the label).
    static func writeImages(_ dir: String) throws -> (pixels: [UInt8], labels: [UInt8]) {
        var rng = SplitMix64(seed: 5)
        var pixels: [UInt8] = [], labels: [UInt8] = []
        for i in 0..<40 {
            let corner = i % 4
            labels.append(UInt8(corner))
            for y in 0..<8 {
                for x in 0..<8 {
                    let inside = (y < 4) == (corner < 2) && (x < 4) == (corner % 2 == 0)
                    pixels.append(UInt8(inside ? 160 + Int(rng.next() % 90) : Int(rng.next() % 40)))
                }
            }
        }
        try Data(DataLayerTests.idx(dims: [40, 8, 8], body: pixels)).write(to: URL(fileURLWithPath: dir + "/images-idx3-ubyte"))
        return (pixels, labels)
    }

    static let classifier = """
        name: "Tiny"
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
        layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
        layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
        layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
        layer { name: "fc6" type: "InnerProduct" bottom: "pool1" top: "fc6" inner_product_param { num_output: 12 weight_filler { type: "msra" } } }
        layer { name: "relu6" type: "ReLU" bottom: "fc6" top: "fc6" }
        layer { name: "drop6" type: "Dropout" bottom: "fc6" top: "fc6" }
        layer { name: "fc8" type: "InnerProduct" bottom: "fc6" top: "fc8" inner_product_param { num_output: 4 weight_filler { type: "msra" } } }
        layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }
        """

    func setUp() throws -> String {
        let dir = try temporaryDirectory("tg")
        _ = try Self.writeImages(dir)
        try Self.classifier.write(toFile: dir + "/deploy.prototxt", atomically: true, encoding: .utf8)
        let r = try runCLI(["init", "deploy.prototxt", "--out", "random_classifier.caffemodel"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        return dir
    }

    /// Both phases on a tiny classifier, then `sample` with the pipeline.
    @Test func trainsAGeneratorThatSampleUses() throws {
        let dir = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "square top-left\nsquare top-right\nsquare bottom-left\nsquare bottom-right\n"
            .write(toFile: dir + "/labels.txt", atomically: true, encoding: .utf8)
        let r = try runCLI(["train-generator", "deploy.prototxt", "--weights", "random_classifier.caffemodel",
                            "--data", "images-idx3-ubyte", "--out", "gen", "--batch", "8", "--iterations", "30",
                            "--adversarial-rounds", "20", "--labels", "labels.txt", "--threads", "1"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("== phase A") && r.stderr.contains("== phase B") && r.stderr.contains("Round 0"))
        for f in ["generator.caffemodel", "pipeline.json", "fc6_code_upper_bound.txt", "fc6_code_mean.txt", "labels.txt",
                  "work/generator_iter_30.caffemodel", "work/generator_adversarial_iter_20.caffemodel"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/gen/" + f), "\(f)")
        }
        // The generator holds its own layers only, trained (not the fillers' values).
        let g = try CaffeModel.load(prototxt: dir + "/gen/generator_deploy.prototxt", weights: dir + "/gen/generator.caffemodel")
        #expect(g.nodes.filter { !$0.weights.isEmpty }.map(\.name) == ["defc7", "defc6", "deconv0"])
        // The code box: one bound per fc6 unit, from 40 images.
        let bounds = try String(contentsOfFile: dir + "/gen/fc6_code_upper_bound.txt", encoding: .utf8)
            .split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(bounds.count == 12 && bounds.allSatisfy { $0 >= 0 })
        let summary = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.contains("\"statistics_images\":40"), "\(summary)")

        let s = try runCLI(["sample", "--pipeline", "gen/pipeline.json", "--neuron", "fc8:1=-1000:1000", "-n", "4",
                            "--max-steps", "20", "--out", "samples", "--threads", "1", "--seed", "1"], cwd: dir)
        #expect(s.status == 0 || s.status == 2, "\(s.stderr)")     // 2: fewer in band than asked, still written
        #expect(FileManager.default.fileExists(atPath: dir + "/samples/samples.json"), "\(s.stderr)")
    }

    /// An ImageData list of PNGs and a .npy array are sources too.
    @Test func imageListAndNpySources() throws {
        let dir = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (pixels, labels) = try Self.writeImages(dir)
        try FileManager.default.createDirectory(atPath: dir + "/png", withIntermediateDirectories: true)
        var list = ""
        for i in 0..<12 {
            try PNGImage(width: 8, height: 8, channels: 1, pixels: Array(pixels[i * 64..<(i + 1) * 64]))
                .write(to: dir + "/png/\(i).png")
            list += "\(i).png \(labels[i])\n"
        }
        try list.write(toFile: dir + "/png/list.txt", atomically: true, encoding: .utf8)
        let a = try runCLI(["train-generator", "deploy.prototxt", "--weights", "random_classifier.caffemodel",
                            "--data", "png/list.txt", "--out", "fromlist", "--batch", "4", "--iterations", "4",
                            "--adversarial-rounds", "2", "--threads", "1"], cwd: dir)
        #expect(a.status == 0, "\(a.stderr)")
        #expect(try String(contentsOfFile: dir + "/fromlist/generator_train.prototxt", encoding: .utf8)
            .contains("type: \"ImageData\""))
        #expect(a.stdout.contains("\"statistics_images\":12"), "\(a.stdout)")

        let array = Tensor(shape: [40, 1, 8, 8], values: pixels.map(Float.init))
        try NPY.write(array, to: dir + "/images.npy")
        let b = try runCLI(["train-generator", "deploy.prototxt", "--weights", "random_classifier.caffemodel",
                            "--data", "images.npy", "--out", "fromnpy", "--batch", "8", "--iterations", "4",
                            "--adversarial-rounds", "2", "--threads", "1"], cwd: dir)
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stdout.contains("\"statistics_images\":40"), "\(b.stdout)")
    }

    @Test func refusesBadInput() throws {
        let dir = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func fails(_ extra: [String], _ want: String) throws {
            let r = try runCLI(["train-generator", "deploy.prototxt", "--weights", "random_classifier.caffemodel",
                                "--out", "gen", "--files-only"] + extra, cwd: dir)
            #expect(r.status == 1 && r.stderr.contains(want), "\(extra): \(r.stderr)")
        }
        try fails(["--data", "nope-idx3-ubyte"], "nope-idx3-ubyte: no such file")
        try fails(["--data", "images-idx3-ubyte", "--code", "fc7"], "no blob 'fc7' for the code")
        try fails(["--data", "images-idx3-ubyte", "--scores", "logits"], "no blob 'logits' for the scores")
        try fails(["--data", "images-idx3-ubyte", "--batch", "0"], "--batch must be positive")
        try fails(["--data", "images-idx3-ubyte", "--iterations", "0"], "--generator-weights")
    }
}
