import Foundation
import Testing
import CaffeImport
import GraphIR
import ImageIO
import Layers
import Runtime
import TestSupport

/// Inputs that used to crash, hang or allocate without bound (issue 16):
/// each now parses or gives a clean error.
struct RobustnessTests {
    let lenet = Paths.models + "/lenet_mnist/lenet.prototxt"

    func graph(_ text: String) throws -> Graph {
        let def = try CaffeModel.upgrade(try CaffeModel.parseText(text, file: "t.prototxt"), file: "t.prototxt")
        return try CaffeModel.buildGraph(def, file: "t.prototxt")
    }
    func error(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }
    func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = try temporaryDirectory("robust") + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    /// A top named twice (and a legacy header naming an input twice) used to
    /// read one past the node array while building the message.
    @Test func aTopNamedTwiceIsAnError() {
        let m = error { _ = try graph("""
            layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }
            layer { name: "r" type: "ReLU" bottom: "x" top: "y" top: "y" }
            """) }
        #expect(m.contains("layer 'r' names top 'y' twice"), "\(m)")
        let legacy = error { _ = try graph("input: \"data\" input: \"data\" input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2 input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2") }
        #expect(legacy.contains("names top 'data' twice"), "\(legacy)")
        // In place twice is also two sources for one blob in Caffe.
        let twice = error { _ = try graph("""
            layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }
            layer { name: "r" type: "ReLU" bottom: "x" top: "x" top: "x" }
            """) }
        #expect(twice.contains("names top 'x' twice"), "\(twice)")
    }

    /// An 8 MB name gives a short message, with control characters escaped.
    @Test func messagesClipWhatTheyQuote() {
        let long = String(repeating: "n", count: 8 << 20)
        let m = error { _ = try graph("layer { name: \"\(long)\" type: \"ReLU\" bottom: \"nothing\" top: \"y\" }") }
        #expect(m.contains("reads blob 'nothing'"), "\(m.prefix(300))")
        #expect(m.utf8.count < 1_000, "\(m.utf8.count) bytes")
        #expect(m.contains("(8388608 characters)"))
        let unknown = error { _ = try CaffeModel.parseText("name: \"a\" \(long): 1", file: "t.prototxt") }
        #expect(unknown.contains("unknown field") && unknown.utf8.count < 1_000, "\(unknown.prefix(300))")
        let control = error { _ = try graph("layer { name: \"a\u{1B}[31mred\\nx\" type: \"ReLU\" bottom: \"b\" top: \"y\" }") }
        #expect(!control.contains("\u{1B}") && control.contains("\\u{1B}[31mred\\nx"), "\(control)")
        #expect("a\u{7}b".clippedForDisplay() == "a\\u{7}b")
        #expect(listForDisplay((0..<30).map(String.init), limit: 3) == "0, 1, 2 and 27 more")
    }

