import CZlib
import Foundation
import GraphIR
import Runtime

/// An array read from an IDX file (the format of MNIST and Fashion-MNIST):
/// `dims[0]` items of shape `dims[1...]`. Unsigned bytes stay bytes (60,000
/// images are 47 MB, not 188); other element types become floats.
public struct IDXArray: Sendable {
    public enum Elements: Sendable {
        case bytes([UInt8])
        case floats([Float])
    }
    public var dims: [Int]
    public var elements: Elements
    /// Values per item: the product of dims[1...].
    public var itemSize: Int { dims.dropFirst().reduce(1, *) }
    public var count: Int { dims.first ?? 0 }

    /// Writes item `i` as floats times `scale` to `out` (itemSize values).
    public func item(_ i: Int, into out: UnsafeMutablePointer<Float>, scale: Float = 1) {
        let n = itemSize, start = i * n
        switch elements {
        case .bytes(let b):
            b.withUnsafeBufferPointer { p in for k in 0..<n { out[k] = Float(p[start + k]) * scale } }
        case .floats(let f):
            f.withUnsafeBufferPointer { p in for k in 0..<n { out[k] = p[start + k] * scale } }
        }
    }

    /// Item `i` of a one-value-per-item array (labels).
    public func scalar(_ i: Int) -> Float {
        switch elements {
        case .bytes(let b): return Float(b[i * itemSize])
        case .floats(let f): return f[i * itemSize]
        }
    }
}

/// Reads IDX files, plain or gzip-compressed (zlib reads both):
///
///     magic   0x00 0x00 TYPE RANK      TYPE: 08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64
///     dims    RANK x uint32, big-endian
///     data    big-endian elements, C order
public enum IDXFile {
    public struct Error: Swift.Error, CustomStringConvertible, Sendable {
        public var file: String
        public var message: String
        public var description: String { "\(file): \(message)" }
    }

    public static func read(_ path: String) throws -> IDXArray {
        try parse(try readBytes(path), file: path)
    }

    /// The whole file, decompressed when it is gzip.
    static func readBytes(_ path: String) throws -> [UInt8] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw Error(file: path, message: "no such file")
        }
        guard !isDir.boolValue else { throw Error(file: path, message: "is a directory, not an IDX file") }
        guard let gz = gzopen(path, "rb") else {
            throw Error(file: path, message: "cannot be opened (check its permissions)")
        }
        defer { gzclose(gz) }
        _ = gzbuffer(gz, 1 << 17)
        var out: [UInt8] = []
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = buffer.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32(chunk)) }
            if n < 0 {
                var code: Int32 = 0
                let msg = gzerror(gz, &code).map { String(cString: $0) } ?? "unknown error"
                throw Error(file: path, message: "cannot be decompressed (\(msg)); the gzip file is damaged or truncated")
            }
            if n == 0 { break }
            // A gzip file can expand a thousandfold: bound what it may become.
            if let excess = MemoryBudget.excess(out.count + Int(n), for: "decompressing it") {
                throw Error(file: path, message: excess)
            }
            out.append(contentsOf: buffer[0..<Int(n)])
        }
        return out
    }

    public static func parse(_ b: [UInt8], file: String) throws -> IDXArray {
        func fail(_ m: String) -> Error { Error(file: file, message: m) }
        guard b.count >= 4 else { throw fail("is \(b.count) bytes long, too short for an IDX header") }
        guard b[0] == 0, b[1] == 0 else {
            throw fail(String(format: "is not an IDX file (magic starts 0x%02X 0x%02X, expected 0x00 0x00)", b[0], b[1]))
        }
        let type = b[2], rank = Int(b[3])
        let size: Int
        switch type {
        case 0x08, 0x09: size = 1
        case 0x0B: size = 2
        case 0x0C, 0x0D: size = 4
        case 0x0E: size = 8
        default: throw fail(String(format: "has unknown IDX element type 0x%02X (known: 08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64)", type))
        }
        guard rank >= 1 else { throw fail("has rank 0; an IDX file needs at least the item count") }
        let header = 4 + 4 * rank
        guard b.count >= header else { throw fail("is truncated inside its header (\(rank) dimensions need \(header) bytes)") }
        var dims: [Int] = []
        for k in 0..<rank {
            let o = 4 + 4 * k
            dims.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
        }
        guard let count = Shape(dims).checkedCount else { throw fail("has impossible dimensions \(dims)") }
        let need = header + count * size
        guard b.count >= need else {
            throw fail("is truncated: its header declares \(dims.map(String.init).joined(separator: "x")) elements (\(need) bytes) but it has \(b.count) bytes")
        }
        guard b.count == need else {
            throw fail("has \(b.count - need) bytes after the \(dims.map(String.init).joined(separator: "x")) elements its header declares; it is not a valid IDX file")
        }
        if type == 0x08 { return IDXArray(dims: dims, elements: .bytes(Array(b[header..<need]))) }
        var f = [Float](repeating: 0, count: count)
        b.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            let p = base + header
            for i in 0..<count {
                let q = p + i * size
                switch type {
                case 0x09: f[i] = Float(Int8(bitPattern: q.load(as: UInt8.self)))
                case 0x0B: f[i] = Float(Int16(bitPattern: UInt16(bigEndian: q.loadUnaligned(as: UInt16.self))))
                case 0x0C: f[i] = Float(Int32(bitPattern: UInt32(bigEndian: q.loadUnaligned(as: UInt32.self))))
                case 0x0D: f[i] = Float(bitPattern: UInt32(bigEndian: q.loadUnaligned(as: UInt32.self)))
                default: f[i] = Float(Double(bitPattern: UInt64(bigEndian: q.loadUnaligned(as: UInt64.self))))
                }
            }
        }
        return IDXArray(dims: dims, elements: .floats(f))
    }
}
