/// A position in a text file, for error messages ("deploy.prototxt:12:5").
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) {
        self.file = file; self.line = line; self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// One value of a parameter field.
///
/// The importer produces typed values for fields that the schema knows, and
/// untyped ones (`.identifier`, numbers as written) for fields of custom layers
/// that it does not know. The accessors on `ParamMessage` convert between the
/// numeric cases so a plugin need not care which it got.
public indirect enum ParamValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case bool(Bool)
    case string(String)
    case bytes([UInt8])
    /// An enum value of the schema, by name and number.
    case enumValue(name: String, number: Int32)
    /// A bare word of an unknown (custom) field: an enum name, `true`, ...
    case identifier(String)
    case message(ParamMessage)
    /// A packed run of floats as decoded from a caffemodel (blob data), kept
    /// as one array rather than millions of values.
    case floatArray([Float])

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .uint(let v): return String(v)
        case .double(let v): return String(v)
        case .bool(let v): return String(v)
        case .string(let s): return "\"\(s)\""
        case .bytes(let b): return "<\(b.count) bytes>"
        case .enumValue(let n, _): return n
        case .identifier(let s): return s
        case .message(let m): return "{ \(m.fields.map { "\($0.name): \($0.value)" }.joined(separator: " ")) }"
        case .floatArray(let a): return "<\(a.count) floats>"
        }
    }

    /// The value as a Double when it is numeric (or a bool).
    public var asDouble: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .uint(let v): return Double(v)
        case .double(let v): return v
        case .bool(let b): return b ? 1 : 0
        case .identifier(let s):
            switch s.lowercased() {
            case "inf", "infinity": return .infinity
            case "-inf", "-infinity": return -.infinity
            case "nan": return .nan
            default: return nil
            }
        default: return nil
        }
    }

    /// The value as an exact integer when it is one.
    public var asInt64: Int64? {
        switch self {
        case .int(let v): return v
        case .uint(let v): return v <= UInt64(Int64.max) ? Int64(v) : nil
        case .double(let v): return (v.rounded() == v && abs(v) < 9.2e18) ? Int64(v) : nil
        case .bool(let b): return b ? 1 : 0
        case .enumValue(_, let n): return Int64(n)
        default: return nil
        }
    }
}

/// The static description of a message type: its fields by name, with their
/// numbers, kinds and defaults. Built by the importer from the protobuf-c
/// descriptors, so it always matches the compiled schema; the writer uses it
/// to encode, the accessors use it for defaults.
public final class ParamSchema: @unchecked Sendable {
    public enum Kind: Sendable, Equatable {
        case int32, int64, uint32, uint64, sint32, sint64, fixed32, fixed64, sfixed32, sfixed64
        case float, double, bool, string, bytes
        case enumeration([String: Int32])
        case message
    }
    public struct Field: Sendable {
        public let name: String
        public let number: Int
        public let kind: Kind
        public let repeated: Bool
        public let packed: Bool
        public let defaultValue: ParamValue?
        /// Resolves the schema of a message field (lazily: schemas are recursive).
        public let messageSchema: (@Sendable () -> ParamSchema?)

        public init(name: String, number: Int, kind: Kind, repeated: Bool, packed: Bool,
                    defaultValue: ParamValue?, messageSchema: @escaping @Sendable () -> ParamSchema?) {
            self.name = name; self.number = number; self.kind = kind; self.repeated = repeated
            self.packed = packed; self.defaultValue = defaultValue; self.messageSchema = messageSchema
        }
    }

    public let name: String
    public private(set) var fields: [String: Field] = [:]
    public private(set) var fieldsByNumber: [Int: Field] = [:]
    /// Field names in declaration order, for stable output.
    public private(set) var order: [String] = []

    public init(name: String) { self.name = name }

    public func add(_ field: Field) {
        fields[field.name] = field
        fieldsByNumber[field.number] = field
        order.append(field.name)
    }
    public func field(_ name: String) -> Field? { fields[name] }
}

/// One field occurrence in a message: a repeated field occurs several times.
public struct ParamField: Sendable, Equatable {
    public var name: String
    public var value: ParamValue
    public var location: SourceLocation?
    public init(name: String, value: ParamValue, location: SourceLocation? = nil) {
        self.name = name; self.value = value; self.location = location
    }
}

/// A generic protobuf-style message: the fields that were set, in order, plus
/// the schema (when known) that supplies defaults for unset fields.
///
/// Layer parameters live in the graph as these trees, whether the schema knows
/// them (`convolution_param`) or not (`permute_param` of a plugin layer).
public struct ParamMessage: Sendable, Equatable {
    public var fields: [ParamField]
    public var schema: ParamSchema?
    public var location: SourceLocation?

    public init(fields: [ParamField] = [], schema: ParamSchema? = nil, location: SourceLocation? = nil) {
        self.fields = fields; self.schema = schema; self.location = location
    }

    public static func == (a: ParamMessage, b: ParamMessage) -> Bool {
        a.fields == b.fields && a.schema?.name == b.schema?.name
    }

    public var typeName: String { schema?.name ?? "" }

    /// Every value of field `name`, in order (empty when unset).
    public func values(_ name: String) -> [ParamValue] {
        fields.compactMap { $0.name == name ? $0.value : nil }
    }
    /// The last value of `name` that was set (protobuf's rule for a repeated
    /// occurrence of an optional scalar), or nil.
    public func value(_ name: String) -> ParamValue? {
        fields.last(where: { $0.name == name })?.value
    }
    public func has(_ name: String) -> Bool { fields.contains { $0.name == name } }
    public func location(of name: String) -> SourceLocation? {
        fields.last(where: { $0.name == name })?.location ?? location
    }

    public mutating func set(_ name: String, _ value: ParamValue) {
        fields.removeAll { $0.name == name }
        fields.append(ParamField(name: name, value: value))
    }
    public mutating func append(_ name: String, _ value: ParamValue) {
        fields.append(ParamField(name: name, value: value))
    }
    public mutating func remove(_ name: String) { fields.removeAll { $0.name == name } }

    /// The value of `name`, or the schema's default when it is unset.
    public func valueOrDefault(_ name: String) -> ParamValue? {
        value(name) ?? schema?.field(name)?.defaultValue
    }

    /// A nested message, or an empty one with the right schema when unset.
    public func message(_ name: String) -> ParamMessage {
        if case .message(let m)? = value(name) { return m }
        return ParamMessage(schema: schema?.field(name)?.messageSchema(), location: location)
    }
    /// All occurrences of a repeated message field.
    public func messages(_ name: String) -> [ParamMessage] {
        values(name).compactMap { if case .message(let m) = $0 { return m } else { return nil } }
    }
}
