import GraphIR

/// Everything that can be wrong with a model file, each with the file and the
/// line (text) or byte offset and field path (binary), and what to do.
public enum ImportError: Error, CustomStringConvertible, Sendable {
    /// A prototxt problem at a position: syntax, unknown field, bad value.
    case syntax(SourceLocation, String)
    /// A caffemodel problem at a byte offset inside a field path.
    case binary(file: String, offset: Int, path: String, message: String)
    case file(String, String)
    /// A problem in the network as a whole (names, upgrades, weights).
    case network(file: String, String)
    /// A message that already names its file and position.
    case located(String)

    public var description: String {
        switch self {
        case let .syntax(loc, m): return "\(loc): \(m)"
        case let .binary(file, offset, path, m):
            return "\(file): byte \(offset)\(path.isEmpty ? "" : " (in \(path))"): \(m)"
        case let .file(f, m): return "\(f): \(m)"
        case let .network(f, m): return "\(f): \(m)"
        case let .located(m): return m
        }
    }
}
