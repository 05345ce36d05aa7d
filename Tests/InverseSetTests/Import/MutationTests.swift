import Foundation
import Testing
import CaffeImport
import GraphIR
import ImageIO
import Runtime
import TestSupport

/// Seeded mutation fuzzing of every reader of user input, in a child process
/// (`inverse-set-fuzz`, Tests/Fuzz) so that a crash, a stack overflow or an
/// abort is seen as the signal it is instead of killing the test run: at least
/// 2,000 inputs per format, each of which must be "parsed" or a clean error.
/// The child prints one line per input as it finishes; when it dies, the
/// input after its last line is the culprit, and it is restarted after it.
/// (tools/fuzz.sh runs the same probe under libFuzzer for coverage-guided fuzzing.)
struct MutationTests {
    static let casesPerFormat = 2_100

    struct Outcome: CustomStringConvertible {
        var parsed = 0, errors = 0
        var signals: [(index: Int, signal: Int32)] = []
        var hangs: [Int] = []
        var description: String {
            "\(parsed + errors + signals.count + hangs.count) inputs: \(parsed) parsed, \(errors) clean errors, "
                + "\(signals.count) signals, \(hangs.count) hangs"
        }
    }

    /// Writes the inputs to a folder and runs them through the probe.
    static func probe(_ format: String, _ inputs: [[UInt8]]) throws -> Outcome {
        let dir = try temporaryDirectory("mutants-\(format)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (i, bytes) in inputs.enumerated() {
            FileManager.default.createFile(atPath: dir + "/" + String(format: "%06d", i), contents: Data(bytes))
        }
        var outcome = Outcome()
        var from = 0
        while from < inputs.count {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: BuildProducts.directory + "/inverse-set-fuzz")
            p.arguments = [format, "--from", String(from), dir]
            var env = ProcessInfo.processInfo.environment
            env["INVERSE_SET_MEMORY_BUDGET"] = "1G"
            p.environment = env
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            // A child that stops making progress for long is a hang: kill it.
            let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
            DispatchQueue.global().asyncAfter(deadline: .now() + 300, execute: watchdog)
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            watchdog.cancel()
            var last = from - 1
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1)
                guard let i = Int(parts[0]), parts.count == 2 else { continue }
                last = i
                if parts[1] == "parsed" { outcome.parsed += 1 } else { outcome.errors += 1 }
            }
            if p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGTERM && last + 1 < inputs.count {
                outcome.hangs.append(last + 1)
            } else if p.terminationReason == .uncaughtSignal {
                outcome.signals.append((last + 1, p.terminationStatus))
            } else if p.terminationStatus != 0 {
                outcome.signals.append((last + 1, -p.terminationStatus))
            }
            from = last + 2
            if p.terminationReason == .exit && p.terminationStatus == 0 { break }
        }
        return outcome
    }

    // MARK: - Mutators

    /// Byte-level mutations: flip a bit, delete, duplicate, overwrite, splice, truncate.
    static func mutateBytes(_ b: [UInt8], _ rng: inout SplitMix64, donors: [[UInt8]]) -> [UInt8] {
        var b = b
        for _ in 0..<(1 + Int(rng.next() % 4)) where !b.isEmpty {
            let i = Int(rng.next() % UInt64(b.count))
            switch rng.next() % 7 {
            case 0: b[i] ^= UInt8(1 << (rng.next() % 8))
            case 1: b.remove(at: i)
            case 2: b.insert(b[i], at: i)
            case 3: b[i] = [0x00, 0xFF, 0x7F, 0x80][Int(rng.next() % 4)]
            case 4:
                let n = min(b.count - i, 1 + Int(rng.next() % 16))
                for k in i..<(i + n) { b[k] = UInt8(truncatingIfNeeded: rng.next()) }
            case 5:
                let d = donors[Int(rng.next() % UInt64(donors.count))]
                guard !d.isEmpty else { continue }
                let s = Int(rng.next() % UInt64(d.count)), n = min(d.count - s, 1 + Int(rng.next() % 64))
                b.insert(contentsOf: d[s..<(s + n)], at: i)
            default: b = Array(b.prefix(i))
            }
        }
        return b
    }

    /// Text-aware mutations: splice in tokens that stress the parser and the
    /// graph builder (deep nesting, huge or negative numbers, repeated tops,
    /// long and odd names), at token boundaries.
    static func mutateText(_ b: [UInt8], _ rng: inout SplitMix64, donors: [[UInt8]]) -> [UInt8] {
        let tokens = [
            "layer { ", "} ", "{ ", " top: \"data\" ", " top: \"y\" top: \"y\" ", " bottom: \"nowhere\" ",
            " dim: 2147483647 ", " dim: 0 ", " dim: -3 ", " num_output: 4294967295 ", " num_output: 0 ",
            " kernel_size: 0 ", " kernel_size: 100000 ", " stride: 0 ", " pad: 65535 ", " group: 7 ",
            " axis: -9 ", " dilation: 1000 ", " \"\\x", " # ", " nan ", " -inf ", " 0x7fffffffffffffff ",
            " input: \"data\" ", " input: \"data\" input_dim: 1 input_dim: 3 input_dim: 2147483647 input_dim: 2 ",
            " type: \"Pooling\" ", " type: \"Convolution\" ", " type: \"Reshape\" reshape_param { shape { dim: -1 dim: -1 } } ",
            " type: \"Slice\" slice_param { slice_point: 1 slice_point: 0 } ", " type: \"Concat\" ",
            " include { phase: TRAIN } ", " \u{1B}[31m ", " \u{0} ", " name: \"" + String(repeating: "n", count: 5_000) + "\" ",
            String(repeating: "layer { ", count: 150), String(repeating: "p { ", count: 120),
            String(repeating: "layer { ", count: 6_000),
        ]
        var b = b
        for _ in 0..<(1 + Int(rng.next() % 3)) {
            var at = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count + 1))
            // Mostly at a token boundary, so the insertion is seen as tokens.
            if rng.next() % 8 != 0 { while at < b.count && b[at] != 32 && b[at] != 10 { at += 1 } }
            if rng.next() % 4 == 0 {
                b = mutateBytes(b, &rng, donors: donors)
            } else {
                b.insert(contentsOf: Array(tokens[Int(rng.next() % UInt64(tokens.count))].utf8), at: min(at, b.count))
            }
        }
        return b
    }

    /// .npy: rewrite the header's shape and dtype, or mutate bytes.
    static func mutateNPY(_ b: [UInt8], _ rng: inout SplitMix64, donors: [[UInt8]]) -> [UInt8] {
        guard b.count > 10, rng.next() % 3 != 0 else { return mutateBytes(b, &rng, donors: donors) }
        let numbers = ["0", "1", "3", "2147483648", "4611686018427387904", "9223372036854775807", "99999999999999999999", "-1", ""]
        let dtypes = ["<f4", ">f4", "<f8", "<i4", ">i8", "|u1", "|i1", "<f2", "<c8", "|b1", "<U3", "O"]
        var dims: [String] = []
        for _ in 0..<Int(rng.next() % 5) { dims.append(numbers[Int(rng.next() % UInt64(numbers.count))]) }
        let shape = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
        let fortran = rng.next() % 8 == 0 ? "True" : "False"
        var header = "{'descr': '\(dtypes[Int(rng.next() % UInt64(dtypes.count))])', 'fortran_order': \(fortran), 'shape': \(shape), }"
        header += String(repeating: " ", count: Int(rng.next() % 64)) + "\n"
        let n = header.utf8.count
        let major: UInt8 = rng.next() % 6 == 0 ? 2 : 1
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
        out += major == 1 ? [UInt8(n & 0xff), UInt8(n >> 8)] : [UInt8(n & 0xff), UInt8(n >> 8), 0, 0]
        out += Array(header.utf8)
        let body = Int(rng.next() % 512)
        for _ in 0..<body { out.append(UInt8(truncatingIfNeeded: rng.next())) }
        return out
    }

    /// PNG: change IHDR fields or chunk bytes and (mostly) fix the CRCs, so
    /// libpng gets past its checksums to the decoder and our size checks.
    static func mutatePNG(_ b: [UInt8], _ rng: inout SplitMix64, donors: [[UInt8]]) -> [UInt8] {
        var b = b
        if b.count > 33 && rng.next() % 2 == 0 {
            // IHDR data at 16..<29: width, height, depth, color type, compression, filter, interlace.
            switch rng.next() % 4 {
            case 0:
                let v = [UInt32(0), 1, 26_000, 0x7FFF_FFFF, 1_000_000, 16_385, 65_535][Int(rng.next() % 7)]
                let at = rng.next() % 2 == 0 ? 16 : 20
                for k in 0..<4 { b[at + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(k))) }
            case 1: b[24] = [1, 2, 3, 4, 5, 8, 16, 32][Int(rng.next() % 8)]
            case 2: b[25] = [0, 1, 2, 3, 4, 5, 6, 7][Int(rng.next() % 8)]
            default: b[28] = UInt8(rng.next() % 3)
            }
        } else {
            b = mutateBytes(b, &rng, donors: donors)
        }
        if rng.next() % 4 != 0 { fixCRCs(&b) }
        return b
    }

    /// Recomputes the CRC of every whole chunk after the signature.
    static func fixCRCs(_ b: inout [UInt8]) {
        var at = 8
        while at + 12 <= b.count {
            let len = Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
            guard len >= 0, at + 12 + len <= b.count else { return }
            let crc = ImageIOTests.HandPNG.crc(Array(b[(at + 4)..<(at + 8 + len)]))
            for k in 0..<4 { b[at + 8 + len + k] = UInt8(truncatingIfNeeded: crc >> (24 - 8 * UInt32(k))) }
            at += 12 + len
        }
    }

    // MARK: - Seeds

    static func read(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    static func seeds(_ format: String) throws -> [[UInt8]] {
        switch format {
        case "prototxt":
            return try [Paths.models + "/caffenet/deploy.prototxt", Paths.models + "/mtcnn/det3.prototxt",
                        Paths.fixture("net_mini_caffenet") + "/net.prototxt", Paths.fixture("v1_lenet") + "/lenet_v1.prototxt",
                        Paths.models + "/fashion/classifier_deploy.prototxt", Paths.models + "/fashion/generator_deploy.prototxt",
                        Paths.root + "/Tests/Fixtures/plugins/ssd_head/net.prototxt"].map(read)
        case "caffemodel":
            return try ["conv_basic", "prelu", "batchnorm_global", "deconv_group_nobias", "ip_transpose"]
                .map { try read(Paths.fixture($0) + "/weights.caffemodel") } + [try read(Paths.models + "/mtcnn/det1.caffemodel")]
        case "npy":
            var out = try ["conv_basic/in_data.npy", "softmax/fwd_out.npy", "reduction_sumsq/fwd_out.npy", "euclidean_loss/fwd_out.npy"]
                .map { try read(Paths.fixture($0)) }
            out.append(NPY.encode(Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])))
            return out
        default:
            let H = ImageIOTests.HandPNG.self
            return [H.make(width: 3, height: 2, bitDepth: 8, colorType: 2, rows: [[1, 2, 3, 4, 5, 6, 7, 8, 9], [9, 8, 7, 6, 5, 4, 3, 2, 1]]),
                    H.make(width: 2, height: 2, bitDepth: 8, colorType: 0, rows: [[0, 255], [128, 7]]),
                    H.make(width: 2, height: 1, bitDepth: 16, colorType: 6, rows: [[UInt8](repeating: 77, count: 16)]),
                    H.make(width: 2, height: 2, bitDepth: 8, colorType: 3, rows: [[0, 1], [2, 0]], palette: [255, 0, 0, 0, 255, 0, 0, 0, 255], trns: [0, 128]),
                    H.make(width: 4, height: 1, bitDepth: 8, colorType: 4, rows: [[1, 2, 3, 4, 5, 6, 7, 8]]),
                    try read(Paths.root + "/Tests/Fixtures/images/chelsea.png")]
        }
    }

    @Test("mutants parse or fail cleanly, in a child process", arguments: ["prototxt", "caffemodel", "npy", "png"])
    func mutantsNeverKillTheReader(_ format: String) throws {
        let seeds = try Self.seeds(format)
        var rng = SplitMix64(seed: 16_000 &+ UInt64(format.utf8.count))
        var inputs: [[UInt8]] = []
        for k in 0..<Self.casesPerFormat {
            let seed = seeds[k % seeds.count]
            switch format {
            case "prototxt": inputs.append(Self.mutateText(seed, &rng, donors: seeds))
            case "npy": inputs.append(Self.mutateNPY(seed, &rng, donors: seeds))
            case "png": inputs.append(Self.mutatePNG(seed, &rng, donors: seeds))
            default: inputs.append(Self.mutateBytes(seed, &rng, donors: seeds))
            }
        }
        // The seeds are real inputs (det1.caffemodel's own net reads a training
        // label blob it lacks, and ssd_head needs the SSD plugin: clean errors).
        let clean = try Self.probe(format, seeds)
        #expect(clean.signals.isEmpty && clean.parsed >= seeds.count - 1, "\(format) seeds: \(clean)")

        let outcome = try Self.probe(format, inputs)
        print("mutation \(format): \(outcome)")
        #expect(outcome.signals.isEmpty, "\(format): signals at inputs \(outcome.signals)")
        #expect(outcome.hangs.isEmpty, "\(format): hangs at inputs \(outcome.hangs)")
        #expect(outcome.parsed + outcome.errors == Self.casesPerFormat, "\(format): \(outcome)")
        #expect(outcome.errors > 0 && outcome.parsed > 0, "\(format): mutants should both parse and fail (\(outcome))")
    }
}
