import Testing
import CaffeImport
import GraphIR
import Layers
import Runtime
import TestSupport

/// The prototxt parser: the text format's syntax, schema checks and errors.
struct TextFormatTests {
    func net(_ text: String) throws -> ParamMessage { try CaffeModel.parseText(text, file: "t.prototxt") }

    func error(_ text: String) -> String {
        do { _ = try net(text); return "" } catch { return "\(error)" }
    }

    @Test func syntaxVariants() throws {
        let m = try net("""
        # a comment
        name: 'n\\x41\\101\\n'  "more"   # escapes, both quotes, concatenation
        layer: { name: "a" type: "Input" top: "x"   # ':' before '{'
                 input_param < shape { dim: [1, 3, 0x10, 010] } > }   # angle brackets, list, hex, octal
        layer { name: "p"; type: "Pooling", bottom: "x" top: "y"
                pooling_param { pool: AVE kernel_size: 2 } }
        layer { name: "q" type: "Pooling" bottom: "y" top: "z" pooling_param { pool: 0 } }
        layer { name: "r" type: "Power" bottom: "z" top: "w" power_param { power: 2.5e-1 scale: -inf shift: 1.0f } }
        """)
        #expect(try m.string("name") == "nAA\nmore")
        let layers = m.messages("layer")
        #expect(layers.count == 4)
        #expect(try layers[0].message("input_param").messages("shape")[0].ints("dim") == [1, 3, 16, 8])
        #expect(try layers[1].message("pooling_param").enumName("pool") == "AVE")
        #expect(try layers[2].message("pooling_param").enumName("pool") == "MAX")
        let power = layers[3].message("power_param")
        #expect(try power.float("power") == 0.25)
        #expect(try power.float("scale") == -.infinity)
        #expect(try power.float("shift") == 1)
        // defaults come from the schema
        #expect(try layers[1].message("pooling_param").int("stride") == 1)
    }

    @Test func customLayerParametersAreKept() throws {
        let m = try net("""
        layer { name: "perm" type: "Permute" bottom: "x" top: "y"
                permute_param { order: 0 order: 2 order: 3 order: 1 }
                norm_param { across_spatial: false scale_filler { type: "constant" value: 20 } eps: 1e-10 } }
        """)
        let l = m.messages("layer")[0]
        #expect(try l.message("permute_param").ints("order") == [0, 2, 3, 1])
        let norm = l.message("norm_param")
        #expect(try norm.bool("across_spatial", default: true) == false)
        #expect(try norm.message("scale_filler").float("value", default: 0) == 20)
        #expect(try norm.float("eps", default: 0) == 1e-10)
    }

    @Test func errorsNameFileLineAndColumn() {
        #expect(error("layer { name: \"c\" type: \"Convolution\"\n convolution_param { kernal_size: 3 } }")
            .contains("t.prototxt:2:22: unknown field 'kernal_size' in ConvolutionParameter (did you mean 'kernel_size'?)"))
        #expect(error("layer { name: \"p\" pooling_param { pool: MAXX } }").contains("t.prototxt:1:41: 'MAXX' is not a value of 'pool'; use one of: MAX, AVE, STOCHASTIC"))
        #expect(error("layer { name: \"p\" ").contains("t.prototxt:1:19: unexpected end of file"))
        #expect(error("layer { name: \"p }").contains("t.prototxt:1:15: string is not closed"))
        #expect(error("bogus: 1").contains("unknown field 'bogus' in NetParameter"))
        #expect(error("layer { name \"x\" }").contains("t.prototxt:1:14: expected ':' after field name 'name'"))
        #expect(error("layer { convolution_param { num_output: 1.5 } }").contains("expects a non-negative 32-bit integer, got '1.5'"))
        #expect(error("layer { convolution_param { num_output: -1 } }").contains("non-negative"))
        #expect(error("layer { name: \"a\" name: \"b\" }").contains("not repeated but appears twice"))
        #expect(error("layer { name: 3 }").contains("t.prototxt:1:15"))
        #expect(error("layer { name: \"a\" } }").contains("expected a field name"))
        #expect(error("name: \"a\" $").contains("unexpected character '$'"))
    }

    @Test func everyShippedPrototxtParses() throws {
        for path in ["caffenet/deploy.prototxt", "caffenet/caffenet_ppgn.prototxt", "fc6_generator/generator.prototxt",
                     "lenet_mnist/lenet.prototxt", "mtcnn/det1.prototxt", "mtcnn/det2.prototxt", "mtcnn/det3.prototxt"] {
            let g = try CaffeModel.load(prototxt: Paths.models + "/" + path)
            #expect(!g.nodes.isEmpty, "\(path)")
            // Shape inference through every layer (no weights needed).
            let net = try Net(graph: g, registry: try builtinRegistry(), lazyParameters: true)
            #expect(net.shapes.allSatisfy { $0.checkedCount != nil }, "\(path)")
        }
        for path in ["classifier_deploy", "generator_deploy", "classifier_train", "generator_train",
                     "fc6_stats", "reconstruction_eval"] {
            let g = try CaffeModel.load(prototxt: Paths.models + "/fashion/" + path + ".prototxt")
            _ = try Net(graph: g, registry: try builtinRegistry(), lazyParameters: true)
        }
    }
}
