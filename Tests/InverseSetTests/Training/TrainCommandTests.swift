import Foundation
import Testing
import CaffeImport
import GraphIR
import TestSupport

/// `inverse-set train` as users call it: a tiny IDX data set, a solver file
/// with relative paths, snapshots, resumption, test nets, errors.
struct TrainCommandTests {
    /// 24 grey 4x4 images; label 1 when the left half is brighter (learnable).
    static func writeDataset(_ dir: String, name: String, count: Int, seed: UInt64) throws {
        var state = seed
        func next() -> UInt8 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        var pixels: [UInt8] = [], labels: [UInt8] = []
        for _ in 0..<count {
            let img = (0..<16).map { _ in next() }
            var left = 0, right = 0
            for (k, v) in img.enumerated() {
                if k % 4 < 2 { left += Int(v) } else { right += Int(v) }
            }
            pixels += img
            labels.append(left > right ? 1 : 0)
        }
        try Data(DataLayerTests.idx(dims: [count, 4, 4], body: pixels)).write(to: URL(fileURLWithPath: "\(dir)/\(name)-images"))
        try Data(DataLayerTests.idx(dims: [count], body: labels)).write(to: URL(fileURLWithPath: "\(dir)/\(name)-labels"))
    }

    static let net = """
        name: "TinyIDX"
        layer { name: "data" type: "IDXData" top: "data" top: "label" include { phase: TRAIN }
                idx_data_param { source: "train-images" label_source: "train-labels" batch_size: 4 shuffle: true scale: 0.00390625 } }
        layer { name: "data" type: "IDXData" top: "data" top: "label" include { phase: TEST }
                idx_data_param { source: "test-images" label_source: "test-labels" batch_size: 5 scale: 0.00390625 } }
        layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
                inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.1 } } }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
        layer { name: "accuracy" type: "Accuracy" bottom: "ip" bottom: "label" top: "accuracy" include { phase: TEST } }
        """

    static let solver = """
        net: "net.prototxt"
        test_iter: 4
        test_interval: 10
        base_lr: 0.1
        momentum: 0.9
        lr_policy: "step"
        gamma: 0.5
        stepsize: 10
        display: 5
        max_iter: 20
        snapshot: 10
        snapshot_prefix: "snap/run"
        random_seed: 1
        type: "SGD"
        """

    func setUp() throws -> String {
        let dir = try temporaryDirectory("train")
        try Self.writeDataset(dir, name: "train", count: 24, seed: 1)
        try Self.writeDataset(dir, name: "test", count: 20, seed: 2)
        try Self.net.write(toFile: dir + "/net.prototxt", atomically: true, encoding: .utf8)
        try Self.solver.write(toFile: dir + "/solver.prototxt", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/snap", withIntermediateDirectories: true)
        return dir
    }

    /// The JSON summary on the last line of stdout.
    func json(_ s: String) throws -> [String: Any] {
        let last = s.split(separator: "\n").last.map(String.init) ?? ""
        return try #require(try JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any])
    }

    @Test func trainsSnapshotsAndResumes() throws {
        let dir = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCLI(["train", "solver.prototxt", "--threads", "1"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("Iteration 5 (") && r.stderr.contains("it/s, ETA"), "\(r.stderr)")
        #expect(r.stderr.contains("lr = 0.1") && r.stderr.contains("lr = 0.05"))          // step policy
        #expect(r.stderr.contains("Test net output #0: loss =") && r.stderr.contains("Test net output #1: accuracy ="))
        #expect(r.stderr.components(separatedBy: "Testing net (#0)").count == 4)              // iterations 0, 10, 20
        #expect(r.stderr.contains("Optimization Done."))
        let summary = try json(r.stdout)
        #expect(summary["iter"] as? Int == 20)
        #expect(summary["caffemodel"] as? String == "snap/run_iter_20.caffemodel")
        let tests = try #require(summary["test"] as? [[String: Double]])
        let accuracy = try #require(tests.first?["accuracy"])
        #expect(accuracy >= 0 && accuracy <= 1)
        for f in ["run_iter_10.caffemodel", "run_iter_10.solverstate", "run_iter_20.caffemodel", "run_iter_20.solverstate"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/snap/" + f), "\(f)")
        }
        // The snapshot loads as a Caffe model of the net.
        let g = try CaffeModel.load(prototxt: dir + "/net.prototxt", weights: dir + "/snap/run_iter_20.caffemodel")
        #expect(g.node(named: "ip")?.weights.map(\.shape) == [[2, 16], [2]])

        // Resume from iteration 10: the run continues to 20 and writes it again.
        try FileManager.default.removeItem(atPath: dir + "/snap/run_iter_20.caffemodel")
        let again = try runCLI(["train", "solver.prototxt", "--resume", "snap/run_iter_10.solverstate"], cwd: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stderr.contains("Resuming from snap/run_iter_10.solverstate at iteration 10"))
        #expect(!again.stderr.contains("Iteration 5 ("))
        #expect(again.stderr.contains("Iteration 15 ("))
        #expect(FileManager.default.fileExists(atPath: dir + "/snap/run_iter_20.caffemodel"))

        // Fine-tuning from the weights starts at iteration 0 with them.
        let tuned = try runCLI(["train", "solver.prototxt", "--weights", "snap/run_iter_20.caffemodel"], cwd: dir)
        #expect(tuned.status == 0, "\(tuned.stderr)")
    }

    @Test func errorsExitWithOneLine() throws {
        let dir = try setUp()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func fails(_ args: [String], _ want: String) throws {
            let r = try runCLI(args, cwd: dir)
            #expect(r.status == 1, "\(args): \(r.stderr)")
            #expect(r.stderr.hasPrefix("inverse-set: error:") && r.stderr.contains(want), "\(args): \(r.stderr)")
        }
        try fails(["train", "nope.prototxt"], "nope.prototxt")
        try fails(["train", "solver.prototxt", "--weights", "a.caffemodel", "--resume", "b.solverstate"], "not both")
        try fails(["train", "solver.prototxt", "--resume", "missing.solverstate"], "missing.solverstate: no such file")
        try (Self.solver.replacingOccurrences(of: "lr_policy: \"step\"", with: "lr_policy: \"stepp\""))
            .write(toFile: dir + "/bad.prototxt", atomically: true, encoding: .utf8)
        try fails(["train", "bad.prototxt"], "'stepp' is not a learning rate policy")
        try (Self.solver.replacingOccurrences(of: "net: \"net.prototxt\"", with: "net: \"other.prototxt\""))
            .write(toFile: dir + "/bad2.prototxt", atomically: true, encoding: .utf8)
        try fails(["train", "bad2.prototxt"], "other.prototxt")
        try (Self.solver.replacingOccurrences(of: "snapshot_prefix: \"snap/run\"", with: "snapshot_prefix: \"nofolder/run\""))
            .write(toFile: dir + "/bad3.prototxt", atomically: true, encoding: .utf8)
        try fails(["train", "bad3.prototxt"], "snapshot prefix 'nofolder/run'")
        try Self.net.replacingOccurrences(of: "source: \"train-images\"", with: "source: \"gone-images\"")
            .write(toFile: dir + "/net.prototxt", atomically: true, encoding: .utf8)
        try fails(["train", "solver.prototxt"], "gone-images: no such file")
    }
}
