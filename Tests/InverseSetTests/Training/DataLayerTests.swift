import Foundation
import Testing
import GraphIR
import Layers
import Runtime
import TestSupport

/// IDX files and the data layers (IDXData, ImageData) on tiny files made here.
struct DataLayerTests {
    // MARK: - Files

    /// An IDX file: magic 0 0 type rank, big-endian dims, then the bytes.
    static func idx(type: UInt8 = 0x08, dims: [Int], body: [UInt8]) -> [UInt8] {
        var b: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for d in dims { b += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return b + body
    }

    /// 5 images of 2 x 3 (pixel k of image i = 10 i + k) and labels 0...4.
    static func writeTinyMNIST(_ dir: String) throws -> (images: String, labels: String) {
        let images = dir + "/images-idx3-ubyte", labels = dir + "/labels-idx1-ubyte"
        let body = (0..<5).flatMap { i in (0..<6).map { UInt8(10 * i + $0) } }
        try Data(idx(dims: [5, 2, 3], body: body)).write(to: URL(fileURLWithPath: images))
        try Data(idx(dims: [5], body: [0, 1, 2, 3, 4])).write(to: URL(fileURLWithPath: labels))
        return (images, labels)
    }

    static func gzip(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-k", "-f", path]
        try p.run()
        p.waitUntilExit()
        return path + ".gz"
    }

    func net(_ layer: String, phase: Phase = .train, seed: UInt64 = 1) throws -> Net {
        try Net(graph: try TrainingSupport.graph(layer, phase: phase.rawValue), registry: try builtinRegistry(), phase: phase, seed: seed)
    }

    func errorText(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }

    // MARK: - IDX reader

    @Test func readsPlainAndGzipIDX() throws {
        let dir = try temporaryDirectory("idx")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (images, labels) = try Self.writeTinyMNIST(dir)
        for path in [images, try Self.gzip(images)] {
            let a = try IDXFile.read(path)
            #expect(a.dims == [5, 2, 3])
            #expect(a.itemSize == 6)
            var item = [Float](repeating: 0, count: 6)
            item.withUnsafeMutableBufferPointer { a.item(3, into: $0.baseAddress!, scale: 0.5) }
            #expect(item == [15, 15.5, 16, 16.5, 17, 17.5])
        }
        let l = try IDXFile.read(try Self.gzip(labels))
        #expect(l.dims == [5] && (0..<5).map { l.scalar($0) } == [0, 1, 2, 3, 4])
        // Other element types: big-endian int32 and float32.
        let ints = Self.idx(type: 0x0C, dims: [2], body: [0xff, 0xff, 0xff, 0xfe, 0, 0, 1, 0])
        let parsed = try IDXFile.parse(ints, file: "i")
        #expect([parsed.scalar(0), parsed.scalar(1)] == [-2, 256])
        let floats = Self.idx(type: 0x0D, dims: [1], body: [0x3f, 0xc0, 0, 0])
        #expect(try IDXFile.parse(floats, file: "f").scalar(0) == 1.5)
    }

    @Test func idxErrorsNameTheFileAndTheProblem() throws {
        let dir = try temporaryDirectory("idxerr")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(errorText { _ = try IDXFile.read(dir + "/nope.idx") }.contains("nope.idx: no such file"))
        let cases: [([UInt8], String)] = [
            ([1, 2, 8, 1, 0, 0, 0, 1, 5], "not an IDX file"),
            (Self.idx(type: 0x07, dims: [1], body: [1]), "unknown IDX element type 0x07"),
            (Self.idx(dims: [3, 2], body: [1, 2, 3]), "truncated"),
            (Self.idx(dims: [1], body: [1, 2]), "after the"),
            ([0, 0, 8, 3, 0, 0], "truncated inside its header"),
        ]
        for (bytes, want) in cases {
            let path = dir + "/bad.idx"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let m = errorText { _ = try IDXFile.read(path) }
            #expect(m.contains(path) && m.contains(want), "\(m)")
        }
        // A damaged gzip stream.
        let (images, _) = try Self.writeTinyMNIST(dir)
        var gz = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Self.gzip(images))))
        gz.removeLast(12)
        try Data(gz).write(to: URL(fileURLWithPath: dir + "/cut.gz"))
        let m = errorText { _ = try IDXFile.read(dir + "/cut.gz") }
        #expect(m.contains("cut.gz") && (m.contains("decompressed") || m.contains("truncated")), "\(m)")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"),
                   "Fashion-MNIST is not installed in /usr/share/datasets/fashion-mnist"))
    func readsFashionMNIST() throws {
        let labels = try IDXFile.read("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
        #expect(labels.dims == [10_000])
        #expect(Set((0..<10_000).map { labels.scalar($0) }) == Set((0..<10).map(Float.init)))
    }

    // MARK: - IDXData

    func idxLayer(_ images: String, _ labels: String, _ extra: String = "", transform: String = "") -> String {
        """
        layer { name: "d" type: "IDXData" top: "data" top: "label" \(transform)
                idx_data_param { source: "\(images)" label_source: "\(labels)" batch_size: 2 \(extra) } }
        """
    }

    @Test func idxDataBatchesWrapAround() throws {
        let dir = try temporaryDirectory("idxdata")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (images, labels) = try Self.writeTinyMNIST(dir)
        let n = try net(idxLayer(images, labels, "scale: 0.5"))
        #expect(try n.shape("data") == [2, 1, 2, 3])
        #expect(try n.shape("label") == [2])
        var seen: [Float] = []
        for _ in 0..<4 {
            try n.forward([:])
            let d = try #require(try n.blob("data")), l = try #require(try n.blob("label"))
            for b in 0..<2 {
                #expect(d[b * 6] == Float(10) * l[b] * 0.5, "first pixel of item \(l[b])")
                #expect(d[b * 6 + 5] == (Float(10) * l[b] + 5) * 0.5)
            }
            seen += l.array
        }
        #expect(seen == [0, 1, 2, 3, 4, 0, 1, 2])
    }

    @Test func idxDataShufflesEveryEpochFromItsSeed() throws {
        let dir = try temporaryDirectory("idxshuffle")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (images, labels) = try Self.writeTinyMNIST(dir)
        func order(_ extra: String, netSeed: UInt64) throws -> [Float] {
            let n = try net(idxLayer(images, labels, extra), seed: netSeed)
            var out: [Float] = []
            for _ in 0..<10 { try n.forward([:]); out += try #require(try n.blob("label")).array }
            return out
        }
        let a = try order("shuffle: true seed: 3", netSeed: 1)
        #expect(try order("shuffle: true seed: 3", netSeed: 2) == a)      // `seed` wins over the net's seed
        for epoch in 0..<4 { #expect(Set(a[(epoch * 5)..<(epoch * 5 + 5)]) == [0, 1, 2, 3, 4], "\(a)") }
        #expect(a != (0..<20).map { Float($0 % 5) })
        #expect(a[0..<5] != a[5..<10] || a[5..<10] != a[10..<15])         // reshuffled per epoch
        // Without `seed`, the net's seed (the solver's random_seed) decides.
        #expect(try order("shuffle: true", netSeed: 5) == (try order("shuffle: true", netSeed: 5)))
        #expect(try order("shuffle: true", netSeed: 5) != (try order("shuffle: true", netSeed: 6)))
    }

    @Test func idxDataTransforms() throws {
        let dir = try temporaryDirectory("idxtransform")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (images, labels) = try Self.writeTinyMNIST(dir)
        // TEST phase: centre crop 2x2 of the 2x3 image (columns 0-1: offset (3-2)/2 = 0), mean 1, scale 2.
        let layer = idxLayer(images, labels, "", transform: "transform_param { crop_size: 2 mean_value: 1 scale: 2 }")
        let n = try net(layer, phase: .test)
        #expect(try n.shape("data") == [2, 1, 2, 2])
        try n.forward([:])
        #expect(try #require(try n.blob("data")).array.prefix(4) == [-2, 0, 4, 6])
        // TRAIN: random crops and mirrors stay inside the image.
        let t = try net(layer.replacingOccurrences(of: "crop_size: 2", with: "crop_size: 2 mirror: true"), phase: .train)
        for _ in 0..<5 {
            try t.forward([:])
            let d = try #require(try t.blob("data")), l = try #require(try t.blob("label"))
            let valid = Set((0..<6).map { (Float(10) * l[0] + Float($0) - 1) * 2 })
            #expect(d.array.prefix(4).allSatisfy(valid.contains))
        }
    }

    @Test func idxDataErrors() throws {
        let dir = try temporaryDirectory("idxdataerr")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (images, labels) = try Self.writeTinyMNIST(dir)
        try Data(Self.idx(dims: [4], body: [0, 1, 2, 3])).write(to: URL(fileURLWithPath: dir + "/four"))
        var m = errorText { _ = try net(idxLayer(images, dir + "/four")) }
        #expect(m.contains("'d'") && m.contains("4 labels") && m.contains(images), "\(m)")
        m = errorText { _ = try net(idxLayer(dir + "/missing.gz", labels)) }
        #expect(m.contains("missing.gz: no such file"), "\(m)")
        m = errorText { _ = try net("layer { name: \"d\" type: \"IDXData\" top: \"data\" top: \"label\" idx_data_param { source: \"\(images)\" } }") }
        #expect(m.contains("label_source"), "\(m)")
        m = errorText { _ = try net(idxLayer(images, labels, "", transform: "transform_param { crop_size: 3 }")) }
        #expect(m.contains("smaller than crop_size 3"), "\(m)")
    }

    // MARK: - ImageData

    /// A binary PPM (P6) of w x h with pixel (y, x) = (r, g, b) from `f`.
    static func ppm(_ path: String, w: Int, h: Int, _ f: (Int, Int) -> (UInt8, UInt8, UInt8)) throws {
        var b = [UInt8]("P6\n# test\n\(w) \(h)\n255\n".utf8)
        for y in 0..<h { for x in 0..<w { let (r, g, bl) = f(y, x); b += [r, g, bl] } }
        try Data(b).write(to: URL(fileURLWithPath: path))
    }

    func imageLayer(_ list: String, _ root: String, _ extra: String = "", transform: String = "") -> String {
        """
        layer { name: "img" type: "ImageData" top: "data" top: "label" \(transform)
                image_data_param { source: "\(list)" root_folder: "\(root)/" batch_size: 2 \(extra) } }
        """
    }

    @Test func imageDataReadsBGRGreyAndResizes() throws {
        let dir = try temporaryDirectory("imagedata")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for i in 0..<3 {
            try Self.ppm(dir + "/im \(i).ppm", w: 4, h: 2) { y, x in (UInt8(100 + i), UInt8(10 * y + x), UInt8(200)) }
        }
        try "im 0.ppm 7\n\nim 1.ppm 8\nim 2.ppm 9\n".write(toFile: dir + "/list.txt", atomically: true, encoding: .utf8)
        let n = try net(imageLayer(dir + "/list.txt", dir))
        #expect(try n.shape("data") == [2, 3, 2, 4])
        try n.forward([:])
        var d = try #require(try n.blob("data"))
        #expect(try #require(try n.blob("label")).array == [7, 8])
        #expect(d.array[0..<8].allSatisfy { $0 == 200 })                 // B
        #expect(Array(d.array[8..<16]) == [0, 1, 2, 3, 10, 11, 12, 13])   // G
        #expect(d.array[16..<24].allSatisfy { $0 == 100 })                // R of image 0
        try n.forward([:])
        #expect(try #require(try n.blob("label")).array == [9, 7])       // wraps around
        // Grey (0.299 R + 0.587 G + 0.114 B), resized to 1 x 2 by 2 x 2 averages.
        let g = try net(imageLayer(dir + "/list.txt", dir, "is_color: false new_height: 1 new_width: 2"))
        #expect(try g.shape("data") == [2, 1, 1, 2])
        try g.forward([:])
        d = try #require(try g.blob("data"))
        func grey(_ gv: Double) -> Double { (0.299 * 100 + 0.587 * gv + 0.114 * 200).rounded() }
        let ref0 = ((grey(0) + grey(1) + grey(10) + grey(11)) / 4).rounded()
        #expect(abs(Double(d[0]) - ref0) <= 1, "\(d.array) vs \(ref0)")
        // mean_value per channel (B, G, R) and scale.
        let m = try net(imageLayer(dir + "/list.txt", dir, transform: "transform_param { mean_value: 200 mean_value: 0 mean_value: 100 scale: 0.5 }"))
        try m.forward([:])
        d = try #require(try m.blob("data"))
        #expect(d[0] == 0 && d[9] == 0.5 && d[16] == 0)
    }

    @Test func imageDataThroughTheRegistrysDecoder() throws {
        let dir = try temporaryDirectory("decoder")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "a 1\nb 2\n".write(toFile: dir + "/list.txt", atomically: true, encoding: .utf8)
        for name in ["a", "b"] { try "gray 3 2".write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        let layer = imageLayer(dir + "/list.txt", dir, "is_color: false")
        // Without a decoder the format is refused by name.
        expectError("/a", "no image decoder was given") { _ = try net(layer) }
        let n = try Net(graph: try TrainingSupport.graph(layer, phase: "TRAIN"),
                        registry: try builtinRegistry(imageDecoder: TestImageDecoder()), phase: .train, seed: 1)
        try n.forward([:])
        #expect(try n.shape("data") == [2, 1, 2, 3])
        #expect(try #require(try n.blob("data")).array[0..<6] == [0, 1, 2, 3, 4, 5])
    }

    @Test func imageDataErrors() throws {
        let dir = try temporaryDirectory("imagedataerr")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.ppm(dir + "/a.ppm", w: 4, h: 2) { _, _ in (1, 2, 3) }
        try Self.ppm(dir + "/b.ppm", w: 3, h: 2) { _, _ in (1, 2, 3) }
        var m = errorText { _ = try net(imageLayer(dir + "/none.txt", dir)) }
        #expect(m.contains("none.txt: no such file"), "\(m)")
        try "a.ppm 1\nb.ppm\n".write(toFile: dir + "/l1.txt", atomically: true, encoding: .utf8)
        m = errorText { _ = try net(imageLayer(dir + "/l1.txt", dir)) }
        #expect(m.contains("l1.txt:2") && m.contains("path label"), "\(m)")
        try "missing.ppm 1\n".write(toFile: dir + "/l2.txt", atomically: true, encoding: .utf8)
        m = errorText { _ = try net(imageLayer(dir + "/l2.txt", dir)) }
        #expect(m.contains("missing.ppm: no such file"), "\(m)")
        try "a.ppm 1\nb.ppm 2\n".write(toFile: dir + "/l3.txt", atomically: true, encoding: .utf8)
        m = errorText { let n = try net(imageLayer(dir + "/l3.txt", dir)); try n.forward([:]) }
        #expect(m.contains("b.ppm is 3x2x3") && m.contains("new_height"), "\(m)")
        try "a.ppm 1\n".write(toFile: dir + "/l4.txt", atomically: true, encoding: .utf8)
        try Data([UInt8]("P6\n4 2\n255\n".utf8) + [1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/a.ppm"))
        m = errorText { _ = try net(imageLayer(dir + "/l4.txt", dir)) }
        #expect(m.contains("a.ppm: is truncated"), "\(m)")
    }
}

/// Decodes "gray W H" text files into a W x H grey ramp 0, 1, 2, ...
struct TestImageDecoder: ImageFileDecoder {
    func decodeImage(atPath path: String) throws -> DecodedImage {
        let words = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: " ")
        guard words.count == 3, words[0] == "gray", let w = Int(words[1]), let h = Int(words[2]) else {
            throw RuntimeError.input("\(path): not a test image")
        }
        return DecodedImage(width: w, height: h, channels: 1, pixels: (0..<(w * h)).map(Float.init))
    }
}
