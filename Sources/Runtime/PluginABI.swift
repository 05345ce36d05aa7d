/// The contract between the tool and a layer plugin library.
///
/// A plugin exports two C symbols (write them with `@_cdecl`):
///
///     @_cdecl("inverse_set_plugin_abi_version")
///     public func abiVersion() -> Int32 { PluginABI.version }
///
///     @_cdecl("inverse_set_plugin_register")
///     public func register(_ registry: UnsafeMutableRawPointer, _ origin: UnsafePointer<CChar>) -> Int32 {
///         PluginABI.register(registry, origin) { registry, origin in
///             try registry.register("Mish", origin: origin) { try MishLayer($0) }
///         }
///     }
///
/// The tool reads the version first and refuses a plugin built against
/// another one; then it calls `register` with its registry.
public enum PluginABI {
    /// Bumped whenever the Layer protocol or the registry changes incompatibly
    /// (2: `Layer.statisticParameters`; 3: `ExecutionContext.threads`, and
    /// `Tensor` moved to the Tensors module).
    public static let version: Int32 = 3
    public static let versionSymbol = "inverse_set_plugin_abi_version"
    public static let entryPoint = "inverse_set_plugin_register"

    /// Plugin side: recovers the registry and runs `body`; returns 0, or -1
    /// after storing the error for the host to report.
    public static func register(_ raw: UnsafeMutableRawPointer, _ origin: UnsafePointer<CChar>,
                                _ body: (LayerRegistry, String) throws -> Void) -> Int32 {
        let registry = Unmanaged<LayerRegistry>.fromOpaque(raw).takeUnretainedValue()
        do {
            try body(registry, String(cString: origin))
            return 0
        } catch {
            registry.lastPluginError = "\(error)"
            return -1
        }
    }

    /// Host side: checks the version symbol and calls the entry point.
    public static func call(_ entry: UnsafeMutableRawPointer, version: UnsafeMutableRawPointer?,
                            registry: LayerRegistry, path: String) throws {
        guard let version else {
            throw RuntimeError.plugin(path: path, message: "has no '\(versionSymbol)' symbol; it was not built with the InverseSet plugin API")
        }
        typealias VersionFn = @convention(c) () -> Int32
        typealias RegisterFn = @convention(c) (UnsafeMutableRawPointer, UnsafePointer<CChar>) -> Int32
        let v = unsafeBitCast(version, to: VersionFn.self)()
        guard v == PluginABI.version else {
            throw RuntimeError.plugin(path: path, message: "was built for plugin API version \(v), but this inverse-set speaks version \(PluginABI.version); rebuild the plugin against this version")
        }
        let fn = unsafeBitCast(entry, to: RegisterFn.self)
        let raw = Unmanaged.passUnretained(registry).toOpaque()
        registry.lastPluginError = nil
        let rc = path.withCString { fn(raw, $0) }
        if rc != 0 {
            throw RuntimeError.plugin(path: path, message: "registration failed: \(registry.lastPluginError ?? "error code \(rc)")")
        }
    }
}
