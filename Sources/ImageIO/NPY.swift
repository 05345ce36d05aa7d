import Foundation
import GraphIR
import Tensors

/// Errors reading or writing images and arrays, naming the file.
public struct IOError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var message: String
    public init(_ file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}

/// NumPy `.npy` files: float32 C-order arrays (what numpy.load reads).
///
/// Reading also accepts float64, int32/int64 and uint8 arrays (converted to
/// float32) and both byte orders, since users hand in whatever numpy made.
public enum NPY {
    public static func read(_ path: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IOError(path, FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        return try decode([UInt8](data), file: path)
    }

    public static func decode(_ b: [UInt8], file: String) throws -> Tensor {
        guard b.count >= 10, b[0] == 0x93, Array(b[1...5]) == Array("NUMPY".utf8) else {
            throw IOError(file, "is not a .npy file (missing the \\x93NUMPY magic)")
        }
        let major = b[6]
        let headerLen: Int, start: Int
        if major == 1 {
            headerLen = Int(b[8]) | Int(b[9]) << 8; start = 10
        } else {
            guard b.count >= 12 else { throw IOError(file, "truncated header") }
            headerLen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; start = 12
        }
        guard b.count >= start + headerLen else { throw IOError(file, "truncated header") }
        let header = String(decoding: b[start..<(start + headerLen)], as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)':") else { return nil }
            return String(header[r.upperBound...]).trimmingCharacters(in: .whitespaces)
        }
        guard let descrRaw = field("descr"), let q1 = descrRaw.firstIndex(of: "'"),
              let q2 = descrRaw[descrRaw.index(after: q1)...].firstIndex(of: "'") else {
            throw IOError(file, "header has no dtype ('descr')")
        }
        let descr = String(descrRaw[descrRaw.index(after: q1)..<q2])
        if let fo = field("fortran_order"), fo.hasPrefix("True") {
            throw IOError(file, "is in Fortran order; save it with numpy.ascontiguousarray first")
        }
        guard let sh = field("shape"), let open = sh.firstIndex(of: "("), let close = sh.firstIndex(of: ")") else {
            throw IOError(file, "header has no shape")
        }
        guard open < close else { throw IOError(file, "header has no shape") }
        let dims = try sh[sh.index(after: open)..<close].split(separator: ",").map { s -> Int in
            guard let v = Int(s.trimmingCharacters(in: .whitespaces)), v >= 0 else {
                throw IOError(file, "bad shape '\(sh[open...close].clippedForDisplay())' in the header")
            }
            return v
        }
        let shape = Shape(dims)
        // Overflow-safe: a corrupt header may claim more elements than any file holds.
        guard let count = shape.checkedCount else {
            throw IOError(file, "header claims shape \(shape.description.clippedForDisplay()), more elements than any array can hold; the file is corrupt")
        }
        let body = start + headerLen
        let little = !descr.hasPrefix(">")
        let kind = descr.dropFirst()   // f4, f8, i4, i8, u1, ...
        let size: Int
        switch kind { case "f4", "i4", "u4": size = 4; case "f8", "i8", "u8": size = 8; case "u1", "i1", "b1": size = 1; case "f2": size = 2
                      default: throw IOError(file, "dtype '\(descr.clippedForDisplay())' is not supported; use float32") }
        guard let need = MemoryBudget.size(count: count, elementSize: size), b.count - body >= need else {
            throw IOError(file, "holds \((b.count - body) / size) values but its shape \(shape) needs \(count); the file is truncated")
        }
        if let excess = MemoryBudget.excess(MemoryBudget.size(count: count, elementSize: 4), for: "its \(shape) array as float32") {
            throw IOError(file, excess)
        }
        let t = Tensor(shape: shape)
        let out = t.data
        guard count > 0 else { return t }
        b.withUnsafeBytes { raw in
            let p = raw.baseAddress! + body
            for i in 0..<count {
                let q = p + i * size
                func u32() -> UInt32 { let v = q.loadUnaligned(as: UInt32.self); return little ? UInt32(littleEndian: v) : UInt32(bigEndian: v) }
                func u64() -> UInt64 { let v = q.loadUnaligned(as: UInt64.self); return little ? UInt64(littleEndian: v) : UInt64(bigEndian: v) }
                switch kind {
                case "f4": out[i] = Float(bitPattern: u32())
                case "f8": out[i] = Float(Double(bitPattern: u64()))
                case "i4": out[i] = Float(Int32(bitPattern: u32()))
                case "u4": out[i] = Float(u32())
                case "i8": out[i] = Float(Int64(bitPattern: u64()))
                case "u8": out[i] = Float(u64())
                case "i1": out[i] = Float(Int8(bitPattern: q.load(as: UInt8.self)))
                case "f2":
                    let v = q.loadUnaligned(as: UInt16.self)
                    out[i] = Float(Float16(bitPattern: little ? UInt16(littleEndian: v) : UInt16(bigEndian: v)))
                default: out[i] = Float(q.load(as: UInt8.self))
                }
            }
        }
        return t
    }

