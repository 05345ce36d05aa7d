import Foundation
import GraphIR

/// Reading binary protobuf (`.caffemodel`, `.binaryproto`, `.solverstate`)
/// straight into `ParamMessage` trees, driven by the schema.
///
/// The reader follows the protobuf encoding rules that every protobuf
/// implementation (and so real Caffe) applies, rather than rejecting what
/// other writers legally produce:
///
/// - a field number the schema does not know is skipped (its bytes are
///   measured by the wire type, groups included);
/// - a known field whose wire type does not fit its declared type is skipped
///   the same way, as an unknown field (a Caffe fork's caffemodel may store its
///   own integer where our schema has a float or a message);
/// - a repeated numeric field is accepted both packed (one length-delimited
///   record) and unpacked (one tag per value), and mixed;
/// - a non-repeated field given more than once keeps the last value, and a
///   non-repeated message given more than once is the merge of all
///   occurrences (later scalars replace, repeated fields append, embedded
///   messages merge recursively);
/// - an enum number the schema does not declare leaves the field unset (proto2
///   keeps it as an unknown field).
///
/// What no protobuf reader accepts is an error naming the file, the byte
/// offset and the field path (`layer[3].blobs[0].data`): a length or a fixed
/// width past the end of its message, a variable-length number of more than
/// ten bytes or cut off by the end, wire types 6 and 7, field number 0, an
/// unbalanced group, a packed record whose length is not a whole number of
/// values, and messages nested more than `maxDepth` deep.
///
/// Memory: floats are copied once from the file's bytes into each blob's
/// array, so a caffemodel needs its size twice while it decodes. There is no
/// size limit beyond that (CaffeNet's 233 MB file decodes in one go).
enum BinaryFormat {
    /// Protobuf's own default recursion limit.
    static let maxDepth = 100

    /// Decodes `bytes` as a message of `schemaName` ("caffe.NetParameter").
    static func decode(_ bytes: consuming [UInt8], schemaName: String, file: String) throws -> ParamMessage {
        guard let schema = CaffeSchemaRegistry.shared.schema(schemaName) else {
            throw ImportError.file(file, "internal: no schema for \(schemaName)")
        }
        if bytes.isEmpty { throw ImportError.file(file, "file is empty; expected a binary \(TextFormatParser.shortName(schemaName))") }
        return try bytes.withUnsafeBufferPointer { buf in
            var reader = WireReader(bytes: buf, file: file)
            var message = ParamMessage(schema: schema)
            try reader.readFields(into: &message, schema: schema, from: 0, to: buf.count, path: "", depth: 0)
            return message
        }
    }
}

/// One pass over protobuf wire bytes; see `BinaryFormat` for the rules.
struct WireReader {
    let bytes: UnsafeBufferPointer<UInt8>
    let file: String
    var pos = 0

    init(bytes: UnsafeBufferPointer<UInt8>, file: String) {
        self.bytes = bytes; self.file = file
    }

    private func fail(_ at: Int, _ path: () -> String, _ message: String) -> ImportError {
        .binary(file: file, offset: at, path: path(), message: message)
    }

