import _Differentiation
import Foundation
import Testing
import GraphIR
import Layers
import Runtime
import TestSupport

/// A per-sample layer whose backward pass (to the input and to its learnable
/// values) comes from automatic differentiation: out = [a * sum x^2, sum b_i x_i]
/// with learnable (a, b_1 ... b_k).
@differentiable(reverse)
func quadraticAndLinear(_ x: [Float], _ p: [Float]) -> [Float] {
    var square: Float = 0
    var linear: Float = 0
    for i in 0..<withoutDerivative(at: x.count) {
        square = square + x[i] * x[i]
        linear = linear + p[i + 1] * x[i]
    }
    return [p[0] * square, linear]
}

struct DifferentiableLayerTests {
    func registry() throws -> LayerRegistry {
        let r = try builtinRegistry()
        try r.registerDifferentiable("QuadLin", origin: "test") { ctx in
            let features = ctx.inputShapes[0].count(from: 1)
            var filler = ParamMessage()
            filler.set("type", .string("gaussian"))
            filler.set("std", .double(0.5))
            return DifferentiableLayerSpec(outputShape: { _ in Shape([2]) }, parameterCount: features + 1,
                                           parameterFiller: filler, function: quadraticAndLinear)
        }
        return r
    }

    @Test func forwardMatchesTheFunction() throws {
        let net = try singleLayerNet("type: \"QuadLin\"", inputShapes: [[2, 3]], registry: try registry())
        let p = net.layers[1].parameters[0].array
        let x = Tensor(shape: [2, 3], values: [1, -2, 0.5, 3, 0, -1])
        try net.forward(["data": x])
        let y = try net.blob("out")!.array
        for s in 0..<2 {
            let xs = Array(x.array[s * 3..<(s + 1) * 3])
            let square = xs.map { $0 * $0 }.reduce(0, +)
            let linear = zip(xs, p.dropFirst()).map { $0 * $1 }.reduce(0, +)
            #expect(abs(y[s * 2] - p[0] * square) <= 1e-5 && abs(y[s * 2 + 1] - linear) <= 1e-5)
        }
    }

    @Test func finiteDifferenceGradientOfInputAndParameters() throws {
        let failures = try checkLayerGradients("type: \"QuadLin\"", inputShapes: [[3, 4]], registry: try registry())
        #expect(failures.isEmpty, "\(failures)")
    }
}