    /// Encodes float32 little-endian, C order, format version 1.0.
    /// `growable` gives a 2-d array a header of fixed size (`growableHeaderBytes`)
    /// whatever its row count, so `appendRows` can extend it in place.
    public static func encode(_ t: Tensor, growable: Bool = false) -> [UInt8] {
        var out = header(t.shape.dims, growable: growable)
        out.reserveCapacity(out.count + t.count * 4)
        UnsafeBufferPointer(start: t.data, count: t.count).withMemoryRebound(to: UInt8.self) { out += $0 }
        return out
    }

    /// Size of a growable header: room for any row count.
    public static let growableHeaderBytes = 128

    /// The magic, version and header dictionary of a float32 C-order array,
    /// padded so the data starts on a 64-byte boundary (or, growable, at
    /// exactly `growableHeaderBytes`).
    static func header(_ dims: [Int], growable: Bool = false) -> [UInt8] {
        let shapeText = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let total = 10 + header.utf8.count + 1
        let pad = growable ? max(0, growableHeaderBytes - total) : (64 - total % 64) % 64
        header += String(repeating: " ", count: pad) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let n = header.utf8.count
        out += [UInt8(n & 0xff), UInt8(n >> 8)]
        out += Array(header.utf8)
        return out
    }

    /// Extends the growable 2-d float32 file at `path` (written by `encode`
    /// with `growable: true`) from `rowsBefore` rows to rowsBefore + the rows
    /// given: writes the new rows after row `rowsBefore` (dropping anything
    /// beyond it, e.g. rows of an interrupted run), then rewrites the header's
    /// row count in place. Until the header is rewritten the file still reads
    /// as its old `rowsBefore` rows. Returns false, changing nothing, when the
    /// file is not such a file of `columns` columns.
    public static func appendRows(_ rows: UnsafeBufferPointer<Float>, columns: Int, rowsBefore: Int,
                                  to path: String) throws -> Bool {
        guard columns > 0, rows.count % columns == 0 else { return false }
        guard let fh = FileHandle(forUpdatingAtPath: path) else { return false }
        defer { try? fh.close() }
        let expected = header([rowsBefore, columns], growable: true)
        guard expected.count == growableHeaderBytes,
              let old = try fh.read(upToCount: expected.count), Array(old) == expected else { return false }
        let end = UInt64(growableHeaderBytes + rowsBefore * columns * 4)
        do {
            try fh.seek(toOffset: end)
            try fh.write(contentsOf: Data(buffer: rows))
            try fh.truncate(atOffset: end + UInt64(rows.count * 4))
            try fh.seek(toOffset: 0)
            try fh.write(contentsOf: header([rowsBefore + rows.count / columns, columns], growable: true))
        } catch {
            throw IOError(path, "cannot be extended (\(error.localizedDescription))")
        }
        return true
    }

    public static func write(_ t: Tensor, to path: String, growable: Bool = false) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(encode(t, growable: growable))) else {
            throw IOError(path, "cannot be written (check that the folder exists and is writable)")
        }
    }

    /// A blob name made safe as part of a file name: characters other than
    /// letters, digits and `-_.` become %XX (as the fixtures do for '/').
    public static func fileSafe(_ name: String) -> String {
        var out = ""
        for b in name.utf8 {
            let c = Character(UnicodeScalar(b))
            if c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_" || c == ".") { out.append(c) }
            else { out += String(format: "%%%02X", b) }
        }
        return out
    }
    /// Inverse of `fileSafe`.
    public static func unescape(_ s: String) -> String { s.removingPercentEncoding ?? s }
}
