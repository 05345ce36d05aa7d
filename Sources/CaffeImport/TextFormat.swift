import GraphIR

/// Parser of the protobuf text format (`.prototxt`), driven by a schema.
///
/// Covers what Caffe files use and the rest of the format: `name: value`,
/// `name { ... }` / `name: { ... }` / `name < ... >`, repeated fields, the
/// list form `name: [1, 2]`, enums by name or number, `#` comments, single or
/// double quoted strings with C escapes and adjacent-string concatenation,
/// decimal/hex/octal integers, floats with exponents or `f` suffix, `inf`,
/// `nan`, and optional `,` / `;` separators.
///
/// With a schema, field names, types and enum names are checked and values
/// are typed. Fields of a message listed in `openMessages` (LayerParameter)
/// that the schema does not know are kept untyped, for layer plugins.
public struct TextFormatParser {
    public let file: String
    private var lexer: Lexer
    /// Message types in which unknown fields are kept rather than rejected.
    public var openMessages: Set<String> = []

    public init(text: String, file: String) {
        self.file = file
        self.lexer = Lexer(Array(text.utf8), file: file)
    }

    /// Parses a whole file as one message of `schema` (nil: untyped).
    public mutating func parseMessage(schema: ParamSchema?) throws -> ParamMessage {
        let m = try parseFields(schema: schema, untyped: schema == nil, closing: nil,
                                location: SourceLocation(file: file, line: 1, column: 1), depth: 0)
        return m
    }

    // MARK: - Grammar

    /// Messages may nest this deep, as in protobuf's own parsers; deeper input
    /// (`layer { layer { ...` thousands of levels) would overflow the stack.
    public static let maxDepth = 100

    private mutating func parseFields(schema: ParamSchema?, untyped: Bool, closing: UInt8?,
                                      location: SourceLocation, depth: Int) throws -> ParamMessage {
        guard depth <= Self.maxDepth else {
            throw ImportError.syntax(location, "messages are nested more than \(Self.maxDepth) deep; Caffe files never nest this far (is a closing brace missing?)")
        }
        var msg = ParamMessage(schema: untyped ? nil : schema, location: location)
        while true {
            let tok = try lexer.next()
            switch tok.kind {
            case .end:
                if let c = closing {
                    throw ImportError.syntax(tok.location, "unexpected end of file: missing '\(Character(UnicodeScalar(c)))' to close the message opened at \(location.line):\(location.column)")
                }
                return msg
            case .symbol(let s) where s == closing:
                return msg
            case .symbol(UInt8(ascii: ",")), .symbol(UInt8(ascii: ";")):
                continue
            case .identifier(let name):
                try parseField(name: name, at: tok.location, into: &msg, schema: untyped ? nil : schema, depth: depth)
            case .symbol(UInt8(ascii: "[")):
                throw ImportError.syntax(tok.location, "extension and Any fields ([...]) are not supported in Caffe files")
            default:
                throw ImportError.syntax(tok.location, "expected a field name, found \(tok.kind)")
            }
        }
    }

