import Foundation
import ImageIO
import Layers
import Runtime
import Sampler

/// One image as floats in [0, 1], height x width x channels (1 gray, 3 RGB).
public struct UnitImage: Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var hwc: [Float]

    /// As an 8-bit picture.
    public func png() -> PNGImage {
        PNGImage(width: width, height: height, channels: channels, pixels: hwc.map { PNGImage.byte($0 * 255) })
    }
}

/// Real images on disk, read in one of four forms:
///
///     DIR/                a folder of IDX files (MNIST, Fashion-MNIST): the split picks
///                         train-images-idx3-ubyte[.gz] or t10k-images-idx3-ubyte[.gz]
///                         and the matching labels file, when present
///     FILE-idx3-ubyte     one IDX image file (labels from its -labels- twin, if any)
///     DIR/ of PNGs        every *.png below DIR, in sorted path order; a split
///                         names a subfolder (DIR/train, DIR/test) when it exists
///     LIST.txt            one PNG path per line, relative to the list's folder, with an
///                         optional integer label after a space (Caffe's ImageData source)
///     FILE.npy            float32 images in [0, 1], N x H x W or N x C x H x W
///
/// PNGs are decoded when read, so a large folder costs nothing until used.
public struct ImageDataset: Sendable {
    enum Items: Sendable {
        case idx(IDXArray, height: Int, width: Int)
        case pngs([String])
        case array([Float], channels: Int, height: Int, width: Int)
    }
    let items: Items
    /// Class labels, when the dataset has them.
    public let labels: [Int]?
    /// What was read, for messages and reports.
    public let source: String
    public let count: Int

