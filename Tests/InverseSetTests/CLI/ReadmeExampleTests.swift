import Foundation
import Testing
import TestSupport

/// The README's examples run as written: every `inverse-set` command of its
/// `sh` code blocks, through /bin/sh (so the shell's quoting is the README's),
/// from a scratch directory that sees the repository's `Models/` and
/// `.build/` as the README's reader does, with the build's folder on PATH as
/// its `export PATH=...` line puts it. The set-up and build commands around
/// them (`bash tools/setup.sh`, `swift build`) and `bash tools/test.sh` are
/// not rerun: they are what produced this test. The examples run one after
/// another, in the README's order: later ones read what earlier ones write
/// (the random weights of `init`).
@Suite(.serialized)
struct ReadmeExampleTests {
    /// The commands of the README's ```sh blocks that call the tool, as written.
    static func examples() throws -> [String] {
        let readme = try String(contentsOfFile: Paths.root + "/README.md", encoding: .utf8)
        var commands: [String] = [], inBlock = false, pending = ""
        for raw in readme.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if raw.hasPrefix("```") { inBlock = raw == "```sh"; continue }
            guard inBlock else { continue }
            var line = raw
            if let hash = line.range(of: "   #") { line = String(line[..<hash.lowerBound]) }   // trailing comment
            line = line.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasSuffix("\\") { pending += line.dropLast() + " "; continue }
            line = pending + line; pending = ""
            for part in line.components(separatedBy: "&&").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                if part.hasPrefix("inverse-set ") || part.hasPrefix(".build/release/inverse-set ") { commands.append(part) }
            }
        }
        return commands
    }

    @Test func theReadmeHasRunnableExamples() throws {
        let commands = try Self.examples()
        #expect(commands.count >= 8, "\(commands)")
        #expect(commands.first?.hasPrefix(".build/release/inverse-set sample") == true, "the first command of the README")
        #expect(commands.contains { $0.contains("'pre(fc6):17'") }, "the shell quoting of pre(...)")
    }

    @Test(arguments: try ReadmeExampleTests.examples())
    func readmeExampleRunsAsWritten(_ command: String) throws {
        let cwd = try temporaryDirectory("readme")
        for name in ["Models", ".build"] {
            try FileManager.default.createSymbolicLink(atPath: cwd + "/" + name, withDestinationPath: Paths.root + "/" + name)
        }
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = BuildProducts.directory + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let r = try runCLI(["-c", command], cwd: cwd, environment: env, executable: "/bin/sh")
        #expect(r.status == 0, "\(command)\n\(r.stderr)")
        #expect(!r.stderr.contains("error:"), "\(command)\n\(r.stderr)")
        // A sample command writes its report.
        if command.contains(" sample "), let out = command.components(separatedBy: "--out ").last?.split(separator: " ").first {
            #expect(FileManager.default.fileExists(atPath: cwd + "/" + out + "/report.html"), "\(command)")
        }
    }
}
