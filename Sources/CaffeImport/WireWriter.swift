import GraphIR

/// Encodes a `ParamMessage` with its schema into protobuf binary, the format
/// of `.caffemodel` files. Repeated numeric fields are written packed where
/// the schema says so (BlobProto.data is `[packed = true]`), else one tag per value.
struct WireWriter {
    private(set) var bytes: [UInt8] = []

    static func encode(_ m: ParamMessage) throws -> [UInt8] {
        var w = WireWriter()
        try w.write(m)
        return w.bytes
    }

    mutating func write(_ m: ParamMessage) throws {
        guard let schema = m.schema else {
            throw ImportError.network(file: "", "cannot write a message without a schema (custom parameters are written only to prototxt)")
        }
        // Group repeated occurrences so packed fields become one record.
        var order: [String] = []
        var groups: [String: [ParamValue]] = [:]
        for f in m.fields {
            if groups[f.name] == nil { order.append(f.name) }
            groups[f.name, default: []].append(f.value)
        }
        for name in order {
            guard let field = schema.field(name) else { continue } // untyped plugin fields: not in the schema
            let values = groups[name]!
            if field.packed || (field.repeated && values.contains { if case .floatArray = $0 { return true } else { return false } }) {
                try writePacked(field, values)
            } else {
                for v in values { try writeOne(field, v) }
            }
        }
    }

    private mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    private mutating func tag(_ n: Int, _ wire: Int) { varint(UInt64(n << 3 | wire)) }
    private mutating func fixed32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    private mutating func fixed64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }

    private func wireType(_ k: ParamSchema.Kind) -> Int {
        switch k {
        case .float, .fixed32, .sfixed32: return 5
        case .double, .fixed64, .sfixed64: return 1
        case .string, .bytes, .message: return 2
        default: return 0
        }
    }

    private mutating func writePacked(_ f: ParamSchema.Field, _ values: [ParamValue]) throws {
        var body = WireWriter()
        for v in values {
            if case .floatArray(let a) = v {
                if f.kind == .double { for x in a { body.fixed64(Double(x).bitPattern) } }
                else {
                    body.bytes.reserveCapacity(body.bytes.count + a.count * 4)
                    a.withUnsafeBytes { body.bytes += $0 }  // little-endian hosts only (x86_64, arm64)
                }
            } else {
                try body.payload(f, v)
            }
        }
        if body.bytes.isEmpty { return }
        tag(f.number, 2)
        varint(UInt64(body.bytes.count))
        bytes += body.bytes
    }

    private mutating func writeOne(_ f: ParamSchema.Field, _ v: ParamValue) throws {
        if case .floatArray(let a) = v {
            for x in a { try writeOne(f, .double(Double(x))) }
            return
        }
        let w = wireType(f.kind)
        tag(f.number, w)
        if w == 2 {
            var body = WireWriter()
            try body.payload(f, v)
            varint(UInt64(body.bytes.count))
            bytes += body.bytes
        } else {
            try payload(f, v)
        }
    }

    /// The value without tag (and, for length-delimited kinds, without length).
    private mutating func payload(_ f: ParamSchema.Field, _ v: ParamValue) throws {
        func bad() -> ImportError { .network(file: "", "field '\(f.name)': value \(v) does not fit its type") }
        switch f.kind {
        case .int32, .int64, .uint32, .uint64:
            guard let i = v.asInt64 ?? (v.asDouble.flatMap { Int64(exactly: $0) }) else {
                if case .uint(let u) = v { varint(u); return }
                throw bad()
            }
            varint(UInt64(bitPattern: i))
        case .sint32, .sint64:
            guard let i = v.asInt64 else { throw bad() }
            varint(UInt64(bitPattern: (i << 1) ^ (i >> 63)))
        case .fixed32, .sfixed32:
            guard let i = v.asInt64 else { throw bad() }
            fixed32(UInt32(truncatingIfNeeded: i))
        case .fixed64, .sfixed64:
            guard let i = v.asInt64 else { throw bad() }
            fixed64(UInt64(bitPattern: i))
        case .float:
            guard let d = v.asDouble else { throw bad() }
            fixed32(Float(d).bitPattern)
        case .double:
            guard let d = v.asDouble else { throw bad() }
            fixed64(d.bitPattern)
        case .bool:
            guard let i = v.asInt64 else { throw bad() }
            varint(i != 0 ? 1 : 0)
        case .enumeration(let values):
            switch v {
            case .enumValue(_, let n): varint(UInt64(bitPattern: Int64(n)))
            case .identifier(let s), .string(let s):
                guard let n = values[s] else { throw bad() }
                varint(UInt64(bitPattern: Int64(n)))
            default:
                guard let i = v.asInt64 else { throw bad() }
                varint(UInt64(bitPattern: i))
            }
        case .string:
            guard case .string(let s) = v else { throw bad() }
            bytes += Array(s.utf8)
        case .bytes:
            switch v {
            case .bytes(let b): bytes += b
            case .string(let s): bytes += Array(s.utf8)
            default: throw bad()
            }
        case .message:
            guard case .message(let m) = v else { throw bad() }
            var sub = m
            if sub.schema == nil { sub.schema = f.messageSchema() }
            try write(sub)
        }
    }
}
