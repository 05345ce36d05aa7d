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
        #expect(throws: ImportError.self) {
            try graph(header + "layer { name: \"r\" type: \"ReLU\" bottom: \"nope\" top: \"y\" }")
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
}
