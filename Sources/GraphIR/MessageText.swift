/// Text taken from an input file (a layer or blob name, a token, a value) as
/// it may appear inside an error message or a table: control characters and
/// other invisible ones escaped (`\n`, `\u{1B}`), and anything longer than
/// `limit` characters cut in the middle with the total length noted, so an
/// 8 MB name in a prototxt gives a one-line message of a few hundred bytes.
///
///     "layer '\(name.clippedForDisplay())' reads blob ..."
extension StringProtocol {
    public func clippedForDisplay(limit: Int = 80) -> String {
        let count = self.count
        func escaped<S: Sequence>(_ chars: S) -> String where S.Element == Character {
            var out = ""
            for c in chars {
                if c.isASCII, let a = c.asciiValue, a >= 0x20, a != 0x7F { out.append(c); continue }
                if !c.isASCII, !c.unicodeScalars.contains(where: { $0.properties.generalCategory == .control
                    || $0.properties.generalCategory == .format || $0.properties.generalCategory == .lineSeparator
                    || $0.properties.generalCategory == .paragraphSeparator }) { out.append(c); continue }
                switch c {
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                default:
                    for u in c.unicodeScalars { out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}" }
                }
            }
            return out
        }
        guard count > limit else { return escaped(self) }
        let head = Swift.max(1, limit * 2 / 3), tail = Swift.max(1, limit - head)
        return escaped(prefix(head)) + "...(\(count) characters)..." + escaped(suffix(tail))
    }
}

/// A list quoted in a message, cut after `limit` entries: "a, b, c and 917 more".
public func listForDisplay(_ items: [String], limit: Int = 20) -> String {
    let shown = items.prefix(limit).map { $0.clippedForDisplay() }.joined(separator: ", ")
    return items.count > limit ? shown + " and \(items.count - limit) more" : shown
}