    private mutating func parseField(name: String, at loc: SourceLocation, into msg: inout ParamMessage,
                                     schema: ParamSchema?, depth: Int) throws {
        var field: ParamSchema.Field? = nil
        var untypedField = schema == nil
        if let schema {
            if let f = schema.field(name) {
                field = f
            } else if openMessages.contains(schema.name) {
                untypedField = true
            } else {
                throw ImportError.syntax(loc, "unknown field '\(name.clippedForDisplay())' in \(Self.shortName(schema.name))\(Self.suggestion(name, schema.order))")
            }
        }
        // Optional ':' then a value, a message, or a list.
        var tok = try lexer.peek()
        var sawColon = false
        if case .symbol(UInt8(ascii: ":")) = tok.kind { _ = try lexer.next(); sawColon = true; tok = try lexer.peek() }
        if case .symbol(let s) = tok.kind, s == UInt8(ascii: "{") || s == UInt8(ascii: "<") {
            if let f = field, f.kind != .message {
                throw ImportError.syntax(tok.location, "field '\(name.clippedForDisplay())' is a \(Self.kindName(f.kind)), not a message; write '\(name.clippedForDisplay()): value'")
            }
            _ = try lexer.next()
            let close = s == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: ">")
            let sub = try parseFields(schema: field?.messageSchema(), untyped: untypedField, closing: close, location: loc,
                                      depth: depth + 1)
            try append(name, .message(sub), at: loc, field: field, into: &msg)
            return
        }
        if let f = field, f.kind == .message {
            throw ImportError.syntax(tok.location, "field '\(name.clippedForDisplay())' is a message; write '\(name.clippedForDisplay()) { ... }'")
        }
        if !sawColon {
            throw ImportError.syntax(tok.location, "expected ':' after field name '\(name.clippedForDisplay())', found \(tok.kind)")
        }
        if case .symbol(UInt8(ascii: "[")) = tok.kind {
            _ = try lexer.next()
            if case .symbol(UInt8(ascii: "]")) = try lexer.peek().kind { _ = try lexer.next(); return }
            while true {
                let v = try lexer.next()
                if case .symbol(UInt8(ascii: "{")) = v.kind {
                    if let f = field, f.kind != .message {
                        throw ImportError.syntax(v.location, "field '\(name.clippedForDisplay())' is a \(Self.kindName(f.kind)), not a message")
                    }
                    let sub = try parseFields(schema: field?.messageSchema(), untyped: untypedField,
                                              closing: UInt8(ascii: "}"), location: v.location, depth: depth + 1)
                    try append(name, .message(sub), at: v.location, field: field, into: &msg)
                } else {
                    try append(name, try scalar(v, field: field, name: name), at: v.location, field: field, into: &msg)
                }
                let sep = try lexer.next()
                if case .symbol(UInt8(ascii: "]")) = sep.kind { return }
                guard case .symbol(UInt8(ascii: ",")) = sep.kind else {
                    throw ImportError.syntax(sep.location, "expected ',' or ']' in the list of '\(name.clippedForDisplay())', found \(sep.kind)")
                }
            }
        }
        let v = try lexer.next()
        try append(name, try scalar(v, field: field, name: name), at: v.location, field: field, into: &msg)
    }

    private func append(_ name: String, _ value: ParamValue, at loc: SourceLocation,
                        field: ParamSchema.Field?, into msg: inout ParamMessage) throws {
        if let f = field, !f.repeated, msg.has(name) {
            // protobuf's text parser rejects a non-repeated field given twice.
            throw ImportError.syntax(loc, "field '\(name.clippedForDisplay())' is not repeated but appears twice in \(Self.shortName(msg.typeName))")
        }
        msg.append(name, value)
        msg.fields[msg.fields.count - 1].location = loc
    }

    /// Converts one scalar token to the field's type.
    private mutating func scalar(_ tok: Token, field: ParamSchema.Field?, name: String) throws -> ParamValue {
        // Adjacent strings concatenate.
        if case .string(var bytes) = tok.kind {
            while case .string(let more) = try lexer.peek().kind { bytes += more; _ = try lexer.next() }
            guard let f = field else { return .string(String(decoding: bytes, as: UTF8.self)) }
            switch f.kind {
            case .string: return .string(String(decoding: bytes, as: UTF8.self))
            case .bytes: return .bytes(bytes)
            default: throw ImportError.syntax(tok.location, "field '\(name.clippedForDisplay())' is a \(Self.kindName(f.kind)); a quoted string does not fit")
            }
        }
        let text: String
        switch tok.kind {
        case .identifier(let s): text = s
        case .number(let s): text = s
        default: throw ImportError.syntax(tok.location, "expected a value for '\(name.clippedForDisplay())', found \(tok.kind)")
        }
        guard let f = field else { return Self.untyped(text) }
        func bad(_ what: String) -> ImportError {
            ImportError.syntax(tok.location, "field '\(name.clippedForDisplay())' expects \(what), got '\(text.clippedForDisplay())'")
        }
        switch f.kind {
        case .int32, .sint32, .sfixed32:
            guard let v = Self.parseInt(text), v >= Int64(Int32.min), v <= Int64(Int32.max) else { throw bad("a 32-bit integer") }
            return .int(v)
        case .int64, .sint64, .sfixed64:
            guard let v = Self.parseInt(text) else { throw bad("an integer") }
            return .int(v)
        case .uint32, .fixed32:
            guard let v = Self.parseInt(text), v >= 0, v <= Int64(UInt32.max) else { throw bad("a non-negative 32-bit integer") }
            return .uint(UInt64(v))
        case .uint64, .fixed64:
            if let v = Self.parseUInt(text) { return .uint(v) }
            throw bad("a non-negative integer")
        case .float, .double:
            guard let v = Self.parseDouble(text) else { throw bad("a number") }
            return .double(v)
        case .bool:
            switch text {
            case "true", "True", "t", "1": return .bool(true)
            case "false", "False", "f", "0": return .bool(false)
            default: throw bad("true or false")
            }
        case .enumeration(let values):
            if let n = values[text] { return .enumValue(name: text, number: n) }
            if let i = Self.parseInt(text), let hit = values.first(where: { Int64($0.value) == i }) {
                return .enumValue(name: hit.key, number: hit.value)
            }
            let names = values.sorted { $0.value < $1.value }.map(\.key)
            throw ImportError.syntax(tok.location, "'\(text.clippedForDisplay())' is not a value of '\(name.clippedForDisplay())'; use one of: \(names.joined(separator: ", "))")
        case .string, .bytes:
            throw bad("a quoted string")
        case .message:
            throw bad("a message in braces")
        }
    }

    // MARK: - Literals

    static func untyped(_ text: String) -> ParamValue {
        if let i = parseInt(text) { return .int(i) }
        if let u = parseUInt(text) { return .uint(u) }
        if let first = text.utf8.first, first == UInt8(ascii: "-") || first == UInt8(ascii: ".") || (first >= 48 && first <= 57),
           let d = parseDouble(text) { return .double(d) }
        if text == "true" || text == "True" { return .bool(true) }
        if text == "false" || text == "False" { return .bool(false) }
        return .identifier(text)
    }

    static func parseInt(_ s: String) -> Int64? {
        var t = Substring(s), neg = false
        if t.hasPrefix("-") { neg = true; t = t.dropFirst() }
        guard !t.isEmpty else { return nil }
        let mag: UInt64?
        if t.hasPrefix("0x") || t.hasPrefix("0X") { mag = UInt64(t.dropFirst(2), radix: 16) }
        else if t.count > 1 && t.hasPrefix("0") { mag = UInt64(t.dropFirst(), radix: 8) }
        else { mag = UInt64(t, radix: 10) }
        guard let m = mag else { return nil }
        if neg { return m <= UInt64(Int64.max) + 1 ? (m == UInt64(Int64.max) + 1 ? Int64.min : -Int64(m)) : nil }
        return m <= UInt64(Int64.max) ? Int64(m) : nil
    }
    static func parseUInt(_ s: String) -> UInt64? {
        if s.hasPrefix("0x") || s.hasPrefix("0X") { return UInt64(s.dropFirst(2), radix: 16) }
        return UInt64(s, radix: 10)
    }
    static func parseDouble(_ s: String) -> Double? {
        var t = s
        switch t.lowercased() {
        case "inf", "infinity", "+inf": return .infinity
        case "-inf", "-infinity": return -.infinity
        case "nan", "-nan": return .nan
        default: break
        }
        if t.hasSuffix("f") || t.hasSuffix("F") { t.removeLast() }
        if let i = parseInt(t) { return Double(i) }
        return Double(t)
    }

    static func kindName(_ k: ParamSchema.Kind) -> String {
        switch k {
        case .float, .double: return "number"
        case .bool: return "bool"
        case .string: return "string"
        case .bytes: return "bytes field"
        case .enumeration: return "enum"
        case .message: return "message"
        default: return "integer"
        }
    }
    static func shortName(_ full: String) -> String {
        full.split(separator: ".").last.map(String.init) ?? full
    }
    /// " (did you mean 'kernel_size'?)" for a near miss, else "".
    static func suggestion(_ name: String, _ candidates: [String]) -> String { didYouMean(name, candidates) }
}

