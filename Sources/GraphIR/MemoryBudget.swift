#if canImport(Glibc)
import Glibc
#endif

/// The most memory the tool lets one file, image or net claim, checked with
/// overflow-safe arithmetic before anything is allocated, so a header that
/// claims 10^12 elements, a decompression bomb or a legal but enormous shape
/// gives an error naming the file or layer instead of a crash or a swap storm.
///
/// The budget is the machine's physical memory, or `INVERSE_SET_MEMORY_BUDGET`
/// when set (bytes, or with a K, M, G or T suffix: `INVERSE_SET_MEMORY_BUDGET=2G`).
/// It is read once per process.
public enum MemoryBudget {
    public static let bytes: Int = {
        if let raw = getenv("INVERSE_SET_MEMORY_BUDGET"), let v = parse(String(cString: raw)) { return v }
        return physicalMemory ?? (16 << 30)
    }()

    /// Where `bytes` comes from, for messages.
    public static var origin: String {
        getenv("INVERSE_SET_MEMORY_BUDGET") != nil ? "INVERSE_SET_MEMORY_BUDGET" : "the machine's memory"
    }

    static var physicalMemory: Int? {
        #if canImport(Glibc)
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return nil }
        let (b, o) = pages.multipliedReportingOverflow(by: size)
        return o ? Int.max : b
        #else
        return nil
        #endif
    }

    /// "123", "512M", "2G" -> bytes; nil when malformed.
    static func parse(_ text: String) -> Int? {
        var t = Substring(text.trimmingSpaces)
        var unit = 1
        if let last = t.last, let shift = ["K": 10, "M": 20, "G": 30, "T": 40][String(last).uppercased()] {
            unit = 1 << shift
            t = t.dropLast()
        }
        guard let v = Int(t), v > 0 else { return nil }
        let (b, o) = v.multipliedReportingOverflow(by: unit)
        return o ? nil : b
    }

    /// The byte size of `count` elements of `elementSize` bytes each, or nil
    /// on overflow (`count` nil: an impossible shape).
    public static func size(count: Int?, elementSize: Int) -> Int? {
        guard let count, count >= 0 else { return nil }
        let (b, o) = count.multipliedReportingOverflow(by: elementSize)
        return o ? nil : b
    }

    /// nil when `bytes` (nil: beyond counting) fits the budget, else the
    /// sentence to put in the caller's error: "<what> needs 4.0 TB, more than
    /// the memory budget of 23.5 GB (the machine's memory; ...)".
    public static func excess(_ bytes: Int?, for what: String) -> String? {
        if let bytes, bytes <= Self.bytes { return nil }
        let need = bytes.map(Self.describe) ?? "more bytes than can be counted"
        return "\(what) needs \(need), more than the memory budget of \(describe(Self.bytes)) (\(origin); "
            + "set INVERSE_SET_MEMORY_BUDGET, e.g. =64G, to change it)"
    }

    /// 1536 -> "1.5 KB", in powers of 1024.
    public static func describe(_ bytes: Int) -> String {
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var v = Double(bytes), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        if u == 0 { return "\(bytes) bytes" }
        let tenths = (v * 10).rounded() / 10
        return "\(tenths) \(units[u])"
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
