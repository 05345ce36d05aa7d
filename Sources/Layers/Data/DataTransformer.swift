import Foundation
import GraphIR
import Runtime

/// Caffe's DataTransformer for data layers (`transform_param`): crop, mirror,
/// mean subtraction and scaling of one item, written into its slot of the
/// batch. With a `C x H x W` source and crop size `k` (0 = none):
///
///     out[c, y, x'] = (src[c, y + dy, x + dx] - mean) * scale,   x' = mirror ? k-1-x : x
///
/// `mean` is mean_file's value at the same source pixel, or mean_value[c]
/// (one value for all channels, or one per channel). Random crop offsets and
/// mirroring (each with probability 1/2) only in TRAIN; TEST crops the
/// centre and never mirrors.
struct DataTransformer {
    let scale: Float
    let mirror: Bool
    let cropSize: Int
    let meanValues: [Float]
    /// The mean image (C x H x W) of mean_file, when given.
    let meanImage: (shape: [Int], data: [Float])?
    let meanFile: String
    let phase: Phase

    /// Reads `transform_param`, falling back to the legacy fields a data
    /// parameter may carry (`image_data_param { scale: ... mean_file: ... }`).
    /// `extraScale` multiplies `scale` (IDXData's own `scale`).
    init(_ ctx: LayerContext, legacy: ParamMessage? = nil, extraScale: Float = 1) throws {
        let t = ctx.param("transform_param")
        func pick(_ name: String) -> ParamMessage {
            if t.has(name) { return t }
            if let legacy, legacy.has(name) { return legacy }
            return t
        }
        let (scale, mirror, crop, meanValues, meanFile) = try ctx.reading {
            (try pick("scale").float("scale", default: 1), try pick("mirror").bool("mirror", default: false),
             try pick("crop_size").int("crop_size", default: 0), try t.floats("mean_value"),
             try pick("mean_file").string("mean_file", default: ""))
        }
        guard crop >= 0 else { throw ctx.error("transform_param crop_size must be >= 0, got \(crop)") }
        if !meanFile.isEmpty && !meanValues.isEmpty {
            throw ctx.error("transform_param sets both mean_file and mean_value; give only one")
        }
        self.scale = scale * extraScale; self.mirror = mirror; self.cropSize = crop
        self.meanValues = meanValues; self.meanFile = meanFile; self.phase = ctx.phase
        if meanFile.isEmpty {
            meanImage = nil
        } else {
            do {
                let m = try BlobProtoReader.read(meanFile)
                // A mean blob is 1 x C x H x W (or C x H x W).
                var dims = m.shape
                while dims.count > 3 && dims.first == 1 { dims.removeFirst() }
                guard dims.count == 3 else {
                    throw ctx.error("mean_file '\(meanFile)' holds a blob of shape \(m.shape); expected 1 x C x H x W")
                }
                meanImage = (dims, m.data)
            } catch let e as BlobProtoReader.Error {
                throw ctx.error("mean_file: \(e.description)")
            }
        }
    }

    /// Output height and width for a source of h x w.
    func outputSize(height h: Int, width w: Int) -> (Int, Int) {
        cropSize > 0 ? (cropSize, cropSize) : (h, w)
    }

    /// Checks that an item of c x h x w can be transformed (crop fits,
    /// mean matches); `what` names the item in the error.
    func check(channels c: Int, height h: Int, width w: Int, what: String) throws -> String? {
        if cropSize > 0 && (h < cropSize || w < cropSize) {
            return "\(what) is \(h)x\(w), smaller than crop_size \(cropSize)"
        }
        if let m = meanImage, m.shape != [c, h, w] {
            return "\(what) is \(c)x\(h)x\(w) but the mean_file '\(meanFile)' is \(m.shape.map(String.init).joined(separator: "x")); they must match"
        }
        if meanValues.count > 1 && meanValues.count != c {
            return "transform_param has \(meanValues.count) mean_value entries for \(c) channels; give one, or one per channel"
        }
        return nil
    }

    /// Transforms one `c x h x w` source (raw values, CHW) into `out`
    /// (`c x outH x outW`).
    func apply(_ src: UnsafePointer<Float>, channels c: Int, height h: Int, width w: Int,
               into out: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        let (oh, ow) = outputSize(height: h, width: w)
        var dy = 0, dx = 0
        if cropSize > 0 {
            if phase == .train {
                dy = Int(rng.next() % UInt64(h - cropSize + 1))
                dx = Int(rng.next() % UInt64(w - cropSize + 1))
            } else {
                dy = (h - cropSize) / 2
                dx = (w - cropSize) / 2
            }
        }
        let flip = mirror && phase == .train && rng.next() % 2 == 1
        for ch in 0..<c {
            let mv: Float = meanValues.isEmpty ? 0 : (meanValues.count == 1 ? meanValues[0] : meanValues[ch])
            for y in 0..<oh {
                let srow = src + (ch * h + y + dy) * w + dx
                let orow = out + (ch * oh + y) * ow
                if let m = meanImage {
                    m.data.withUnsafeBufferPointer { mp in
                        let mrow = (ch * h + y + dy) * w + dx
                        for x in 0..<ow {
                            orow[flip ? ow - 1 - x : x] = (srow[x] - mp[mrow + x]) * scale
                        }
                    }
                } else {
                    for x in 0..<ow { orow[flip ? ow - 1 - x : x] = (srow[x] - mv) * scale }
                }
            }
        }
    }
}