    /// Reads `path` (see the type's documentation); `split` chooses the part of
    /// an IDX folder or the subfolder of a PNG folder ("train", "test").
    public static func load(_ path: String, split: String? = nil) throws -> ImageDataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw SamplerError("\(path): no such dataset (give a folder of IDX files or PNGs, an IDX file, a list of PNGs or an .npy)")
        }
        if isDir.boolValue {
            if let idx = try idxInFolder(path, split: split) { return idx }
            return try pngFolder(path, split: split)
        }
        let lower = path.lowercased()
        if lower.hasSuffix(".npy") { return try npy(path) }
        if lower.hasSuffix(".txt") || lower.hasSuffix(".list") { return try pngList(path) }
        if lower.hasSuffix(".png") {
            throw SamplerError("\(path): a single PNG is not a dataset; give its folder or a list file")
        }
        return try idxFile(path, labels: labelTwin(of: path))
    }

    /// Image `i` as [0, 1] floats.
    public func image(_ i: Int) throws -> UnitImage {
        switch items {
        case .idx(let a, let h, let w):
            var out = [Float](repeating: 0, count: h * w)
            out.withUnsafeMutableBufferPointer { a.item(i, into: $0.baseAddress!, scale: 1 / 255) }
            return UnitImage(width: w, height: h, channels: 1, hwc: out)
        case .pngs(let files):
            let png = try PNGImage.read(files[i])
            let c = png.channels >= 3 ? 3 : 1
            return UnitImage(width: png.width, height: png.height, channels: c,
                             hwc: Preprocessor.unitFloats(png, channels: c))
        case .array(let v, let c, let h, let w):
            let plane = h * w, base = i * c * plane
            var out = [Float](repeating: 0, count: c * plane)
            for ch in 0..<c { for p in 0..<plane { out[p * c + ch] = v[base + ch * plane + p] } }
            return UnitImage(width: w, height: h, channels: c, hwc: out)
        }
    }

    // MARK: - Readers

    static func idxInFolder(_ dir: String, split: String?) throws -> ImageDataset? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let images = names.filter { $0.contains("images-idx3-ubyte") }.sorted()
        guard !images.isEmpty else { return nil }
        let prefix: String
        switch split ?? "train" {
        case "train": prefix = "train-"
        case "test", "t10k": prefix = "t10k-"
        default: throw SamplerError("\(dir): unknown split '\(split!)' (an IDX folder has train and test)")
        }
        guard let file = images.first(where: { $0.hasPrefix(prefix) }) else {
            throw SamplerError("\(dir): no \(prefix)images-idx3-ubyte file for split '\(split ?? "train")' (found \(images.joined(separator: ", ")))")
        }
        return try idxFile(dir + "/" + file, labels: labelTwin(of: dir + "/" + file))
    }

    /// "x-images-idx3-ubyte.gz" -> "x-labels-idx1-ubyte.gz", when it exists.
    static func labelTwin(of path: String) -> String? {
        let twin = path.replacingOccurrences(of: "images-idx3-ubyte", with: "labels-idx1-ubyte")
        return twin != path && FileManager.default.fileExists(atPath: twin) ? twin : nil
    }

    static func idxFile(_ path: String, labels labelPath: String?) throws -> ImageDataset {
        let a: IDXArray
        do { a = try IDXFile.read(path) } catch let e as IDXFile.Error { throw SamplerError(e.description) }
        guard a.dims.count == 3 || (a.dims.count == 4 && a.dims[3] == 1) else {
            throw SamplerError("\(path): IDX array of shape \(a.dims) is not N x H x W gray images")
        }
        var labels: [Int]? = nil
        if let labelPath {
            let l: IDXArray
            do { l = try IDXFile.read(labelPath) } catch let e as IDXFile.Error { throw SamplerError(e.description) }
            guard l.count == a.count else {
                throw SamplerError("\(labelPath): \(l.count) labels for the \(a.count) images of \(path)")
            }
            labels = (0..<l.count).map { Int(l.scalar($0)) }
        }
        return ImageDataset(items: .idx(a, height: a.dims[1], width: a.dims[2]), labels: labels, source: path, count: a.count)
    }

    static func pngFolder(_ dir: String, split: String?) throws -> ImageDataset {
        var root = dir
        if let split {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + split, isDirectory: &isDir), isDir.boolValue { root = dir + "/" + split }
        }
        guard let walker = FileManager.default.enumerator(atPath: root) else {
            throw SamplerError("\(root): cannot be listed")
        }
        var files: [String] = []
        for case let f as String in walker where f.lowercased().hasSuffix(".png") { files.append(root + "/" + f) }
        files.sort()
        guard !files.isEmpty else {
            throw SamplerError("\(root): holds no IDX files and no PNGs; give a dataset folder, a list file or an .npy")
        }
        return ImageDataset(items: .pngs(files), labels: nil, source: root, count: files.count)
    }

    static func pngList(_ path: String) throws -> ImageDataset {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SamplerError("\(path): cannot be read as a text list of PNG files")
        }
        let base = (path as NSString).deletingLastPathComponent
        var files: [String] = [], labels: [Int] = []
        var allLabelled = true
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var parts = line.split(separator: " ").map(String.init)
            if parts.count >= 2, let l = Int(parts.last!) { labels.append(l); parts.removeLast() } else { allLabelled = false }
            let name = parts.joined(separator: " ")
            guard name.lowercased().hasSuffix(".png") else {
                throw SamplerError("\(path):\(n + 1): '\(name.prefix(80))' is not a .png path")
            }
            files.append(name.hasPrefix("/") ? name : (base.isEmpty ? name : base + "/" + name))
        }
        guard !files.isEmpty else { throw SamplerError("\(path): lists no PNG files") }
        return ImageDataset(items: .pngs(files), labels: allLabelled ? labels : nil, source: path, count: files.count)
    }

    static func npy(_ path: String) throws -> ImageDataset {
        let t = try NPY.read(path)
        let d = t.shape.dims
        let (c, h, w): (Int, Int, Int)
        switch d.count {
        case 3: (c, h, w) = (1, d[1], d[2])
        case 4: (c, h, w) = (d[1], d[2], d[3])
        default: throw SamplerError("\(path): shape \(t.shape) is not N x H x W or N x C x H x W images")
        }
        guard c == 1 || c == 3 else { throw SamplerError("\(path): \(c) channels; images have 1 (gray) or 3 (RGB)") }
        return ImageDataset(items: .array(t.array, channels: c, height: h, width: w), labels: nil, source: path, count: d[0])
    }
}
