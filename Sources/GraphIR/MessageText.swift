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

/// " (did you mean 'kernel_size'?)" when one of `candidates` is a near miss
/// of `name` (an edit distance of at most max(2, a quarter of its length)),
/// else "": for unknown fields, blobs, layer types.
public func didYouMean(_ name: String, _ candidates: [String]) -> String {
    guard name.utf8.count <= 100 else { return "" }   // the distance costs len(name) x len(candidate)
    let best = candidates.filter { $0.utf8.count <= 200 }.map { ($0, editDistance(name, $0)) }.min { $0.1 < $1.1 }
    if let (c, d) = best, d > 0, d <= max(2, name.count / 4) { return " (did you mean '\(c.clippedForDisplay())'?)" }
    return ""
}

/// Levenshtein distance over UTF-8 bytes.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    var prev = Array(0...b.count), cur = prev
    for i in 1...a.count {
        cur[0] = i
        if !b.isEmpty {
            for j in 1...b.count {
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}