    /// A large but legal shape: shape inference (inspect) allocates nothing,
    /// and running it is refused before allocating, naming the budget.
    @Test func hugeLegalShapes() throws {
        let dir = try temporaryDirectory("huge")
        let proto = dir + "/huge.prototxt"
        try """
        layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 2147483647 dim: 8 dim: 8 } } }
        layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
        layer { name: "conv" type: "Convolution" bottom: "pool" top: "conv" convolution_param { num_output: 2 kernel_size: 3 } }
        layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
        layer { name: "lrn" type: "LRN" bottom: "conv" top: "lrn" }
        layer { name: "ip" type: "InnerProduct" bottom: "lrn" top: "ip" inner_product_param { num_output: 3 } }
        """.write(toFile: proto, atomically: true, encoding: .utf8)
        // With the address space limited to 4 GB, an allocation of the 1 TB input would fail.
        let limited = try runCLI(["-c", "ulimit -v 4000000 && exec \"$0\" inspect \"$1\"", BuildProducts.executable, proto],
                                 executable: "/bin/bash")
        #expect(limited.status == 0, "\(limited.stderr)")
        #expect(limited.stdout.contains("2x2147483647x4x4"), "\(limited.stdout)")
        let npy = dir + "/x.npy"
        try NPY.write(Tensor(shape: [1, 1, 8, 8]), to: npy)
        let run = try runCLI(["run", proto, "--input", "data=\(npy)", "--out", dir + "/out"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("more than the memory budget"), "\(run.stderr)")
        #expect(run.stderr.contains("INVERSE_SET_MEMORY_BUDGET"), "\(run.stderr)")
    }

    /// .npy headers whose element count overflows, or is far larger than the
    /// file, are rejected before anything is allocated.
    @Test func npyHeadersThatLie() throws {
        func npy(_ shape: String, body: Int = 16) -> [UInt8] {
            var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
            header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
            let n = header.utf8.count
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(header.utf8)
                + [UInt8](repeating: 0, count: body)
        }
        let overflow = error { _ = try NPY.decode(npy("(4611686018427387904, 4)"), file: "o.npy") }
        #expect(overflow.contains("o.npy") && overflow.contains("more elements than any array can hold"), "\(overflow)")
        let product = error { _ = try NPY.decode(npy("(2147483648, 2147483648, 4)"), file: "p.npy") }
        #expect(product.contains("more elements than any array can hold"), "\(product)")
        let truncated = error { _ = try NPY.decode(npy("(1000000, 1000)"), file: "t.npy") }
        #expect(truncated.contains("truncated"), "\(truncated)")
        #expect(try NPY.decode(npy("(2, 2)"), file: "ok.npy").shape == Shape([2, 2]))
        #expect(try NPY.decode(npy("(0, 3)", body: 0), file: "empty.npy").count == 0)

        // Within the file but over a (small) budget: the CLI names the file and the budget.
        let path = try write(NPY.encode(Tensor(shape: [1, 1, 28, 28])), "big.npy")
        var env = ProcessInfo.processInfo.environment
        env["INVERSE_SET_MEMORY_BUDGET"] = "1K"
        let r = try runCLI(["run", lenet, "--input", "data=\(path)", "--out", try temporaryDirectory("o")], environment: env)
        #expect(r.status == 1)
        #expect(r.stderr.contains("big.npy") && r.stderr.contains("memory budget of 1.0 KB"), "\(r.stderr)")
    }

    /// A PNG header of 26000 x 27000 pixels (what a 2 MB decompression bomb
    /// claims) is refused from the header, before decoding.
    @Test func pngDecompressionBombIsRefused() throws {
        let bomb = ImageIOTests.HandPNG.make(width: 26_000, height: 27_000, bitDepth: 8, colorType: 2, rows: [])
        let path = try write(bomb, "bomb.png")
        let m = error { _ = try PNGImage.read(path) }
        #expect(m.contains("bomb.png") && m.contains("26000 x 27000") && m.contains("decompression bomb"), "\(m)")
    }

    /// MAX pooling propagates NaN (as PyTorch) instead of Caffe's silent
    /// -3.4e38 for an all-NaN window; finite windows are unchanged.
    @Test func maxPoolingPropagatesNaN() throws {
        let nan = Float.nan
        // One 2x8 plane: windows 2x2 stride 2 -> 1x4. Window 0 all NaN, 1 partly NaN, 2 finite, 3 -inf.
        let x = Tensor(shape: [1, 1, 2, 8], values: [nan, nan, 1, nan, 3, 4, -.infinity, -.infinity,
                                                      nan, nan, 2, 5, 6, -1, -.infinity, -.infinity])
        let out = try forwardLayer("type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 stride: 2 }", inputs: [x]).outputs[0]
        #expect(out[0].isNaN && out[1].isNaN)
        #expect(out[2] == 6)
        #expect(out[3] == -.infinity)
        // The SIMD path (eight outputs at a time) agrees with the scalar one.
        var values = [Float](repeating: 0, count: 2 * 32)
        for i in values.indices { values[i] = Float(i % 7) }
        values[5] = nan; values[32 + 20] = nan
        let wide = try forwardLayer("type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 stride: 2 }",
                                    inputs: [Tensor(shape: [1, 1, 2, 32], values: values)]).outputs[0]
        #expect(wide[2].isNaN && wide[10].isNaN)
        #expect((0..<16).filter { wide[$0].isNaN } == [2, 10])
    }
}
