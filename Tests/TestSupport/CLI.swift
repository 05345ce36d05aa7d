import Foundation

/// Runs the built `inverse-set` executable, as a user would.
public struct CLIResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// The last non-empty line of stdout (the JSON summary of `sample` and `bench`).
    public var lastLine: String { stdout.split(separator: "\n").last.map(String.init) ?? "" }
}

@discardableResult
public func runCLI(_ args: [String], cwd: String? = nil, environment: [String: String]? = nil,
                   executable: String = BuildProducts.executable) throws -> CLIResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Drain both pipes while the process runs (large outputs would block it).
    nonisolated(unsafe) var outData = Data()
    var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    errData = err.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return CLIResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                     stderr: String(decoding: errData, as: UTF8.self))
}

/// Starts the built `inverse-set` with `args` and returns at once, for tests
/// that interrupt or race a running command. Stdout is discarded; so is
/// stderr unless a pipe is given. The caller waits for (or kills) it.
public func startCLI(_ args: [String], stderr: Pipe? = nil) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: BuildProducts.executable)
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = stderr ?? FileHandle.nullDevice
    try p.run()
    return p
}

/// A fresh temporary folder.
public func temporaryDirectory(_ tag: String = "t") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inverse-set-\(tag)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
