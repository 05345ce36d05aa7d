import Foundation
import ImageIO
import Runtime
import Sampler
import SamplerIO
import Testing
import TestSupport

/// The four dataset forms `evaluate` and the code prior read.
struct DatasetTests {
    let fashion = "/usr/share/datasets/fashion-mnist"

    @Test func idxFolderSplitsWithLabels() throws {
        let test = try ImageDataset.load(fashion, split: "test")
        #expect(test.count == 10_000)
        #expect(test.source.hasSuffix("t10k-images-idx3-ubyte.gz"))
        #expect(test.labels?.count == 10_000)
        let train = try ImageDataset.load(fashion, split: "train")
        #expect(train.count == 60_000)
        let img = try test.image(0)
        #expect(img.width == 28 && img.height == 28 && img.channels == 1)
        #expect(img.hwc.allSatisfy { $0 >= 0 && $0 <= 1 } && img.hwc.contains { $0 > 0.5 })
        // Fashion-MNIST's first test image is an ankle boot (class 9).
        #expect(test.labels?[0] == 9)
        expectError("unknown split 'validation'") { _ = try ImageDataset.load(fashion, split: "validation") }
    }

    @Test func pngFolderListAndArrayGiveTheSamePixels() throws {
        let dir = try temporaryDirectory("dataset")
        try FileManager.default.createDirectory(atPath: dir + "/pngs/sub", withIntermediateDirectories: true)
        // Three 4x3 gray images with known bytes.
        var arrays: [[Float]] = []
        for k in 0..<3 {
            let px = (0..<12).map { UInt8((k * 40 + $0 * 17) % 256) }
            try PNGImage(width: 4, height: 3, channels: 1, pixels: px).write(to: dir + (k == 2 ? "/pngs/sub/c.png" : "/pngs/\(["a", "b"][k]).png"))
            arrays.append(px.map { Float($0) / 255 })
        }
        let folder = try ImageDataset.load(dir + "/pngs")
        #expect(folder.count == 3 && folder.labels == nil)
        try "a.png 4\nb.png 7\n# a comment\n\nsub/c.png 1\n".write(toFile: dir + "/pngs/list.txt", atomically: true, encoding: .utf8)
        let list = try ImageDataset.load(dir + "/pngs/list.txt")
        #expect(list.count == 3 && list.labels == [4, 7, 1])
        try NPY.write(Tensor(shape: [3, 3, 4], values: arrays.flatMap { $0 }), to: dir + "/images.npy")
        let array = try ImageDataset.load(dir + "/images.npy")
        #expect(array.count == 3)
        for k in 0..<3 {
            let expected = arrays[k]
            for d in [folder, list, array] {
                let img = try d.image(k)
                #expect(img.width == 4 && img.height == 3)
                #expect(zip(img.hwc, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(d.source) image \(k)")
            }
        }
    }

    @Test func badDatasetsAreClearErrors() throws {
        let dir = try temporaryDirectory("baddata")
        func message(_ path: String) -> String {
            do { _ = try ImageDataset.load(path); return "" } catch { return "\(error)" }
        }
        #expect(message(dir + "/nothing").contains("no such dataset"))
        #expect(message(dir).contains("no IDX files and no PNGs"))
        try "missing.png\nnot-an-image.jpg\n".write(toFile: dir + "/list.txt", atomically: true, encoding: .utf8)
        #expect(message(dir + "/list.txt").contains("list.txt:2"))
        try NPY.write(Tensor(shape: [2, 5], values: Array(repeating: 0, count: 10)), to: dir + "/flat.npy")
        #expect(message(dir + "/flat.npy").contains("N x H x W"))
        FileManager.default.createFile(atPath: dir + "/junk-images-idx3-ubyte", contents: Data([1, 2, 3, 4, 5]))
        #expect(message(dir + "/junk-images-idx3-ubyte").contains("junk-images-idx3-ubyte"))
    }
}
