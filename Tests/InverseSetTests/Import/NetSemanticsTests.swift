import Foundation
import Testing
import CaffeImport
import GraphIR
import Layers
import Runtime
import TestSupport

/// Net-level semantics: phases, in place, fan-out, names, upgrades.
struct NetSemanticsTests {
    func graph(_ text: String, phase: String = "TEST", stages: [String] = [], level: Int = 0) throws -> Graph {
        let def = try CaffeModel.parseText(text, file: "n.prototxt")
        return try CaffeModel.buildGraph(def, state: NetState(phase: phase, level: level, stages: stages), file: "n.prototxt")
    }

    let header = "layer { name: \"in\" type: \"Input\" top: \"x\" input_param { shape { dim: 1 dim: 2 } } }\n"

    @Test func inPlaceVersionsAndLayerOutputs() throws {
        let g = try graph(header + """
        layer { name: "fc" type: "InnerProduct" bottom: "x" top: "fc" inner_product_param { num_output: 3 } }
        layer { name: "relu" type: "ReLU" bottom: "fc" top: "fc" }
        layer { name: "drop" type: "Dropout" bottom: "fc" top: "fc" }
        """)
        let latest = try #require(g.value(named: "fc"))
        #expect(g.values[latest.index].version == 2)
        #expect(g.nodes[g.values[latest.index].producer].name == "drop")
        let pre = try #require(g.output(ofLayer: "fc"))
        #expect(g.values[pre.index].version == 0)
        #expect(try g.resolve("relu") != latest)
        // Cutting at the blob keeps the in-place layers; at the layer it does not.
        #expect(try g.cut(at: "fc").nodes.count == 4)
    }

    @Test func phaseStageLevelRules() throws {
        let text = header + """
        layer { name: "a" type: "ReLU" bottom: "x" top: "a" include { phase: TRAIN } }
        layer { name: "b" type: "ReLU" bottom: "x" top: "b" include { phase: TEST } }
        layer { name: "c" type: "ReLU" bottom: "x" top: "c" exclude { phase: TEST } }
        layer { name: "d" type: "ReLU" bottom: "x" top: "d" include { stage: "deploy" } }
        layer { name: "e" type: "ReLU" bottom: "x" top: "e" include { min_level: 1 } }
        layer { name: "f" type: "ReLU" bottom: "x" top: "f" exclude { not_stage: "deploy" } }
        """
        #expect(try graph(text).nodes.map(\.name) == ["in", "b"])
        #expect(try graph(text, phase: "TRAIN").nodes.map(\.name) == ["in", "a", "c"])
        #expect(try graph(text, stages: ["deploy"], level: 1).nodes.map(\.name) == ["in", "b", "d", "e", "f"])
    }

    @Test func badNetStructureIsAnError() throws {
        expectError("'r'", "nope") {
            _ = try graph(header + "layer { name: \"r\" type: \"ReLU\" bottom: \"nope\" top: \"y\" }")
        }
        do {
            _ = try graph(header + "layer { name: \"r\" type: \"ReLU\" bottom: \"x\" top: \"y\" }\nlayer { name: \"s\" type: \"ReLU\" bottom: \"x\" top: \"y\" }")
            Issue.record("two writers of y must fail")
        } catch {
            #expect("\(error)".contains("layer 's' writes blob 'y', which layer 'r' already produces"))
        }
        do {
            _ = try graph(header + "layer { name: \"r\" type: \"ReLU\" bottom: \"nope\" top: \"y\" }")
        } catch {
            #expect("\(error)".contains("layer 'r' reads blob 'nope', which no earlier layer produces"))
        }
    }

    @Test func unknownLayerTypeListsKnownTypesAndPlugins() throws {
        let g = try graph(header + "layer { name: \"p\" type: \"Permute\" bottom: \"x\" top: \"y\" permute_param { order: 0 } }")
        do {
            _ = try Net(graph: g, registry: try builtinRegistry())
            Issue.record("unknown type must fail")
        } catch {
            let m = "\(error)"
            #expect(m.contains("layer 'p' has type 'Permute'"))
            #expect(m.contains("Known types:") && m.contains("Convolution"))
            #expect(m.contains("--plugin"))
        }
    }

    @Test func legacyInputHeaderBecomesInputLayer() throws {
        let def = try CaffeModel.parseText("""
        input: "data" input_dim: 2 input_dim: 3 input_dim: 4 input_dim: 5
        input: "label" input_dim: 2 input_dim: 1 input_dim: 1 input_dim: 1
        layer { name: "r" type: "ReLU" bottom: "data" top: "r" }
        """, file: "n.prototxt")
        let g = try CaffeModel.buildGraph(try CaffeModel.upgrade(def, file: "n.prototxt"), file: "n.prototxt")
        #expect(g.nodes.map(\.type) == ["Input", "ReLU"])
        #expect(g.inputs.map { g.inputShapes[$0]! } == [Shape([2, 3, 4, 5]), Shape([2, 1, 1, 1])])
    }

