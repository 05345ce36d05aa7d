import GraphIR

extension CaffeModel {
    /// A message in protobuf text format on one line, as a prototxt holds it:
    /// `name: "conv1" type: "Convolution" convolution_param { num_output: 32 }`.
    /// Reading the text back gives the same message.
    public static func textFormat(_ m: ParamMessage) -> String {
        m.fields.map { field in
            if case .message(let inner) = field.value { return "\(field.name) { \(textFormat(inner)) }" }
            return "\(field.name): \(textValue(field.value))"
        }.joined(separator: " ")
    }

    public static func textValue(_ v: ParamValue) -> String {
        switch v {
        case .int(let x): return String(x)
        case .uint(let x): return String(x)
        case .double(let x):
            if x.isNaN { return "nan" }
            if x.isInfinite { return x < 0 ? "-inf" : "inf" }
            if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
            return "\(x)"
        case .bool(let b): return b ? "true" : "false"
        case .string(let s): return quoted(s)
        case .bytes(let b): return quoted(String(decoding: b, as: UTF8.self))
        case .enumValue(let name, _): return name
        case .identifier(let s): return s
        case .message(let m): return "{ \(textFormat(m)) }"
        case .floatArray(let a): return a.map { textValue(.double(Double($0))) }.joined(separator: ", ")
        }
    }

    public static func quoted(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out + "\""
    }
}