/// A minimal reader of Caffe's binary BlobProto (`.binaryproto` mean files):
/// shape (field 7) or the legacy num/channels/height/width (1-4), and data
/// (5, packed or not) or double_data (8). Other fields are skipped.
enum BlobProtoReader {
    struct Error: Swift.Error, CustomStringConvertible {
        var file: String
        var message: String
        var description: String { "\(file): \(message)" }
    }

    static func read(_ path: String) throws -> (shape: [Int], data: [Float]) {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw Error(file: path, message: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        return try parse([UInt8](d), file: path)
    }

    static func parse(_ b: [UInt8], file: String) throws -> (shape: [Int], data: [Float]) {
        var reader = Wire(bytes: b[...], file: file)
        var legacy = [Int](repeating: 0, count: 4), hasLegacy = false
        var shape: [Int]? = nil
        var data: [Float] = [], doubles: [Float] = []
        while !reader.atEnd {
            let (field, wire) = try reader.key()
            switch (field, wire) {
            case (1...4, 0):
                legacy[field - 1] = Int(truncatingIfNeeded: try reader.varint()); hasLegacy = true
            case (5, 2):
                var sub = try reader.sub()
                while !sub.atEnd { data.append(Float(bitPattern: try sub.fixed32())) }
            case (5, 5):
                data.append(Float(bitPattern: try reader.fixed32()))
            case (8, 2):
                var sub = try reader.sub()
                while !sub.atEnd { doubles.append(Float(Double(bitPattern: try sub.fixed64()))) }
            case (8, 1):
                doubles.append(Float(Double(bitPattern: try reader.fixed64())))
            case (7, 2):
                var sub = try reader.sub()
                var dims: [Int] = []
                while !sub.atEnd {
                    let (f, w) = try sub.key()
                    if f == 1 && w == 2 {
                        var packed = try sub.sub()
                        while !packed.atEnd { dims.append(Int(truncatingIfNeeded: try packed.varint())) }
                    } else if f == 1 && w == 0 {
                        dims.append(Int(truncatingIfNeeded: try sub.varint()))
                    } else {
                        try sub.skip(w)
                    }
                }
                shape = dims
            default:
                try reader.skip(wire)
            }
        }
        if data.isEmpty { data = doubles }
        let dims = shape ?? (hasLegacy ? legacy : [data.count])
        guard let n = Shape(dims).checkedCount, n == data.count else {
            throw Error(file: file, message: "is not a BlobProto: its shape \(dims) needs \(Shape(dims).checkedCount ?? -1) values but it holds \(data.count)")
        }
        return (dims, data)
    }

    /// Protobuf wire-format cursor over a byte slice.
    struct Wire {
        var bytes: ArraySlice<UInt8>
        let file: String
        var atEnd: Bool { bytes.isEmpty }
        func fail() -> Error { Error(file: file, message: "is not a binary BlobProto (truncated or malformed protobuf)") }

        mutating func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while let byte = bytes.first {
                bytes = bytes.dropFirst()
                v |= UInt64(byte & 0x7f) << shift
                if byte < 0x80 { return v }
                shift += 7
                if shift > 63 { throw fail() }
            }
            throw fail()
        }
        mutating func key() throws -> (Int, Int) {
            let k = try varint()
            return (Int(k >> 3), Int(k & 7))
        }
        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, bytes.count >= n else { throw fail() }
            let s = bytes.prefix(n)
            bytes = bytes.dropFirst(n)
            return s
        }
        mutating func fixed32() throws -> UInt32 {
            let s = try take(4)
            return s.reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
        mutating func fixed64() throws -> UInt64 {
            let s = try take(8)
            return s.reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        mutating func sub() throws -> Wire {
            let n = try varint()
            guard n <= UInt64(bytes.count) else { throw fail() }
            return Wire(bytes: try take(Int(n)), file: file)
        }
        mutating func skip(_ wire: Int) throws {
            switch wire {
            case 0: _ = try varint()
            case 1: _ = try take(8)
            case 2: _ = try sub()
            case 5: _ = try take(4)
            default: throw fail()
            }
        }
    }
}
