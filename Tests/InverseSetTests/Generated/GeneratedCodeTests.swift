import Foundation
import Testing
import TestSupport

/// Generated files stay generated: each generator is run into a temporary
/// folder and its output must equal the committed file byte for byte, so a
/// hand edit (or a generator change without regenerating) fails here.
struct GeneratedCodeTests {
    /// Runs `command` with `arguments` in the repository; returns its stdout.
    static func run(_ command: String, _ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [command] + arguments
        p.currentDirectoryURL = URL(fileURLWithPath: Paths.root)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read before waiting: the Winograd file (~100 kB) does not fit a pipe's buffer.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, stdout, String(decoding: stderr, as: UTF8.self))
    }

    static func onPath(_ tool: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
        }
    }

    /// What tools/regen-proto.sh needs: protoc-c and the .proto files it imports.
    static var protocCAvailable: Bool {
        onPath("protoc-c") && ["/usr/include", "/usr/local/include"].contains {
            FileManager.default.fileExists(atPath: $0 + "/google/protobuf/descriptor.proto")
                && FileManager.default.fileExists(atPath: $0 + "/protobuf-c/protobuf-c.proto")
        }
    }

    static func expectSameFile(_ generated: Data, _ committed: String, regenerate: String,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let path = Paths.root + "/" + committed
        let want = try Data(contentsOf: URL(fileURLWithPath: path))
        guard generated != want else { return }
        // Name the first line that differs.
        let a = String(decoding: generated, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let b = String(decoding: want, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let line = zip(a, b).enumerated().first { $1.0 != $1.1 }?.offset ?? min(a.count, b.count)
        Issue.record("\(committed) differs from its generator's output at line \(line + 1) (generated \(a.count) lines, committed \(b.count)); regenerate with \(regenerate)",
                     sourceLocation: sourceLocation)
    }

    @Test(.enabled(if: GeneratedCodeTests.onPath("python3"), "python3 is not on PATH, so tools/gen-winograd.py cannot run"))
    func winogradTilesAreTheGeneratorsOutput() throws {
        let r = try Self.run("python3", ["tools/gen-winograd.py"])
        #expect(r.status == 0, "gen-winograd.py failed: \(r.stderr)")
        #expect(r.stdout.count > 50_000)
        try Self.expectSameFile(r.stdout, "Sources/Layers/Kernels/WinogradTiles.swift",
                                regenerate: "python3 tools/gen-winograd.py > Sources/Layers/Kernels/WinogradTiles.swift")
    }

    @Test(.enabled(if: GeneratedCodeTests.protocCAvailable,
                   "protoc-c or the .proto files it imports are missing (apt-get install protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev)"))
    func protobufCOutputIsTheGeneratorsOutput() throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("regen-proto-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Self.run("bash", ["tools/regen-proto.sh", dir])
        #expect(r.status == 0, "regen-proto.sh failed: \(r.stderr)")
        for (out, committed) in [("caffe.pb-c.c", "Sources/CaffeSchema/caffe.pb-c.c"),
                                 ("include/caffe.pb-c.h", "Sources/CaffeSchema/include/caffe.pb-c.h")] {
            let generated = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + out))
            try Self.expectSameFile(generated, committed, regenerate: "tools/regen-proto.sh")
        }
    }
}
