import Foundation

/// Locations of the project's test data, found from this source file so tests
/// run from any working directory.
public enum Paths {
    /// The repository root.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }   // Tests/TestSupport/Paths.swift
        return url.path
    }()
    public static var fixtures: String { root + "/Tests/Fixtures/caffe" }
    public static var models: String { root + "/Models" }
    public static func fixture(_ name: String) -> String { fixtures + "/" + name }
}

/// max|a - b| / max(1, max|b|): the fixtures' relative error measure.
public func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "size mismatch \(a.count) vs \(b.count)")
    var maxDiff = 0.0, maxRef = 0.0
    for i in a.indices {
        maxDiff = max(maxDiff, Double(abs(a[i] - b[i])))
        if a[i].isNaN != b[i].isNaN { return .infinity }
        maxRef = max(maxRef, Double(abs(b[i])))
    }
    return maxDiff / max(1, maxRef)
}

/// max|a - b| / max|b|: relative to the reference's own scale, which
/// `relativeError`'s floor of 1 hides when values are small (deep nets'
/// input gradients).
public func scaledError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "size mismatch \(a.count) vs \(b.count)")
    var maxDiff = 0.0, maxRef = 0.0
    for i in a.indices {
        if a[i].isNaN != b[i].isNaN { return .infinity }
        maxDiff = max(maxDiff, Double(abs(a[i] - b[i])))
        maxRef = max(maxRef, Double(abs(b[i])))
    }
    return maxRef == 0 ? (maxDiff == 0 ? 0 : .infinity) : maxDiff / maxRef
}