    @Test func sharedWeightsByParamName() throws {
        let g = try graph(header + """
        layer { name: "a" type: "InnerProduct" bottom: "x" top: "a" param { name: "w" } param { name: "b" }
                inner_product_param { num_output: 2 weight_filler { type: "gaussian" } } }
        layer { name: "b" type: "InnerProduct" bottom: "x" top: "b" param { name: "w" lr_mult: 0 } param { name: "b" }
                inner_product_param { num_output: 2 } }
        """)
        #expect(g.nodes[2].paramSpecs[0] == ParamSpec(name: "w", lrMult: 0, decayMult: 1))
        let net = try Net(graph: g, registry: try builtinRegistry(), seed: 3)
        #expect(net.layers[1].parameters[0] === net.layers[2].parameters[0])
        let x = Tensor(shape: [1, 2], values: [1, -2])
        try net.forward(["x": x])
        #expect(try net.blob("a")!.array == net.blob("b")!.array)
    }

    /// A V0 net (nested `layers { layer { ... } }`, lower-case types, a
    /// separate padding layer) and a V1 net with blobs_lr / weight_decay
    /// upgrade to the current form: same layers, padding folded into the
    /// convolution, per-blob rates as param specs, and the same outputs as the
    /// equivalent current-format net.
    @Test func legacyV0AndV1Upgrade() throws {
        let v0 = try CaffeModel.parseText("""
        name: "v0"
        input: "data" input_dim: 1 input_dim: 1 input_dim: 6 input_dim: 6
        layers { layer { name: "pad1" type: "padding" pad: 1 } bottom: "data" top: "pad1" }
        layers { layer { name: "conv1" type: "conv" num_output: 2 kernelsize: 3 stride: 1
                         weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.1 }
                         blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 }
                 bottom: "pad1" top: "conv1" }
        layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
        layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 2 stride: 2 } bottom: "conv1" top: "pool1" }
        layers { layer { name: "ip1" type: "innerproduct" num_output: 3 weight_filler { type: "xavier" } }
                 bottom: "pool1" top: "ip1" }
        """, file: "v0.prototxt")
        let g0 = try CaffeModel.buildGraph(try CaffeModel.upgrade(v0, file: "v0.prototxt"), file: "v0.prototxt")
        #expect(g0.nodes.map(\.type) == ["Input", "Convolution", "ReLU", "Pooling", "InnerProduct"])
        let conv = try #require(g0.nodes.first { $0.name == "conv1" })
        #expect(g0.values[conv.inputs[0].index].blob == "data")
        #expect(conv.paramSpecs == [ParamSpec(lrMult: 1, decayMult: 1), ParamSpec(lrMult: 2, decayMult: 0)])

        let current = try CaffeModel.parseText("""
        name: "current"
        layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 6 dim: 6 } } }
        layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
                convolution_param { num_output: 2 kernel_size: 3 pad: 1
                                    weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.1 } } }
        layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
        layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
        layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
                inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
        """, file: "current.prototxt")
        let g1 = try CaffeModel.buildGraph(try CaffeModel.upgrade(current, file: "current.prototxt"), file: "current.prototxt")
        let registry = try builtinRegistry()
        let a = try Net(graph: g0, registry: registry, seed: 9), b = try Net(graph: g1, registry: registry, seed: 9)
        let x = Tensor(shape: [1, 1, 6, 6], values: (0..<36).map { Float($0 % 7) - 3 })
        try a.forward(["data": x])
        try b.forward(["data": x])
        #expect(try a.shape("conv1") == [1, 2, 6, 6])
        #expect(try a.blob("ip1")!.array == b.blob("ip1")!.array)

        // V1: upper-case enum types, blobs_lr / weight_decay -> param specs.
        let v1 = try CaffeModel.parseText("""
        input: "data" input_shape { dim: 1 dim: 4 }
        layers { name: "ip" type: INNER_PRODUCT bottom: "data" top: "ip" blobs_lr: 1 blobs_lr: 2
                 weight_decay: 1 weight_decay: 0 inner_product_param { num_output: 2 } }
        layers { name: "out" type: SIGMOID bottom: "ip" top: "out" }
        """, file: "v1.prototxt")
        let g2 = try CaffeModel.buildGraph(try CaffeModel.upgrade(v1, file: "v1.prototxt"), file: "v1.prototxt")
        #expect(g2.nodes.map(\.type) == ["Input", "InnerProduct", "Sigmoid"])
        #expect(g2.nodes[1].paramSpecs == [ParamSpec(lrMult: 1, decayMult: 1), ParamSpec(lrMult: 2, decayMult: 0)])
    }
}