    /// A base-128 varint ending before `end`: at most ten bytes, as protobuf.
    mutating func varint(end: Int, path: @autoclosure () -> String) throws -> UInt64 {
        let at = pos
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < end else {
                throw fail(at, path, "the data ends inside a variable-length number; the file is truncated or corrupt")
            }
            let c = bytes[pos]
            pos += 1
            value |= UInt64(c & 0x7f) << shift
            if c & 0x80 == 0 { return value }
            shift += 7
            guard shift < 70 else {
                throw fail(at, path, "malformed variable-length number (more than 10 bytes); the file is corrupt")
            }
        }
    }

    /// Moves past `count` bytes of a record that must end by `end`.
    private mutating func skip(_ count: UInt64, end: Int, recordAt: Int, path: @autoclosure () -> String, what: String) throws {
        guard count <= UInt64(end - pos) else {
            throw fail(recordAt, path, "\(what) claims \(count) bytes but only \(end - pos) remain; the file is truncated or corrupt")
        }
        pos += Int(count)
    }

    /// Skips the value of an unknown (or mismatched) field of wire type `wire`.
    /// A group is skipped up to its matching end tag, nested groups included.
    private mutating func skipValue(wire: Int, number: Int, end: Int, tagAt: Int, path: @autoclosure () -> String, depth: Int) throws {
        switch wire {
        case 0: _ = try varint(end: end, path: path())
        case 1: try skip(8, end: end, recordAt: tagAt, path: path(), what: "a 64-bit value")
        case 5: try skip(4, end: end, recordAt: tagAt, path: path(), what: "a 32-bit value")
        case 2:
            let lenAt = pos
            let len = try varint(end: end, path: path())
            try skip(len, end: end, recordAt: lenAt, path: path(), what: "the length prefix")
        case 3:
            guard depth < BinaryFormat.maxDepth else {
                throw fail(tagAt, path, "groups nested more than \(BinaryFormat.maxDepth) deep; the file is corrupt")
            }
            while true {
                guard pos < end else { throw fail(tagAt, path, "group of field \(number) has no end tag; the file is truncated or corrupt") }
                let innerAt = pos
                let key = try varint(end: end, path: path())
                let innerWire = Int(key & 7)
                let innerNumber = key >> 3
                if innerWire == 4 {
                    guard innerNumber == UInt64(number) else {
                        throw fail(innerAt, path, "group of field \(number) is closed by the end tag of field \(innerNumber); the file is corrupt")
                    }
                    return
                }
                guard innerNumber > 0, innerNumber < 1 << 29 else {
                    throw fail(innerAt, path, "field number \(innerNumber) is invalid; the file is corrupt or not a Caffe model")
                }
                try skipValue(wire: innerWire, number: Int(innerNumber), end: end, tagAt: innerAt, path: path(), depth: depth + 1)
            }
        case 4:
            throw fail(tagAt, path, "an end-of-group tag without its start; the file is corrupt")
        default:
            throw fail(tagAt, path, "invalid wire type \(wire); the file is corrupt or not a Caffe model")
        }
    }

    /// Whether wire type `wire` carries a value of `field` (packed or not).
    static func fits(_ field: ParamSchema.Field, wire: Int) -> Bool {
        let natural: Int
        switch field.kind {
        case .float, .fixed32, .sfixed32: natural = 5
        case .double, .fixed64, .sfixed64: natural = 1
        case .string, .bytes, .message: natural = 2
        default: natural = 0
        }
        if wire == natural { return true }
        // Any repeated scalar number may come packed.
        return wire == 2 && field.repeated && natural != 2
    }

    /// Decodes the fields between `start` and `end` into `message`, which may
    /// already hold fields (a later occurrence of the same non-repeated message
    /// is merged into the earlier one).
    mutating func readFields(into message: inout ParamMessage, schema: ParamSchema, from start: Int, to end: Int,
                             path: @autoclosure () -> String, depth: Int) throws {
        guard depth < BinaryFormat.maxDepth else {
            throw fail(start, path, "messages nested more than \(BinaryFormat.maxDepth) deep; the file is corrupt")
        }
        pos = start
        // Where each non-repeated field (and each repeated float/double run) sits in `message.fields`.
        var slot: [String: Int] = [:]
        // Repeated float/double values are gathered here and stored once, as one `.floatArray`.
        var floats: [String: [Float]] = [:]
        var counts: [Int: Int] = [:]
        for (i, f) in message.fields.enumerated() {
            guard let field = schema.field(f.name) else { continue }
            if !field.repeated { slot[f.name] = i }
            if field.repeated, field.kind == .float || field.kind == .double, case .floatArray(let a) = f.value {
                slot[f.name] = i
                floats[f.name] = a
            }
            if field.repeated { counts[field.number, default: 0] += 1 }
        }
        for (name, i) in slot where floats[name] != nil { message.fields[i].value = .floatArray([]) }

        while pos < end {
            let tagAt = pos
            let key = try varint(end: end, path: path())
            let number = key >> 3, wire = Int(key & 7)
            guard number > 0, number < 1 << 29 else {
                throw fail(tagAt, path, "field number \(number) is invalid; the file is corrupt or not a Caffe model")
            }
            guard let field = schema.fieldsByNumber[Int(number)], Self.fits(field, wire: wire) else {
                // Unknown, or known with a wire type that does not fit: skipped, as protobuf does.
                try skipValue(wire: wire, number: Int(number), end: end, tagAt: tagAt,
                              path: Self.join(path(), "field \(number)"), depth: depth)
                continue
            }
            let index = counts[field.number, default: 0]
            counts[field.number] = index + 1
            // The field's path, built only for an error message.
            func fpath() -> String { Self.join(path(), field.repeated ? "\(field.name)[\(index)]" : field.name) }

            if field.repeated && (field.kind == .float || field.kind == .double) {
                if slot[field.name] == nil {
                    slot[field.name] = message.fields.count
                    message.fields.append(ParamField(name: field.name, value: .floatArray([])))
                }
                try readFloats(field, wire: wire, end: end, tagAt: tagAt, path: fpath(), into: &floats[field.name, default: []])
                continue
            }
            if wire == 2 && field.kind != .string && field.kind != .bytes && field.kind != .message {
                // A packed run of scalars.
                let lenAt = pos
                let len = try varint(end: end, path: fpath())
                guard len <= UInt64(end - pos) else {
                    throw fail(lenAt, fpath, "the length prefix claims \(len) bytes but only \(end - pos) remain; the file is truncated or corrupt")
                }
                let runEnd = pos + Int(len)
                let elementWire = field.kind == .fixed32 || field.kind == .sfixed32 ? 5
                    : field.kind == .fixed64 || field.kind == .sfixed64 ? 1 : 0
                while pos < runEnd {
                    if let v = try scalar(field, wire: elementWire, end: runEnd, tagAt: lenAt, path: fpath()) {
                        message.fields.append(ParamField(name: field.name, value: v))
                    }
                }
                continue
            }
            if field.kind == .message {
                let lenAt = pos
                let len = try varint(end: end, path: fpath())
                guard len <= UInt64(end - pos) else {
                    throw fail(lenAt, fpath, "the length prefix claims \(len) bytes but only \(end - pos) remain; the file is truncated or corrupt")
                }
                let subEnd = pos + Int(len)
                let subSchema = field.messageSchema() ?? ParamSchema(name: field.name)
                if !field.repeated, let i = slot[field.name], case .message(var earlier) = message.fields[i].value {
                    // protobuf merges repeated occurrences of a non-repeated message.
                    message.fields[i].value = .bool(false)   // drop the reference so `earlier` is unique
                    try readFields(into: &earlier, schema: subSchema, from: pos, to: subEnd, path: fpath(), depth: depth + 1)
                    message.fields[i].value = .message(earlier)
                } else {
                    var sub = ParamMessage(schema: subSchema)
                    try readFields(into: &sub, schema: subSchema, from: pos, to: subEnd, path: fpath(), depth: depth + 1)
                    if !field.repeated { slot[field.name] = message.fields.count }
                    message.fields.append(ParamField(name: field.name, value: .message(sub)))
                }
                pos = subEnd
                continue
            }
            guard let value = try scalar(field, wire: wire, end: end, tagAt: tagAt, path: fpath()) else { continue }
            if !field.repeated, let i = slot[field.name] {
                message.fields[i].value = value   // last one wins
            } else {
                if !field.repeated { slot[field.name] = message.fields.count }
                message.fields.append(ParamField(name: field.name, value: value))
            }
        }
        for (name, values) in floats {
            if let i = slot[name] { message.fields[i].value = .floatArray(values) }
        }
    }

    static func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    /// Little-endian fixed-width reads (the buffer holds at least the bytes asked for).
    private func fixed32(at p: Int) -> UInt32 {
        UInt32(littleEndian: UnsafeRawPointer(bytes.baseAddress! + p).loadUnaligned(as: UInt32.self))
    }
    private func fixed64(at p: Int) -> UInt64 {
        UInt64(littleEndian: UnsafeRawPointer(bytes.baseAddress! + p).loadUnaligned(as: UInt64.self))
    }

    /// Appends the values of one record of a repeated float or double field.
    private mutating func readFloats(_ field: ParamSchema.Field, wire: Int, end: Int, tagAt: Int, path: @autoclosure () -> String,
                                     into out: inout [Float]) throws {
        let width = field.kind == .double ? 8 : 4
        var count = 1
        var from = pos
        if wire == 2 {
            let lenAt = pos
            let len = try varint(end: end, path: path())
            guard len <= UInt64(end - pos) else {
                throw fail(lenAt, path, "the length prefix claims \(len) bytes but only \(end - pos) remain; the file is truncated or corrupt")
            }
            guard len % UInt64(width) == 0 else {
                throw fail(lenAt, path, "a packed run of \(width * 8)-bit numbers is \(len) bytes long, not a multiple of \(width); the file is corrupt")
            }
            count = Int(len) / width
            from = pos
        } else {
            guard end - pos >= width else {
                throw fail(tagAt, path, "needs \(width) bytes but only \(end - pos) remain; the file is truncated")
            }
        }
        pos = from + count * width
        out.reserveCapacity(out.count + count)
        if width == 4 {
            #if _endian(little)
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: count))
            out.withUnsafeMutableBytes { dst in
                (dst.baseAddress! + start * 4).copyMemory(from: bytes.baseAddress! + from, byteCount: count * 4)
            }
            #else
            for k in 0..<count { out.append(Float(bitPattern: fixed32(at: from + 4 * k))) }
            #endif
        } else {
            for k in 0..<count { out.append(Float(Double(bitPattern: fixed64(at: from + 8 * k)))) }
        }
    }

    /// One scalar value of `field` with wire type `wire`, or nil when it is an
    /// enum number the schema does not declare (protobuf then keeps it as an
    /// unknown field, so the field stays unset).
    private mutating func scalar(_ field: ParamSchema.Field, wire: Int, end: Int, tagAt: Int, path: @autoclosure () -> String) throws -> ParamValue? {
        switch wire {
        case 5:
            guard end - pos >= 4 else { throw fail(tagAt, path, "needs 4 bytes but only \(end - pos) remain; the file is truncated") }
            let v = fixed32(at: pos)
            pos += 4
            switch field.kind {
            case .float: return .double(Double(Float(bitPattern: v)))
            case .sfixed32: return .int(Int64(Int32(bitPattern: v)))
            default: return .uint(UInt64(v))
            }
        case 1:
            guard end - pos >= 8 else { throw fail(tagAt, path, "needs 8 bytes but only \(end - pos) remain; the file is truncated") }
            let v = fixed64(at: pos)
            pos += 8
            switch field.kind {
            case .double: return .double(Double(bitPattern: v))
            case .sfixed64: return .int(Int64(bitPattern: v))
            default: return .uint(v)
            }
        case 2:
            let lenAt = pos
            let len = try varint(end: end, path: path())
            guard len <= UInt64(end - pos) else {
                throw fail(lenAt, path, "the length prefix claims \(len) bytes but only \(end - pos) remain; the file is truncated or corrupt")
            }
            let body = UnsafeBufferPointer(rebasing: bytes[pos..<(pos + Int(len))])
            pos += Int(len)
            return field.kind == .bytes ? .bytes(Array(body)) : .string(String(decoding: body, as: UTF8.self))
        default:
            let v = try varint(end: end, path: path())
            switch field.kind {
            case .int32: return .int(Int64(Int32(truncatingIfNeeded: v)))
            case .int64: return .int(Int64(bitPattern: v))
            case .uint32: return .uint(UInt64(UInt32(truncatingIfNeeded: v)))
            case .sint32:
                let n = UInt32(truncatingIfNeeded: v)
                return .int(Int64(Int32(bitPattern: (n >> 1) ^ (0 &- (n & 1)))))
            case .sint64: return .int(Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))))
            case .bool: return .bool(v != 0)
            case .enumeration(let values):
                let n = Int32(truncatingIfNeeded: v)
                guard let hit = values.first(where: { $0.value == n }) else { return nil }
                return .enumValue(name: hit.key, number: n)
            default: return .uint(v)
            }
        }
    }
}