// MARK: - Lexer

struct Token {
    enum Kind: CustomStringConvertible {
        case identifier(String), number(String), string([UInt8]), symbol(UInt8), end
        var description: String {
            switch self {
            case .identifier(let s): return "'\(s.clippedForDisplay())'"
            case .number(let s): return "number \(s.clippedForDisplay())"
            case .string: return "a quoted string"
            case .symbol(let c): return "'\(Character(UnicodeScalar(c)))'"
            case .end: return "end of file"
            }
        }
    }
    var kind: Kind
    var location: SourceLocation
}

struct Lexer {
    let bytes: [UInt8]
    let file: String
    var pos = 0, line = 1, lineStart = 0
    var peeked: Token?

    init(_ bytes: [UInt8], file: String) {
        self.bytes = bytes; self.file = file
        // Skip a UTF-8 byte order mark.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { pos = 3; lineStart = 3 }
    }

    mutating func peek() throws -> Token {
        if let p = peeked { return p }
        let t = try lex()
        peeked = t
        return t
    }
    mutating func next() throws -> Token {
        if let p = peeked { peeked = nil; return p }
        return try lex()
    }

    private var here: SourceLocation { SourceLocation(file: file, line: line, column: pos - lineStart + 1) }

    private mutating func lex() throws -> Token {
        // whitespace and comments
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\n") { pos += 1; line += 1; lineStart = pos }
            else if c == 32 || c == 9 || c == 13 || c == 11 || c == 12 { pos += 1 }
            else if c == UInt8(ascii: "#") { while pos < bytes.count && bytes[pos] != UInt8(ascii: "\n") { pos += 1 } }
            else { break }
        }
        let loc = here
        guard pos < bytes.count else { return Token(kind: .end, location: loc) }
        let c = bytes[pos]
        func isIdent(_ b: UInt8) -> Bool {
            (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 95
        }
        if (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 {
            let start = pos
            while pos < bytes.count && isIdent(bytes[pos]) { pos += 1 }
            return Token(kind: .identifier(String(decoding: bytes[start..<pos], as: UTF8.self)), location: loc)
        }
        if (c >= 48 && c <= 57) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") {
            let start = pos
            pos += 1
            // "-inf", "-nan" are words after a sign
            while pos < bytes.count {
                let b = bytes[pos]
                if isIdent(b) || b == UInt8(ascii: ".") { pos += 1 }
                else if (b == UInt8(ascii: "-") || b == UInt8(ascii: "+")) && (bytes[pos - 1] | 0x20) == UInt8(ascii: "e")
                            && !(start + 1 < bytes.count && (bytes[start + 1] | 0x20) == UInt8(ascii: "x")) { pos += 1 }
                else { break }
            }
            var text = String(decoding: bytes[start..<pos], as: UTF8.self)
            if text.hasPrefix("+") { text.removeFirst() }
            if text == "-" || text == "." || text.isEmpty {
                throw ImportError.syntax(loc, "stray '\(Character(UnicodeScalar(c)))'")
            }
            return Token(kind: .number(text), location: loc)
        }
        if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
            return Token(kind: .string(try lexString(quote: c, at: loc)), location: loc)
        }
        let symbols: Set<UInt8> = Set("{}<>:[],;".utf8)
        if symbols.contains(c) { pos += 1; return Token(kind: .symbol(c), location: loc) }
        throw ImportError.syntax(loc, "unexpected character '\(Character(UnicodeScalar(c)))'")
    }

    private mutating func lexString(quote: UInt8, at loc: SourceLocation) throws -> [UInt8] {
        pos += 1
        var out: [UInt8] = []
        while true {
            guard pos < bytes.count, bytes[pos] != UInt8(ascii: "\n") else {
                throw ImportError.syntax(loc, "string is not closed on this line (missing \(Character(UnicodeScalar(quote))))")
            }
            let c = bytes[pos]; pos += 1
            if c == quote { return out }
            guard c == UInt8(ascii: "\\") else { out.append(c); continue }
            guard pos < bytes.count else { throw ImportError.syntax(loc, "string ends in a backslash") }
            let e = bytes[pos]; pos += 1
            switch e {
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "a"): out.append(7)
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "v"): out.append(11)
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "?"): out.append(e)
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
                var v = 0, n = 0
                while n < 2, pos < bytes.count, let d = Self.hexDigit(bytes[pos]) { v = v * 16 + d; pos += 1; n += 1 }
                guard n > 0 else { throw ImportError.syntax(here, "\\x needs hex digits") }
                out.append(UInt8(v))
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var v = Int(e - 48), n = 1
                while n < 3, pos < bytes.count, bytes[pos] >= 48, bytes[pos] <= 55 { v = v * 8 + Int(bytes[pos] - 48); pos += 1; n += 1 }
                guard v < 256 else { throw ImportError.syntax(here, "octal escape out of range") }
                out.append(UInt8(v))
            default:
                throw ImportError.syntax(here, "unknown escape '\\\(Character(UnicodeScalar(e)))' in string")
            }
        }
    }

    static func hexDigit(_ b: UInt8) -> Int? {
        switch b {
        case 48...57: return Int(b - 48)
        case 97...102: return Int(b - 87)
        case 65...70: return Int(b - 55)
        default: return nil
        }
    }
}
