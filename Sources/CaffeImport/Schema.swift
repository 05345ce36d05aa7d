import CaffeSchema
import CProtobufC
import GraphIR

/// The Caffe schema as `ParamSchema` values, read once from the protobuf-c
/// descriptors that `protoc-c` generated from our `caffe.proto`. The text
/// parser, the binary decoder and the writer all work from these, so a field
/// added to `caffe.proto` is supported everywhere without new code.
public final class CaffeSchemaRegistry: @unchecked Sendable {
    public static let shared = CaffeSchemaRegistry()

    private var byName: [String: ParamSchema] = [:]

    public let netParameter: ParamSchema
    public let layerParameter: ParamSchema
    public let v1LayerParameter: ParamSchema
    public let blobProto: ParamSchema
    public let solverParameter: ParamSchema

    private init() {
        var byName: [String: ParamSchema] = [:]
        let net = CaffeSchemaRegistry.build(caffe_schema_net_parameter_descriptor(), &byName)
        let solver = CaffeSchemaRegistry.build(caffe_schema_solver_parameter_descriptor(), &byName)
        _ = CaffeSchemaRegistry.build(caffe_schema_solver_state_descriptor(), &byName)
        self.byName = byName
        netParameter = net
        solverParameter = solver
        layerParameter = byName["caffe.LayerParameter"]!
        v1LayerParameter = byName["caffe.V1LayerParameter"]!
        blobProto = byName["caffe.BlobProto"]!
    }

    public func schema(_ fullName: String) -> ParamSchema? { byName[fullName] }

    /// Builds the schema of `d` and, recursively, of every message it uses.
    private static func build(_ d: UnsafePointer<ProtobufCMessageDescriptor>,
                              _ byName: inout [String: ParamSchema]) -> ParamSchema {
        let name = String(cString: d.pointee.name)
        if let s = byName[name] { return s }
        let schema = ParamSchema(name: name)
        byName[name] = schema
        for i in 0..<Int(d.pointee.n_fields) {
            let f = d.pointee.fields[i]
            var nested: ParamSchema? = nil
            let kind: ParamSchema.Kind
            switch f.type {
            case PROTOBUF_C_TYPE_INT32: kind = .int32
            case PROTOBUF_C_TYPE_SINT32: kind = .sint32
            case PROTOBUF_C_TYPE_SFIXED32: kind = .sfixed32
            case PROTOBUF_C_TYPE_INT64: kind = .int64
            case PROTOBUF_C_TYPE_SINT64: kind = .sint64
            case PROTOBUF_C_TYPE_SFIXED64: kind = .sfixed64
            case PROTOBUF_C_TYPE_UINT32: kind = .uint32
            case PROTOBUF_C_TYPE_FIXED32: kind = .fixed32
            case PROTOBUF_C_TYPE_UINT64: kind = .uint64
            case PROTOBUF_C_TYPE_FIXED64: kind = .fixed64
            case PROTOBUF_C_TYPE_FLOAT: kind = .float
            case PROTOBUF_C_TYPE_DOUBLE: kind = .double
            case PROTOBUF_C_TYPE_BOOL: kind = .bool
            case PROTOBUF_C_TYPE_STRING: kind = .string
            case PROTOBUF_C_TYPE_BYTES: kind = .bytes
            case PROTOBUF_C_TYPE_ENUM:
                let e = f.descriptor.assumingMemoryBound(to: ProtobufCEnumDescriptor.self)
                var values: [String: Int32] = [:]
                for k in 0..<Int(e.pointee.n_values) {
                    let v = e.pointee.values[k]
                    values[String(cString: v.name)] = Int32(v.value)
                }
                kind = .enumeration(values)
            default: // PROTOBUF_C_TYPE_MESSAGE
                kind = .message
                nested = build(f.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self), &byName)
            }
            let repeated = f.label == PROTOBUF_C_LABEL_REPEATED
            schema.add(ParamSchema.Field(
                name: String(cString: f.name), number: Int(f.id), kind: kind, repeated: repeated,
                packed: (f.flags & UInt32(PROTOBUF_C_FIELD_FLAG_PACKED.rawValue)) != 0,
                defaultValue: repeated ? nil : defaultValue(f, kind),
                messageSchema: { [nested] in nested }))
        }
        return schema
    }

    /// The declared default of a field, as protobuf-c stores it.
    private static func defaultValue(_ f: ProtobufCFieldDescriptor, _ kind: ParamSchema.Kind) -> ParamValue? {
        guard let p = f.default_value else {
            // proto2 implicit defaults
            switch kind {
            case .float, .double: return .double(0)
            case .bool: return .bool(false)
            case .string: return .string("")
            case .bytes, .message: return nil
            case .enumeration(let values):
                // protobuf's implicit default is the first declared value.
                let e = f.descriptor.assumingMemoryBound(to: ProtobufCEnumDescriptor.self)
                guard e.pointee.n_values > 0 else { return nil }
                let first = e.pointee.values[0]
                _ = values
                return .enumValue(name: String(cString: first.name), number: Int32(first.value))
            case .uint32, .uint64, .fixed32, .fixed64: return .uint(0)
            default: return .int(0)
            }
        }
        switch kind {
        case .int32, .sint32, .sfixed32: return .int(Int64(p.load(as: Int32.self)))
        case .int64, .sint64, .sfixed64: return .int(p.load(as: Int64.self))
        case .uint32, .fixed32: return .uint(UInt64(p.load(as: UInt32.self)))
        case .uint64, .fixed64: return .uint(p.load(as: UInt64.self))
        case .float: return .double(Double(p.load(as: Float.self)))
        case .double: return .double(p.load(as: Double.self))
        case .bool: return .bool(p.load(as: Int32.self) != 0)
        case .string: return .string(String(cString: p.assumingMemoryBound(to: CChar.self)))
        case .enumeration(let values):
            let n = p.load(as: Int32.self)
            return .enumValue(name: values.first { $0.value == n }?.key ?? String(n), number: n)
        case .bytes, .message: return nil
        }
    }
}
