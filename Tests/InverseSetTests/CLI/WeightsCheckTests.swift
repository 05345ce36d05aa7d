import Foundation
import Testing
import CaffeImport
import GraphIR
import ImageIO
import Layers
import Runtime
import TestSupport

/// Weights that do not belong are refused, and random or non-finite ones are
/// said (issue 16, item 3).
struct WeightsCheckTests {
    let classifier = Paths.models + "/fashion/classifier_deploy.prototxt"
    let generatorWeights = Paths.models + "/fashion/generator.caffemodel"
    let lenet = Paths.models + "/lenet_mnist/lenet.prototxt"
    let lenetWeights = Paths.models + "/lenet_mnist/lenet_iter_10000.caffemodel"

    /// The generator's caffemodel on the classifier's prototxt matches no layer.
    @Test func weightsOfAnotherNetworkAreRefused() throws {
        let r = try runCLI(["inspect", classifier, "--weights", generatorWeights])
        #expect(r.status == 1)
        #expect(r.stderr.contains("generator.caffemodel holds no weights for"), "\(r.stderr)")
        #expect(r.stderr.contains("conv1") && r.stderr.contains("fc8"), "\(r.stderr)")
        #expect(r.stderr.contains("--allow-missing-weights"), "\(r.stderr)")
        // The file's own layers are named as matching nothing, in the one error line.
        #expect(r.stderr.contains("that match no layer of the net: defc7"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")

        let allowed = try runCLI(["inspect", classifier, "--weights", generatorWeights, "--allow-missing-weights"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(allowed.stderr.contains("match no layer of the net"), "\(allowed.stderr)")
    }

    /// In the library: Net refuses, names every layer left empty, and with
    /// `allowMissingWeights` fills them and says which.
    @Test func netRefusesPartialWeights() throws {
        var graph = try CaffeModel.load(prototxt: lenet)
        let dir = try temporaryDirectory("partial")
        // A caffemodel with conv1 only.
        var only = try CaffeModel.load(prototxt: lenet, weights: lenetWeights)
        for i in only.nodes.indices where only.nodes[i].name != "conv1" { only.nodes[i].weights = [] }
        try CaffeModel.writeCaffemodel(only, to: dir + "/conv1.caffemodel")
        let source = try CaffeModel.attachWeights(&graph, from: dir + "/conv1.caffemodel")
        #expect(source.matchedLayers == ["conv1"])
        #expect(source.unmatchedLayers.isEmpty)
        do {
            _ = try Net(graph: graph, registry: try builtinRegistry())
            Issue.record("partial weights must be refused")
        } catch {
            let m = "\(error)"
            #expect(m.contains("conv1.caffemodel holds no weights for 3 layer(s) with parameters: conv2, ip1, ip2"), "\(m)")
        }
        let net = try Net(graph: graph, registry: try builtinRegistry(), allowMissingWeights: true)
        #expect(net.filledLayers == ["conv2", "ip1", "ip2"])
        // Without any weights file, filling is the rule and is recorded.
        let random = try Net(graph: try CaffeModel.load(prototxt: lenet), registry: try builtinRegistry())
        #expect(random.filledLayers == ["conv1", "conv2", "ip1", "ip2"])
    }

    @Test func runSaysWeightsAreRandomWithoutWeights() throws {
        let fx = Paths.fixture("real_lenet")
        let r = try runCLI(["run", lenet, "--input", "data=\(fx)/in_data.npy", "--out", try temporaryDirectory("rnd")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("no --weights given") && r.stderr.contains("random weights"), "\(r.stderr)")
        let trained = try runCLI(["run", lenet, "--weights", lenetWeights, "--input", "data=\(fx)/in_data.npy",
                                  "--out", try temporaryDirectory("trained")])
        #expect(trained.status == 0 && !trained.stderr.contains("random"), "\(trained.stderr)")
    }

    /// NaN or Inf in an input or in the weights: a warning naming the file.
    @Test func nonFiniteInputsAndWeightsAreWarned() throws {
        let dir = try temporaryDirectory("nan")
        let x = try NPY.read(Paths.fixture("real_lenet") + "/in_data.npy")
        x[3] = .nan
        x[4] = .infinity
        try NPY.write(x, to: dir + "/nan.npy")
        let r = try runCLI(["run", lenet, "--weights", lenetWeights, "--input", "data=\(dir)/nan.npy", "--out", dir + "/o"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: \(dir)/nan.npy: 2 of the") && r.stderr.contains("NaN or infinite"), "\(r.stderr)")

        let g = try CaffeModel.load(prototxt: lenet, weights: lenetWeights)
        let ip2 = try #require(g.node(named: "ip2"))
        ip2.weights[1].data[0] = .nan
        try CaffeModel.writeCaffemodel(g, to: dir + "/nan.caffemodel")
        let w = try runCLI(["run", lenet, "--weights", dir + "/nan.caffemodel", "--input",
                            "data=\(Paths.fixture("real_lenet"))/in_data.npy", "--out", dir + "/o2"])
        #expect(w.status == 0, "\(w.stderr)")
        #expect(w.stderr.contains("nan.caffemodel: layer 'ip2' blob 1 holds 1 NaN or infinite value(s)"), "\(w.stderr)")
    }
}
