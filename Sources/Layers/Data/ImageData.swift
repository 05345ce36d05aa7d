import Foundation
import GraphIR
import Runtime

/// Caffe's ImageData layer: batches of image files listed in a text file.
///
///     layer { name: "data" type: "ImageData" top: "data" top: "label"
///             transform_param { scale: 0.00390625 mirror: true crop_size: 28 mean_value: 104 mean_value: 117 mean_value: 123 }
///             image_data_param { source: "train.txt" root_folder: "images/" batch_size: 32
///                                shuffle: true new_height: 32 new_width: 32 is_color: true } }
///
/// Each line of `source` is "PATH LABEL" (split at the last space, so paths
/// may contain spaces); PATH is appended to root_folder. Images are decoded
/// like OpenCV's imread: colour images become 3 channels in BGR order
/// (Caffe's convention, so mean_value is B, G, R), grey ones are replicated;
/// with is_color: false everything becomes one grey channel
/// (0.299 R + 0.587 G + 0.114 B). new_height/new_width resize bilinearly
/// (OpenCV's INTER_LINEAR, half-pixel centres). Then transform_param (or
/// the legacy scale/mean_file/crop_size/mirror of image_data_param).
/// Tops: data (N, C, H, W), label (N). The batch walks the list and wraps
/// around; with shuffle the list is reshuffled every epoch (seeded by the
/// net's seed, i.e. the solver's random_seed); rand_skip skips a random
/// number of lines at the start.
///
/// PNG (and any other format) is decoded by the registry's image decoder
/// (`registerBuiltins(into:imageDecoder:)`; the tool passes ImageIO's);
/// binary PGM/PPM (P5/P6) are read here directly.
final class ImageDataLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["ImageData"]

    struct Entry { var path: String; var label: Int }

    let entries: [Entry]
    let listFile: String
    let batchSize: Int
    let shuffle: Bool
    let randSkip: Int
    let newHeight: Int, newWidth: Int
    let isColor: Bool
    let transformer: DataTransformer
    let channels: Int, height: Int, width: Int
    let outputShapes: [Shape]

    /// Decodes the formats other than PGM/PPM (none: only those are read).
    let decoder: (any ImageFileDecoder)?

    fileprivate var order: DataOrder?

    convenience init(_ ctx: LayerContext) throws { try self.init(ctx, decoder: nil) }

    init(_ ctx: LayerContext, decoder: (any ImageFileDecoder)?) throws {
        try ctx.expectInputs(0)
        try ctx.expectOutputs(1...2)
        self.decoder = decoder
        let p = ctx.param("image_data_param")
        let (source, root, batch, shuffle, newH, newW, isColor, skip) = try ctx.reading {
            (try p.string("source", default: ""), try p.string("root_folder", default: ""),
             try p.int("batch_size", default: 1), try p.bool("shuffle", default: false),
             try p.int("new_height", default: 0), try p.int("new_width", default: 0),
             try p.bool("is_color", default: true), try p.int("rand_skip", default: 0))
        }
        guard !source.isEmpty else {
            throw ctx.error("image_data_param needs source: \"LIST.txt\" (lines of \"path label\")")
        }
        guard batch > 0 else { throw ctx.error("image_data_param batch_size must be > 0, got \(batch)") }
        guard (newH == 0 && newW == 0) || (newH > 0 && newW > 0) else {
            throw ctx.error("image_data_param sets new_height \(newH) and new_width \(newW); set both (to resize) or neither")
        }
        guard skip >= 0 else { throw ctx.error("image_data_param rand_skip must be >= 0, got \(skip)") }
        let list: [Entry]
        do { list = try Self.readList(source, root: root) } catch let e as DataFileError { throw ctx.error(e.description) }
        if skip >= list.count {
            throw ctx.error("\(source): rand_skip \(skip) is not less than the \(list.count) images it lists")
        }
        entries = list
        listFile = source
        batchSize = batch
        self.shuffle = shuffle
        randSkip = skip
        newHeight = newH; newWidth = newW
        self.isColor = isColor
        transformer = try DataTransformer(ctx, legacy: p)

        // The first image fixes the shape (Caffe reads one to size the tops).
        let first: (c: Int, h: Int, w: Int)
        do {
            let img = try Self.load(list[0].path, color: isColor, newHeight: newH, newWidth: newW, decoder: decoder)
            first = (img.c, img.h, img.w)
        } catch let e as DataFileError { throw ctx.error(e.description) }
        (channels, height, width) = first
        if let problem = try transformer.check(channels: first.c, height: first.h, width: first.w,
                                               what: "image \(list[0].path)") {
            throw ctx.error(problem)
        }
        let (oh, ow) = transformer.outputSize(height: first.h, width: first.w)
        let data = Shape([batch, first.c, oh, ow])
        outputShapes = ctx.outputCount == 2 ? [data, Shape([batch])] : [data]
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] { outputShapes }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        var o = order ?? DataOrder(count: entries.count, shuffle: shuffle, seed: ctx.rng.next(), skip: randSkip)
        defer { order = o }
        let itemOut = outputs[0].count / batchSize
        for b in 0..<batchSize {
            let e = entries[o.current]
            let img: (pixels: [Float], c: Int, h: Int, w: Int)
            do { img = try Self.load(e.path, color: isColor, newHeight: newHeight, newWidth: newWidth, decoder: decoder) } catch let err as DataFileError {
                throw error(err.description)
            }
            guard img.c == channels, img.h == height, img.w == width else {
                throw error("\(e.path) is \(img.c)x\(img.h)x\(img.w) (CxHxW) but the first image of \(listFile) is \(channels)x\(height)x\(width); all images must match, or set new_height/new_width to resize them")
            }
            img.pixels.withUnsafeBufferPointer { src in
                guard let base = src.baseAddress else { return }
                transformer.apply(base, channels: channels, height: height, width: width,
                                  into: outputs[0].data + b * itemOut, rng: &o.rng)
            }
            if outputs.count > 1 { outputs[1][b] = Float(e.label) }
            o.advance()
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {}
    var hasBackward: Bool { false }

    // MARK: - Files

    /// Parses the list: "PATH LABEL" per line, split at the last space
    /// (Caffe's rule); blank lines are skipped.
    static func readList(_ source: String, root: String) throws -> [Entry] {
        guard let data = FileManager.default.contents(atPath: source) else {
            throw DataFileError(file: source, message: FileManager.default.fileExists(atPath: source) ? "cannot be read" : "no such file (the image list of ImageData)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DataFileError(file: source, message: "is not UTF-8 text; expected lines of \"path label\"")
        }
        var out: [Entry] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            guard let space = line.lastIndex(of: " ") ?? line.lastIndex(of: "\t"),
                  let label = Int(line[line.index(after: space)...]) else {
                throw DataFileError(file: "\(source):\(n + 1)", message: "expected \"path label\" with an integer label, got \"\(line)\"")
            }
            let path = String(line[..<space]).trimmingCharacters(in: .whitespaces)
            guard !path.isEmpty else {
                throw DataFileError(file: "\(source):\(n + 1)", message: "has a label but no image path")
            }
            out.append(Entry(path: root + path, label: label))
        }
        guard !out.isEmpty else { throw DataFileError(file: source, message: "lists no images; expected lines of \"path label\"") }
        return out
    }

    /// Decodes, converts (BGR or grey) and resizes one image; CHW floats 0...255.
    static func load(_ path: String, color: Bool, newHeight: Int, newWidth: Int,
                     decoder: (any ImageFileDecoder)?) throws -> (pixels: [Float], c: Int, h: Int, w: Int) {
        let img = try decode(path, decoder: decoder)
        let (h, w, n) = (img.height, img.width, img.channels)
        guard h > 0, w > 0, (1...4).contains(n), img.pixels.count == h * w * n else {
            throw DataFileError(file: path, message: "decoded to an unusable image (\(w)x\(h), \(n) channels)")
        }
        let c = color ? 3 : 1
        var chw = [Float](repeating: 0, count: c * h * w)
        img.pixels.withUnsafeBufferPointer { src in
            guard let base = src.baseAddress else { return }
            for i in 0..<(h * w) {
                let px = base + i * n
                let (r, g, b): (Float, Float, Float) = n >= 3 ? (px[0], px[1], px[2]) : (px[0], px[0], px[0])
                if color {
                    chw[i] = b; chw[h * w + i] = g; chw[2 * h * w + i] = r   // BGR, as OpenCV
                } else {
                    chw[i] = n >= 3 ? (0.299 * r + 0.587 * g + 0.114 * b).rounded() : px[0]
                }
            }
        }
        guard newHeight > 0 && (newHeight != h || newWidth != w) else { return (chw, c, h, w) }
        return (resizeBilinear(chw, channels: c, height: h, width: w, newHeight: newHeight, newWidth: newWidth),
                c, newHeight, newWidth)
    }

    /// Bilinear resize with half-pixel centres (OpenCV INTER_LINEAR): output
    /// pixel y samples source row (y + 0.5) * h / newH - 0.5, clamped to the
    /// image; results are rounded, since the source had 8-bit values.
    static func resizeBilinear(_ src: [Float], channels c: Int, height h: Int, width w: Int,
                               newHeight nh: Int, newWidth nw: Int) -> [Float] {
        func taps(_ n: Int, _ size: Int) -> [(Int, Int, Float)] {
            let s = Double(size) / Double(n)
            return (0..<n).map { o in
                let f = (Double(o) + 0.5) * s - 0.5
                var i0 = Int(f.rounded(.down)), t = Float(f - Double(i0))
                if i0 < 0 { i0 = 0; t = 0 }
                if i0 >= size - 1 { i0 = size - 1; t = 0 }
                return (i0, min(i0 + 1, size - 1), t)
            }
        }
        let ys = taps(nh, h), xs = taps(nw, w)
        var out = [Float](repeating: 0, count: c * nh * nw)
        for ch in 0..<c {
            for (oy, (y0, y1, ty)) in ys.enumerated() {
                for (ox, (x0, x1, tx)) in xs.enumerated() {
                    let base = ch * h * w
                    let top = src[base + y0 * w + x0] * (1 - tx) + src[base + y0 * w + x1] * tx
                    let bottom = src[base + y1 * w + x0] * (1 - tx) + src[base + y1 * w + x1] * tx
                    out[(ch * nh + oy) * nw + ox] = (top * (1 - ty) + bottom * ty).rounded()
                }
            }
        }
        return out
    }

    /// Binary PGM/PPM here; anything else through `decoder`.
    static func decode(_ path: String, decoder: (any ImageFileDecoder)?) throws -> DecodedImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataFileError(file: path, message: FileManager.default.fileExists(atPath: path)
                                ? "cannot be read" : "no such file (listed in the ImageData source)")
        }
        let bytes = [UInt8](data)
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), bytes[1] == UInt8(ascii: "5") || bytes[1] == UInt8(ascii: "6") {
            return try decodeNetpbm(bytes, file: path)
        }
        guard let decoder else {
            throw DataFileError(file: path, message: "is not PGM/PPM and no image decoder was given; the inverse-set tool reads PNG, from code pass one to registerBuiltins(into:imageDecoder:)")
        }
        do {
            return try decoder.decodeImage(atPath: path)
        } catch {
            throw DataFileError(file: path, message: "cannot be decoded: \(error)")
        }
    }

    /// Binary netpbm: "P5" (grey) or "P6" (RGB), width, height, maxval
    /// (<= 65535; 16-bit samples are big-endian), '#' comments in the header.
    static func decodeNetpbm(_ b: [UInt8], file: String) throws -> DecodedImage {
        var i = 2
        func number() throws -> Int {
            while i < b.count {
                if b[i] == UInt8(ascii: "#") { while i < b.count && b[i] != 10 { i += 1 } }
                else if b[i] == 32 || (9...13).contains(b[i]) { i += 1 }
                else { break }
            }
            var v = 0, digits = 0
            while i < b.count, (48...57).contains(b[i]), digits < 9 { v = v * 10 + Int(b[i] - 48); i += 1; digits += 1 }
            guard digits > 0 else { throw DataFileError(file: file, message: "has a malformed PGM/PPM header") }
            return v
        }
        let c = b[1] == UInt8(ascii: "6") ? 3 : 1
        let w = try number(), h = try number(), maxval = try number()
        i += 1   // the single whitespace after maxval
        guard w > 0, h > 0, (1...65535).contains(maxval) else {
            throw DataFileError(file: file, message: "has an unusable PGM/PPM header (\(w)x\(h), maxval \(maxval))")
        }
        let size = maxval > 255 ? 2 : 1
        let n = w * h * c
        guard b.count - i >= n * size else {
            throw DataFileError(file: file, message: "is truncated: \(w)x\(h)x\(c) samples need \(n * size) bytes, it has \(max(0, b.count - i))")
        }
        let k = Float(255) / Float(maxval)
        var px = [Float](repeating: 0, count: n)
        for j in 0..<n {
            let v = size == 1 ? Int(b[i + j]) : Int(b[i + 2 * j]) << 8 | Int(b[i + 2 * j + 1])
            px[j] = maxval == 255 ? Float(v) : (Float(v) * k).rounded()
        }
        return DecodedImage(width: w, height: h, channels: c, pixels: px)
    }
}

/// A data file that cannot be used: which file, what is wrong.
struct DataFileError: Error, CustomStringConvertible {
    var file: String
    var message: String
    var description: String { "\(file): \(message)" }
}

extension ImageDataLayer: StatefulLayer {
    var runState: [UInt64] { order?.saved ?? [] }
    func restoreRunState(_ state: [UInt64]) throws {
        order = state.isEmpty ? nil : try DataOrder(saved: state, count: entries.count, shuffle: shuffle)
    }
}
