import Foundation
import Testing
import ImageIO
import TestSupport

/// The `inverse-set` command as users call it: outputs and exit codes.
struct CommandLineTests {
    let caffenet = Paths.models + "/caffenet/deploy.prototxt"
    let generator = Paths.models + "/fc6_generator/generator.prototxt"
    let lenet = Paths.models + "/lenet_mnist/lenet.prototxt"
    let lenetWeights = Paths.models + "/lenet_mnist/lenet_iter_10000.caffemodel"

    func json(_ s: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any])
    }

    @Test func inspectCaffeNetAndGenerator() throws {
        let r = try runCLI(["inspect", caffenet, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r.stdout)
        #expect(j["parameters"] as? Int == 60_965_224)
        #expect(j["macs"] as? Int == 724_406_816)
        let g = try json(try runCLI(["inspect", generator, "--json"]).stdout)
        #expect(g["parameters"] as? Int == 56_097_891)
        let blobs = try #require(g["blobs"] as? [String: [Int]])
        #expect(blobs["deconv0"] == [1, 3, 256, 256])
        // The table names every layer and ends with totals.
        let table = try runCLI(["inspect", caffenet])
        #expect(table.stdout.contains("conv1") && table.stdout.contains("60,965,224") && table.stdout.contains("724,406,816"))
    }

    @Test func runWritesBlobsAndGradients() throws {
        let dir = try temporaryDirectory("run")
        let fx = Paths.fixture("real_lenet")
        let r = try runCLI(["run", lenet, "--weights", lenetWeights, "--input", "data=\(fx)/in_data.npy",
                            "--out", dir, "--top-diff", "prob=\(fx)/topdiff_prob.npy"])
        #expect(r.status == 0, "\(r.stderr)")
        let prob = try NPY.read(dir + "/fwd_prob.npy"), ref = try NPY.read(fx + "/fwd_prob.npy")
        #expect(relativeError(prob.array, ref.array) <= 1e-4)
        let g = try NPY.read(dir + "/grad_data.npy"), gref = try NPY.read(fx + "/grad_data.npy")
        #expect(relativeError(g.array, gref.array) <= 1e-3)
    }

    @Test func initWritesLoadableWeights() throws {
        let dir = try temporaryDirectory("init")
        let r = try runCLI(["init", lenet, "--out", dir + "/w.caffemodel", "--seed", "5"])
        #expect(r.status == 0, "\(r.stderr)")
        let again = try runCLI(["init", lenet, "--out", dir + "/w2.caffemodel", "--seed", "5"])
        #expect(again.status == 0)
        #expect(FileManager.default.contents(atPath: dir + "/w.caffemodel") == FileManager.default.contents(atPath: dir + "/w2.caffemodel"))
        #expect(try runCLI(["inspect", lenet, "--weights", dir + "/w.caffemodel"]).status == 0)
    }

    /// Each bad input exits non-zero with one line naming the file and what is wrong.
    @Test func badInputsExitWithOneLine() throws {
        let dir = try temporaryDirectory("bad")
        func write(_ name: String, _ text: String) -> String {
            let p = dir + "/" + name
            FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
            return p
        }
        let typo = write("typo.prototxt", "layer { name: \"c\" type: \"Convolution\" convolution_param { kernal_size: 3 } }\n")
        let unknown = write("unknown.prototxt", "input: \"x\" input_shape { dim: 1 dim: 2 }\nlayer { name: \"p\" type: \"Permute\" bottom: \"x\" top: \"y\" }\n")
        let empty = write("empty.prototxt", "")
        let badEnum = write("enum.prototxt", "input: \"x\" input_shape { dim: 1 dim: 1 dim: 4 dim: 4 }\nlayer { name: \"p\" type: \"Pooling\" bottom: \"x\" top: \"y\" pooling_param { pool: MAXIMUM } }\n")
        let noBottom = write("nobottom.prototxt", "input: \"x\" input_shape { dim: 1 dim: 2 }\nlayer { name: \"r\" type: \"ReLU\" bottom: \"z\" top: \"y\" }\n")
        let twoWriters = write("two.prototxt", "input: \"x\" input_shape { dim: 1 dim: 2 }\nlayer { name: \"a\" type: \"ReLU\" bottom: \"x\" top: \"y\" }\nlayer { name: \"b\" type: \"Sigmoid\" bottom: \"x\" top: \"y\" }\n")
        // A real caffemodel cut in half, and one whose first length prefix runs past the end.
        let weights = try Data(contentsOf: URL(fileURLWithPath: lenetWeights))
        let truncated = dir + "/truncated.caffemodel"
        FileManager.default.createFile(atPath: truncated, contents: weights.prefix(weights.count / 2))
        let liar = dir + "/liar.caffemodel"
        FileManager.default.createFile(atPath: liar, contents: Data([0x0a, 0xff, 0xff, 0x03, 0x41, 0x42]))
        let cases: [([String], String)] = [
            (["inspect", badEnum], "enum.prototxt:2:"),
            (["inspect", noBottom], "'z'"),
            (["inspect", twoWriters], "'y'"),
            (["inspect", lenet, "--weights", truncated], "truncated.caffemodel"),
            (["inspect", lenet, "--weights", liar], "liar.caffemodel"),
            (["inspect", typo], "typo.prototxt:1:59: unknown field 'kernal_size'"),
            (["inspect", unknown], "layer 'p' has type 'Permute'"),
            (["inspect", empty], "empty.prototxt: file is empty"),
            (["inspect", dir + "/missing.prototxt"], "missing.prototxt: no such file"),
            (["inspect", lenet, "--weights", Paths.models + "/mtcnn/det1.caffemodel"], "weight blob 0 in the caffemodel has shape"),
            (["run", lenet, "--input", "nope=x.npy", "--out", dir], "'nope' is not an input"),
            (["inspect", caffenet, "--plugin", "/nonexistent/lib.so"], "plugin '/nonexistent/lib.so': no such file"),
        ]
        for (args, expected) in cases {
            let r = try runCLI(args)
            #expect(r.status != 0, "\(args) must fail")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1, "one line for \(args): \(r.stderr)")
            #expect(r.stderr.contains(expected), "\(args): \(r.stderr)")
        }
    }

    @Test func layersListsBuiltinsAndPlugins() throws {
        let r = try runCLI(["layers", "--plugin", BuildProducts.plugin("MishPlugin")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Convolution") && r.stdout.contains("built-in"))
        #expect(r.stdout.contains("Mish") && r.stdout.contains("libMishPlugin.so"))
        var env = ProcessInfo.processInfo.environment
        env["INVERSE_SET_PLUGINS"] = BuildProducts.plugin("MishPlugin")
        #expect(try runCLI(["layers"], environment: env).stdout.contains("Mish"))
    }

    /// `bench` on a net and on one sampler step prints its figures and a JSON line.
    @Test func benchReportsRatiosToTheGEMMBound() throws {
        let r = try runCLI(["bench", lenet, "--weights", lenetWeights, "--batch", "4", "--backward", "--repeats", "2", "--layers"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r.lastLine)
        #expect((j["macs"] as? Int ?? 0) == 4 * 2_293_000 && (j["ratio_to_bound"] as? Double ?? 0) > 0)
        #expect(r.stdout.contains("conv1") && r.stdout.contains("fwd ms"))
        let s = try runCLI(["bench", "--pipeline", Paths.root + "/Tests/Fixtures/sampler/pipeline.json",
                            "--batch", "4", "--repeats", "2", "--neuron", "ip2:3"])
        #expect(s.status == 0, "\(s.stderr)")
        let k = try json(s.lastLine)
        #expect(k["trunk_passes_per_step"] as? Double == 1 && (k["step_ms"] as? Double ?? 0) > 0)
        // --convolution picks the algorithm (same work counted either way);
        // an unknown one is refused with the choices.
        let d = try runCLI(["bench", lenet, "--batch", "2", "--repeats", "1", "--convolution", "direct"])
        #expect(d.status == 0 && d.stdout.contains("convolution direct"), "\(d.stderr)")
        #expect((try json(d.lastLine)["macs"] as? Int) == 2 * 2_293_000)
        let bad = try runCLI(["bench", lenet, "--convolution", "fft"])
        #expect(bad.status != 0 && bad.stderr.contains("'automatic', 'direct' or 'winograd'"), "\(bad.stderr)")
    }
}
