import CaffeSchema
import Foundation
import CProtobufC
import GraphIR

/// Reading binary protobuf (`.caffemodel`, `.binaryproto`) with protobuf-c.
///
/// Before protobuf-c decodes the bytes, a structural walk checks every tag and
/// length prefix against the schema, so a truncated or corrupt file gets an
/// error naming the byte offset and the field path (`layer[3].blobs[0].data`)
/// instead of protobuf-c's bare failure. There is no size limit (CaffeNet's
/// 233 MB file decodes in one go).
enum BinaryFormat {
    /// Decodes `bytes` as a message of `schemaName` ("caffe.NetParameter").
    ///
    /// Memory: the file's bytes are released as soon as protobuf-c has unpacked
    /// them (when the caller passed its last reference), and each blob's C
    /// array as soon as it is copied, so a large caffemodel peaks near twice
    /// its size rather than three times.
    static func decode(_ bytes: consuming [UInt8], schemaName: String, file: String) throws -> ParamMessage {
        let reg = CaffeSchemaRegistry.shared
        guard let schema = reg.schema(schemaName), let desc = reg.descriptor(schemaName) else {
            throw ImportError.file(file, "internal: no schema for \(schemaName)")
        }
        if bytes.isEmpty { throw ImportError.file(file, "file is empty; expected a binary \(TextFormatParser.shortName(schemaName))") }
        try validate(bytes, from: 0, to: bytes.count, schema: schema, path: "", file: file, depth: 0)
        let raw = bytes.withUnsafeBufferPointer { buf in
            protobuf_c_message_unpack(desc, nil, buf.count, buf.baseAddress)
        }
        _ = consume bytes
        guard let msg = raw else {
            throw ImportError.binary(file: file, offset: 0, path: "",
                                     message: "protobuf-c could not decode the file (corrupt or not a \(TextFormatParser.shortName(schemaName)))")
        }
        defer { protobuf_c_message_free_unpacked(msg, nil) }
        return convert(UnsafeRawPointer(msg), desc, schema: schema)
    }

    // MARK: - Structural check

