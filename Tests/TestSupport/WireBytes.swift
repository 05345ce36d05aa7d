/// Protobuf wire bytes written by hand, for test files that no protobuf
/// library would produce (mismatched wire types, unpacked runs, repeated
/// singular fields, corrupt lengths):
///
///     var layer = WireBytes()
///     layer.string(1, "conv1")                       // LayerParameter.name
///     var net = WireBytes(); net.message(100, layer)  // NetParameter.layer
public struct WireBytes {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    /// A key: field number and wire type (0 varint, 1 fixed64, 2 length-delimited, 3/4 group, 5 fixed32).
    public mutating func tag(_ field: Int, _ wire: Int) { varint(UInt64(field << 3 | wire)) }

    public mutating func int(_ field: Int, _ v: Int64) { tag(field, 0); varint(UInt64(bitPattern: v)) }
    public mutating func fixed32(_ field: Int, _ v: UInt32) { tag(field, 5); raw32(v) }
    public mutating func float(_ field: Int, _ v: Float) { fixed32(field, v.bitPattern) }
    public mutating func fixed64(_ field: Int, _ v: UInt64) { tag(field, 1); for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(k)))) } }
    public mutating func raw32(_ v: UInt32) { for k in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(k)))) } }
    public mutating func lengthDelimited(_ field: Int, _ body: [UInt8]) { tag(field, 2); varint(UInt64(body.count)); bytes += body }
    public mutating func string(_ field: Int, _ s: String) { lengthDelimited(field, Array(s.utf8)) }
    public mutating func message(_ field: Int, _ m: WireBytes) { lengthDelimited(field, m.bytes) }
    /// A packed run of floats in one record.
    public mutating func packedFloats(_ field: Int, _ v: [Float]) {
        var body = WireBytes()
        for x in v { body.raw32(x.bitPattern) }
        lengthDelimited(field, body.bytes)
    }
    /// A packed run of varints in one record.
    public mutating func packedVarints(_ field: Int, _ v: [Int64]) {
        var body = WireBytes()
        for x in v { body.varint(UInt64(bitPattern: x)) }
        lengthDelimited(field, body.bytes)
    }
    public mutating func append(_ raw: [UInt8]) { bytes += raw }
}
