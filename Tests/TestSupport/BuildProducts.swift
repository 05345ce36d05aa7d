import Foundation

/// Products of the same `swift build` as the running tests (the plugin
/// libraries and the `inverse-set` executable sit next to the test bundle).
public enum BuildProducts {
    public static var directory: String {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        // .../<config>/InverseSetPackageTests.xctest (a file on Linux)
        url.deleteLastPathComponent()
        return url.path
    }
    public static func plugin(_ name: String) -> String { directory + "/lib\(name).so" }
    public static var executable: String { directory + "/inverse-set" }
}