    private static func validate(_ b: [UInt8], from start: Int, to end: Int, schema: ParamSchema?,
                                 path: String, file: String, depth: Int) throws {
        guard depth < 64 else {
            throw ImportError.binary(file: file, offset: start, path: path, message: "messages nested more than 64 deep; the file is corrupt")
        }
        var pos = start
        var counts: [Int: Int] = [:]
        func fail(_ at: Int, _ p: String, _ m: String) -> ImportError {
            .binary(file: file, offset: at, path: p, message: m)
        }
        func varint(_ p: String) throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            let at = pos
            while true {
                guard pos < end else { throw fail(at, p, "the file ends inside a number; it is truncated") }
                let c = b[pos]; pos += 1
                if shift >= 64 { throw fail(at, p, "malformed variable-length number") }
                v |= UInt64(c & 0x7f) << shift
                if c & 0x80 == 0 { return v }
                shift += 7
            }
        }
        while pos < end {
            let tagAt = pos
            let key = try varint(path)
            let number = Int(key >> 3), wire = Int(key & 7)
            guard number > 0 else { throw fail(tagAt, path, "field number 0 is invalid; the file is corrupt or not a Caffe model") }
            let field = schema?.fieldsByNumber[number]
            let index = counts[number, default: 0]
            counts[number] = index + 1
            let fname = field.map { $0.repeated ? "\($0.name)[\(index)]" : $0.name } ?? "field \(number)"
            let fpath = path.isEmpty ? fname : "\(path).\(fname)"
            switch wire {
            case 0: _ = try varint(fpath)
            case 1:
                guard end - pos >= 8 else { throw fail(tagAt, fpath, "needs 8 bytes but only \(end - pos) remain; the file is truncated") }
                pos += 8
            case 5:
                guard end - pos >= 4 else { throw fail(tagAt, fpath, "needs 4 bytes but only \(end - pos) remain; the file is truncated") }
                pos += 4
            case 2:
                let lenAt = pos
                let len = try varint(fpath)
                guard len <= UInt64(end - pos) else {
                    throw fail(lenAt, fpath, "length prefix claims \(len) bytes but only \(end - pos) remain; the file is truncated or corrupt")
                }
                let subEnd = pos + Int(len)
                if let f = field, f.kind == .message {
                    try validate(b, from: pos, to: subEnd, schema: f.messageSchema(), path: fpath, file: file, depth: depth + 1)
                }
                pos = subEnd
            case 3, 4:
                throw fail(tagAt, fpath, "uses protobuf groups (wire type \(wire)), which Caffe files never contain; the file is corrupt")
            default:
                throw fail(tagAt, fpath, "invalid wire type \(wire); the file is corrupt or not a Caffe model")
            }
            if let f = field {
                let ok: Bool
                switch f.kind {
                case .float, .fixed32, .sfixed32: ok = wire == 5 || (f.repeated && wire == 2)
                case .double, .fixed64, .sfixed64: ok = wire == 1 || (f.repeated && wire == 2)
                case .string, .bytes, .message: ok = wire == 2
                default: ok = wire == 0 || (f.repeated && wire == 2)
                }
                if !ok { throw fail(tagAt, fpath, "has wire type \(wire), which does not fit its type; the file is corrupt") }
            }
        }
    }

    // MARK: - C struct -> ParamMessage

    /// Frees a copied numeric array of an unpacked message and empties the
    /// field, so `protobuf_c_message_free_unpacked` skips it. (Unpacked with
    /// the default allocator, which is malloc.)
    private static func releaseRepeated(_ arr: UnsafeRawPointer, at field: UnsafeRawPointer, count: UnsafeRawPointer) {
        free(UnsafeMutableRawPointer(mutating: arr))
        UnsafeMutableRawPointer(mutating: field).storeBytes(of: nil, as: UnsafeRawPointer?.self)
        UnsafeMutableRawPointer(mutating: count).storeBytes(of: 0, as: Int.self)
    }

    /// Walks a decoded protobuf-c message through its descriptor. Blob data
    /// (repeated float/double) becomes one `.floatArray` value.
    static func convert(_ m: UnsafeRawPointer, _ d: UnsafePointer<ProtobufCMessageDescriptor>,
                        schema: ParamSchema) -> ParamMessage {
        var out = ParamMessage(schema: schema)
        for i in 0..<Int(d.pointee.n_fields) {
            let f = d.pointee.fields[i]
            let name = String(cString: f.name)
            let field = m + Int(f.offset)
            if f.label == PROTOBUF_C_LABEL_REPEATED {
                let n = (m + Int(f.quantifier_offset)).load(as: Int.self)
                guard n > 0, let arr = field.load(as: UnsafeRawPointer?.self) else { continue }
                switch f.type {
                case PROTOBUF_C_TYPE_FLOAT:
                    out.append(name, .floatArray(Array(UnsafeBufferPointer(start: arr.assumingMemoryBound(to: Float.self), count: n))))
                    releaseRepeated(arr, at: field, count: m + Int(f.quantifier_offset))
                case PROTOBUF_C_TYPE_DOUBLE:
                    let p = arr.assumingMemoryBound(to: Double.self)
                    out.append(name, .floatArray((0..<n).map { Float(p[$0]) }))
                    releaseRepeated(arr, at: field, count: m + Int(f.quantifier_offset))
                default:
                    let stride = elementSize(f.type)
                    for k in 0..<n {
                        out.append(name, scalar(arr + k * stride, f, schema: schema, name: name))
                    }
                }
            } else {
                switch f.type {
                case PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_TYPE_STRING:
                    guard let p = field.load(as: UnsafeRawPointer?.self) else { continue }
                    if f.type == PROTOBUF_C_TYPE_STRING, let def = f.default_value, p == UnsafeRawPointer(def) { continue }
                    out.append(name, scalar(field, f, schema: schema, name: name))
                default:
                    if f.label == PROTOBUF_C_LABEL_OPTIONAL, f.quantifier_offset != 0 || hasQuantifier(f) {
                        guard (m + Int(f.quantifier_offset)).load(as: Int32.self) != 0 else { continue }
                    }
                    out.append(name, scalar(field, f, schema: schema, name: name))
                }
            }
        }
        return out
    }

    private static func hasQuantifier(_ f: ProtobufCFieldDescriptor) -> Bool {
        // Optional scalars and bytes carry a has_ flag in protobuf-c.
        f.type != PROTOBUF_C_TYPE_MESSAGE && f.type != PROTOBUF_C_TYPE_STRING
    }

    private static func elementSize(_ t: ProtobufCType) -> Int {
        switch t {
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64,
             PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_DOUBLE: return 8
        case PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE: return MemoryLayout<UnsafeRawPointer>.size
        case PROTOBUF_C_TYPE_BYTES: return MemoryLayout<ProtobufCBinaryData>.size
        default: return 4
        }
    }

    /// One value stored at `p` (for messages and strings, `p` holds a pointer).
    private static func scalar(_ p: UnsafeRawPointer, _ f: ProtobufCFieldDescriptor, schema: ParamSchema, name: String) -> ParamValue {
        switch f.type {
        case PROTOBUF_C_TYPE_INT32, PROTOBUF_C_TYPE_SINT32, PROTOBUF_C_TYPE_SFIXED32: return .int(Int64(p.load(as: Int32.self)))
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64: return .int(p.load(as: Int64.self))
        case PROTOBUF_C_TYPE_UINT32, PROTOBUF_C_TYPE_FIXED32: return .uint(UInt64(p.load(as: UInt32.self)))
        case PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_FIXED64: return .uint(p.load(as: UInt64.self))
        case PROTOBUF_C_TYPE_FLOAT: return .double(Double(p.load(as: Float.self)))
        case PROTOBUF_C_TYPE_DOUBLE: return .double(p.load(as: Double.self))
        case PROTOBUF_C_TYPE_BOOL: return .bool(p.load(as: Int32.self) != 0)
        case PROTOBUF_C_TYPE_ENUM:
            let n = p.load(as: Int32.self)
            if case .enumeration(let values)? = schema.field(name)?.kind, let hit = values.first(where: { $0.value == n }) {
                return .enumValue(name: hit.key, number: n)
            }
            return .enumValue(name: String(n), number: n)
        case PROTOBUF_C_TYPE_STRING:
            guard let s = p.load(as: UnsafePointer<CChar>?.self) else { return .string("") }
            return .string(String(cString: s))
        case PROTOBUF_C_TYPE_BYTES:
            let bd = p.load(as: ProtobufCBinaryData.self)
            guard let data = bd.data, bd.len > 0 else { return .bytes([]) }
            return .bytes(Array(UnsafeBufferPointer(start: data, count: bd.len)))
        default:
            let sub = p.load(as: UnsafeRawPointer.self)
            let sd = f.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
            let subSchema = schema.field(name)?.messageSchema() ?? ParamSchema(name: String(cString: sd.pointee.name))
            return .message(convert(sub, sd, schema: subSchema))
        }
    }
}
