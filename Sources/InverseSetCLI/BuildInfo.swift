import Foundation

/// Where the tool runs from: its version, the source commit of the build
/// (when it runs from a git checkout), and the shipped models' folder, found
/// relative to the executable so that defaults work from any directory.
enum BuildInfo {
    /// The executable's real path (symlinks resolved).
    static var executable: URL {
        let proc = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")).map { URL(fileURLWithPath: $0) }
        return (proc ?? URL(fileURLWithPath: CommandLine.arguments[0])).resolvingSymlinksInPath()
    }

    /// The package (or install prefix) that holds the shipped models: the
    /// nearest ancestor of the executable with Models/, or with
    /// share/inverse-set/Models/ for an installed tool.
    static let root: String? = {
        var dir = executable.deletingLastPathComponent()
        for _ in 0..<5 {
            for candidate in [dir.path, dir.path + "/share/inverse-set"] {
                if FileManager.default.fileExists(atPath: candidate + "/Models/fashion/pipeline.json") { return candidate }
            }
            dir.deleteLastPathComponent()
        }
        return nil
    }()

    /// `git rev-parse HEAD` of the package the tool was built from, with
    /// "+changes" when tracked files differ from it; nil outside a checkout.
    static let commit: String? = {
        guard let root, FileManager.default.fileExists(atPath: root + "/.git") else { return nil }
        func git(_ args: [String]) -> String? {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git", "-C", root] + args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { return nil }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : nil
        }
        guard let head = git(["rev-parse", "HEAD"]), !head.isEmpty else { return nil }
        let dirty = git(["status", "--porcelain", "--untracked-files=no"]).map { !$0.isEmpty } ?? false
        return head + (dirty ? "+changes" : "")
    }()

    /// What `--version` prints.
    static var versionLine: String { toolVersion + (commit.map { " (commit \($0))" } ?? "") }

    /// The default pipeline (the shipped Fashion-MNIST models): relative to the
    /// working directory when it has one, else next to the tool.
    static let defaultPipeline = "Models/fashion/pipeline.json"

    /// `path` as given, or, for the default when the working directory has no
    /// Models/ folder, the shipped one next to the tool.
    static func pipeline(_ path: String) -> String {
        guard path == defaultPipeline, !FileManager.default.fileExists(atPath: path), let root else { return path }
        return root + "/" + path
    }
}
