/// The shape of a blob: Caffe's N-d shape, outermost first (N, C, H, W, ...).
///
/// A rank-0 shape (`[]`) is a scalar such as a loss; its `count` is 1.
public struct Shape: Hashable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }

    public var rank: Int { dims.count }
    /// Number of elements: the product of all dims (1 for a scalar).
    public var count: Int { dims.reduce(1, *) }
    public subscript(i: Int) -> Int {
        get { dims[i] }
        set { dims[i] = newValue }
    }

    /// The element count, or nil when a dim is negative or the product is
    /// beyond what memory could hold (2^40 elements): a shape from a
    /// malformed file must be rejected before anything multiplies it.
    public var checkedCount: Int? {
        var n = 1
        for d in dims {
            guard d >= 0, d <= 1 << 40 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o, p <= 1 << 40 else { return nil }
            n = p
        }
        return n
    }

    /// Product of dims in `start..<end` (Caffe's `count(start, end)`).
    public func count(from start: Int, to end: Int? = nil) -> Int {
        let e = end ?? rank
        guard start < e else { return 1 }
        return dims[start..<e].reduce(1, *)
    }

    /// Caffe's `CanonicalAxisIndex`: a negative axis counts from the end.
    /// Returns nil when the axis is out of range.
    public func canonicalAxis(_ axis: Int) -> Int? {
        let a = axis < 0 ? axis + rank : axis
        return (a >= 0 && a < rank) ? a : nil
    }

    /// Caffe's legacy accessors: dims are matched from the end for blobs of
    /// rank <= 4 (`num` is dims[0] of a 4-d blob, 1 when absent).
    public func legacy(_ index: Int) -> Int {
        let i = index - (4 - rank)
        return (i >= 0 && i < rank) ? dims[i] : 1
    }

    public var description: String {
        dims.isEmpty ? "()" : dims.map(String.init).joined(separator: "x")
    }
}
