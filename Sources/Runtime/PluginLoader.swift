import Foundation

/// Loads a layer plugin: a shared library exporting the C symbol
/// `inverse_set_plugin_register` (see docs/writing-a-layer-plugin.md).
public enum PluginLoader {
    public static func load(path: String, into registry: LayerRegistry) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RuntimeError.plugin(path: path, message: "no such file")
        }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw RuntimeError.plugin(path: path, message: "cannot be loaded as a shared library: \(why)")
        }
        guard let sym = dlsym(handle, PluginABI.entryPoint) else {
            throw RuntimeError.plugin(path: path, message: "has no entry point '\(PluginABI.entryPoint)'; is it an InverseSet layer plugin? (see docs/writing-a-layer-plugin.md)")
        }
        try PluginABI.call(sym, version: dlsym(handle, PluginABI.versionSymbol), registry: registry, path: path)
    }
}
