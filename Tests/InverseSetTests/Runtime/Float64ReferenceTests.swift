import Foundation
import Testing
import CaffeImport
import GraphIR
import ImageIO
import Layers
import Runtime
import TestSupport

/// The fixture checker's float64 mode (`checkFixture(truth: .float64)`):
/// every real-Caffe case whose layers the float64 reference covers is judged
/// against float64 truth, with ours-vs-Caffe, ours-vs-float64 and
/// Caffe-vs-float64 printed side by side; and deep ReLU chains, where float32
/// rounding alone moves the input gradient.
struct Float64ReferenceTests {
    static let cases: [String] = CaffeFixtureTests.cases.filter { name in
        guard let g = try? CaffeModel.load(prototxt: Paths.fixture(name) + "/net.prototxt") else { return false }
        return g.nodes.allSatisfy { Float64Reference.supportedTypes.contains($0.type) }
    }

    @Test("the reference covers most cases") func coverage() {
        #expect(Self.cases.count >= 40, "\(Self.cases.count) cases")
    }

    @Test("real-Caffe fixtures against float64", arguments: cases)
    func fixtureAgainstFloat64(_ name: String) throws {
        let dir = Paths.fixture(name)
        let graph = try CaffeModel.load(prototxt: dir + "/net.prototxt", weights: CaffeFixtureTests.weightsPath(name))
        var figures: [FixtureFigure] = []
        do {
            try checkFixture(dir: dir, graph: graph, registry: try builtinRegistry(), name: name, truth: .float64, figures: &figures)
        } catch let e as Float64Reference.Unsupported {
            print("float64 \(name): skipped (\(e))")
            return
        }
        for f in figures { print("float64 \(name): \(f)") }
    }

    /// A 20-layer 3x3 convolution + ReLU chain with a residual sum (the shape
    /// of a super-resolution net), He-initialised, 16 channels on 24x24: our
    /// float32 forward and input gradient against float64, with the direct
    /// (im2col, Caffe's arithmetic) and the Winograd convolutions.
    @Test("deep ReLU chain against float64", arguments: [ConvolutionAlgorithm.direct, .winograd])
    func deepChain(_ convolution: ConvolutionAlgorithm) throws {
        var text = "layer { name: \"in\" type: \"Input\" top: \"data\" input_param { shape { dim: 1 dim: 1 dim: 24 dim: 24 } } }\n"
        var bottom = "data"
        for k in 1...20 {
            let out = k == 20 ? 1 : 16
            text += "layer { name: \"conv\(k)\" type: \"Convolution\" bottom: \"\(bottom)\" top: \"conv\(k)\" "
                + "convolution_param { num_output: \(out) kernel_size: 3 pad: 1 weight_filler { type: \"msra\" } "
                + "bias_filler { type: \"constant\" value: 0.01 } } }\n"
            if k < 20 { text += "layer { name: \"relu\(k)\" type: \"ReLU\" bottom: \"conv\(k)\" top: \"conv\(k)\" }\n" }
            bottom = "conv\(k)"
        }
        text += "layer { name: \"sum\" type: \"Eltwise\" bottom: \"conv20\" bottom: \"data\" top: \"out\" }\n"
        let graph = try CaffeModel.buildGraph(try CaffeModel.parseText(text, file: "deep.prototxt"), file: "deep.prototxt")
        let net = try Net(graph: graph, registry: try builtinRegistry(), seed: 3)
        net.context.convolution = convolution
        var rng = SplitMix64(seed: 5)
        let x = Tensor(shape: [1, 1, 24, 24])
        for i in 0..<x.count { x[i] = rng.uniform() }
        let dy = Tensor(shape: [1, 1, 24, 24])
        for i in 0..<dy.count { dy[i] = rng.gaussian() }
        try net.forward(["data": x])
        let outID = try net.resolve("out"), dataID = try net.resolve("data")
        let ours = try #require(net.tensor(outID)).array
        let grad = try #require(try net.backward(seeds: [outID: dy], gradientsFor: [dataID])[dataID]).array

        let reference = try Float64Reference(net)
        let exact = try reference.forward(["data": x])
        let exactGrad = try reference.backward(exact, seeds: [outID: dy.array.map(Double.init)])[dataID.index]
        let truthOut = exact[outID.index].map { Float($0) }, truthGrad = exactGrad.map { Float($0) }
        let fwd = relativeError(ours, truthOut), bwd = relativeError(grad, truthGrad)
        let fwdScaled = scaledError(ours, truthOut), bwdScaled = scaledError(grad, truthGrad)
        print("float64 deep ReLU chain (20 conv, \(convolution)): forward \(fwd) (\(fwdScaled) of max|ref|), "
              + "input gradient \(bwd) (\(bwdScaled) of max|ref|)")
        #expect(fwd <= 1e-4, "forward off float64 by \(fwd)")
        #expect(bwd <= 1e-3, "input gradient off float64 by \(bwd)")
        #expect(bwdScaled <= 1e-3, "input gradient off float64 by \(bwdScaled) of its largest value")
    }
}
