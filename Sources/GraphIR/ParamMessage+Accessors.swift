/// A parameter that a layer cannot use: wrong type, out of range, missing.
/// The runtime adds the layer name when it reports it.
public struct ParamError: Error, CustomStringConvertible, Sendable {
    public var field: String
    public var message: String
    public var location: SourceLocation?
    public init(field: String, message: String, location: SourceLocation? = nil) {
        self.field = field; self.message = message; self.location = location
    }
    public var description: String {
        let at = location.map { "\($0): " } ?? ""
        return "\(at)field '\(field)': \(message)"
    }
}

/// Typed reads of a parameter tree. Each has a form that falls back to the
/// schema default (built-in fields) and one with an explicit default (custom
/// fields of plugin layers, which have no schema):
///
///     let order = try p.ints("order")                 // repeated
///     let scale = try p.float("scale", default: 1)    // optional with default
///     let axis  = try p.int("axis")                   // schema default
extension ParamMessage {
    private func fail(_ name: String, _ what: String) -> ParamError {
        ParamError(field: name, message: what, location: location(of: name))
    }

    private func toInt(_ v: ParamValue, _ name: String) throws -> Int {
        guard let i = v.asInt64, let r = Int(exactly: i) else {
            throw fail(name, "expected an integer, got \(v)")
        }
        return r
    }
    private func toDouble(_ v: ParamValue, _ name: String) throws -> Double {
        guard let d = v.asDouble else { throw fail(name, "expected a number, got \(v)") }
        return d
    }
    private func toBool(_ v: ParamValue, _ name: String) throws -> Bool {
        switch v {
        case .bool(let b): return b
        case .int(let i) where i == 0 || i == 1: return i == 1
        case .uint(let i) where i == 0 || i == 1: return i == 1
        case .identifier(let s):
            switch s { case "true", "True", "t": return true
                       case "false", "False", "f": return false
                       default: break }
        default: break
        }
        throw fail(name, "expected true or false, got \(v)")
    }

    private func required(_ name: String) throws -> ParamValue {
        guard let v = valueOrDefault(name) else {
            throw fail(name, "is required but not set")
        }
        return v
    }

    public func int(_ name: String) throws -> Int { try toInt(try required(name), name) }
    public func int(_ name: String, default d: Int) throws -> Int {
        guard let v = valueOrDefault(name) else { return d }
        return try toInt(v, name)
    }
    public func ints(_ name: String) throws -> [Int] { try values(name).map { try toInt($0, name) } }

    public func float(_ name: String) throws -> Float { Float(try toDouble(try required(name), name)) }
    public func float(_ name: String, default d: Float) throws -> Float {
        guard let v = valueOrDefault(name) else { return d }
        return Float(try toDouble(v, name))
    }
    public func double(_ name: String, default d: Double) throws -> Double {
        guard let v = valueOrDefault(name) else { return d }
        return try toDouble(v, name)
    }
    public func floats(_ name: String) throws -> [Float] {
        var out: [Float] = []
        for v in values(name) {
            if case .floatArray(let a) = v { out += a } else { out.append(Float(try toDouble(v, name))) }
        }
        return out
    }

    public func bool(_ name: String) throws -> Bool { try toBool(try required(name), name) }
    public func bool(_ name: String, default d: Bool) throws -> Bool {
        guard let v = valueOrDefault(name) else { return d }
        return try toBool(v, name)
    }

    public func string(_ name: String, default d: String = "") throws -> String {
        guard let v = valueOrDefault(name) else { return d }
        switch v {
        case .string(let s), .identifier(let s): return s
        default: throw fail(name, "expected a string, got \(v)")
        }
    }
    public func strings(_ name: String) throws -> [String] {
        try values(name).map {
            switch $0 {
            case .string(let s), .identifier(let s): return s
            default: throw fail(name, "expected a string, got \($0)")
            }
        }
    }

    /// An enum field by name (`"MAX"`), falling back to the schema default.
    public func enumName(_ name: String, default d: String? = nil) throws -> String {
        guard let v = valueOrDefault(name) else {
            if let d { return d }
            throw fail(name, "is required but not set")
        }
        switch v {
        case .enumValue(let n, _), .identifier(let n), .string(let n): return n
        default: throw fail(name, "expected an enum name, got \(v)")
        }
    }

    /// Throws unless `value` is in `range`; for checks such as `num_output > 0`.
    public func check(_ name: String, _ ok: Bool, _ what: @autoclosure () -> String) throws {
        if !ok { throw fail(name, what()) }
    }
}
