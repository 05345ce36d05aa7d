import Foundation

#if INVERSE_SET_FUZZ
// libFuzzer entry point (built by tools/fuzz.sh with -sanitize=fuzzer and
// -D INVERSE_SET_FUZZ; libFuzzer provides main). The format comes from
// INVERSE_SET_FUZZ_FORMAT: prototxt, caffemodel, npy or png.
private let format: InputFormat = {
    let name = ProcessInfo.processInfo.environment["INVERSE_SET_FUZZ_FORMAT"] ?? ""
    guard let f = InputFormat(rawValue: name) else {
        FileHandle.standardError.write(Data("set INVERSE_SET_FUZZ_FORMAT to one of: \(InputFormat.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return f
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    _ = Probes.run(format, bytes)
    return 0
}

typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: FuzzCallback) -> CInt

/// SwiftPM links an executable's entry point as `<module>_main` (it makes
/// `main` an alias of it), so libFuzzer's own `main` is not used: this one
/// hands the command line to libFuzzer's driver.
@_cdecl("FuzzInputs_main")
public func fuzzInputsMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var vector = argv
    _ = format   // fail early on a missing INVERSE_SET_FUZZ_FORMAT
    return LLVMFuzzerRunDriver(&count, &vector) { data, size in fuzzOneInput(data, size) }
}
#else
/// `inverse-set-fuzz FORMAT [--from N] PATH...`: runs each file (a folder:
/// its files in name order) through the readers and prints one line per
/// file as soon as it is done, `N parsed` or `N error: message`. A process
/// that dies by a signal stops after the last line it printed, so the
/// caller knows which input killed it (the in-suite mutation test restarts it
/// from the next one). Also replays crash inputs that libFuzzer saved.
@main
struct ProbeTool {
    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        guard let first = args.first, let format = InputFormat(rawValue: first) else {
            FileHandle.standardError.write(Data("usage: inverse-set-fuzz \(InputFormat.allCases.map(\.rawValue).joined(separator: "|")) [--from N] FILE-OR-FOLDER...\n".utf8))
            exit(2)
        }
        args.removeFirst()
        var from = 0
        if args.first == "--from", args.count >= 2, let n = Int(args[1]) { from = n; args.removeFirst(2) }
        var files: [String] = []
        for a in args {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: a, isDirectory: &isDir), isDir.boolValue {
                let names = ((try? FileManager.default.contentsOfDirectory(atPath: a)) ?? []).sorted()
                files += names.map { a + "/" + $0 }
            } else {
                files.append(a)
            }
        }
        for (i, path) in files.enumerated() where i >= from {
            let bytes = FileManager.default.contents(atPath: path).map { [UInt8]($0) } ?? []
            let line: String
            if let message = Probes.run(format, bytes) {
                line = "\(i) error: \(message.prefix(300).replacingOccurrences(of: "\n", with: " "))\n"
            } else {
                line = "\(i) parsed\n"
            }
            FileHandle.standardOutput.write(Data(line.utf8))
        }
    }
}
#endif
