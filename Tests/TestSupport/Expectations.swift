import GraphIR
import Runtime
import Testing

/// A tensor of N(0, 1) values (plus `offset`), reproducible from `seed`.
public func randomTensor(_ shape: Shape, seed: UInt64, offset: Float = 0) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let t = Tensor(shape: shape)
    for i in 0..<t.count { t[i] = rng.gaussian() + offset }
    return t
}

/// Runs `checkLayerGradients` and records one issue listing the first failures.
public func expectGradients(_ text: String, _ shapes: [Shape], seed: UInt64 = 1, registry: LayerRegistry? = nil,
                            kink: Float? = nil, kinkRange: Float = -1, positive: Bool = false,
                            outputs: Int = 1, checkParams: Bool = true, checkInputs: [Int]? = nil,
                            inputs: [Tensor]? = nil, threshold: Double = 1e-3,
                            convolution: ConvolutionAlgorithm = .automatic, stepsize: Double = 1e-2,
                            sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    let failures = try checkLayerGradients(text, inputShapes: shapes, seed: seed, registry: registry,
                                           stepsize: stepsize, threshold: threshold,
                                           kink: kink, kinkRange: kinkRange, checkInputs: checkInputs,
                                           positiveInputs: positive, outputs: outputs, checkParams: checkParams,
                                           inputs: inputs, convolution: convolution)
    #expect(failures.isEmpty, "\(text) \(shapes): \(failures.prefix(5).joined(separator: "; ")) (\(failures.count) failures)",
            sourceLocation: sourceLocation)
}

/// `ours` equals `reference` within `tol` in `relativeError`'s measure
/// (max difference over max(1, max |reference|)); a count mismatch fails.
public func expectClose(_ ours: Tensor, _ reference: [Float], _ what: String, tol: Double = 1e-5,
                        sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    expectClose(ours.array, reference, what, tol: tol, sourceLocation: sourceLocation)
}

public func expectClose(_ ours: [Float], _ reference: [Float], _ what: String, tol: Double = 1e-5,
                        sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    guard ours.count == reference.count else {
        Issue.record("\(what): \(ours.count) values, reference \(reference.count)", sourceLocation: sourceLocation)
        return
    }
    let err = relativeError(ours, reference)
    #expect(err <= tol, "\(what): relative error \(err)", sourceLocation: sourceLocation)
}

/// Each value of `ours` within `tol * max(1, |r|)` of its double-precision
/// reference `r`; a count mismatch fails.
public func expectClose(_ ours: [Float], _ reference: [Double], _ what: String, tol: Double = 2e-5,
                        sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    guard ours.count == reference.count else {
        Issue.record("\(what): \(ours.count) values, reference \(reference.count)", sourceLocation: sourceLocation)
        return
    }
    for (i, (g, r)) in zip(ours, reference).enumerated() where !(abs(Double(g) - r) <= tol * max(1, abs(r))) {
        Issue.record("\(what): [\(i)] is \(g), reference \(r) (tolerance \(tol))", sourceLocation: sourceLocation)
        return
    }
}

/// `body` throws an error whose description contains every one of `phrases`
/// (so a test of one refusal does not pass on another error).
public func expectError(_ phrases: String..., sourceLocation: Testing.SourceLocation = #_sourceLocation,
                        _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error mentioning \(phrases), but nothing was thrown", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        for p in phrases where !text.contains(p) {
            Issue.record("the error does not mention \"\(p)\": \(text)", sourceLocation: sourceLocation)
        }
    }
}
