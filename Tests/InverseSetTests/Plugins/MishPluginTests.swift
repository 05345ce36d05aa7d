import Foundation
import Testing
import GraphIR
import Layers
import Runtime
import TestSupport

/// The Mish example plugin: loaded from its shared library like a user's
/// plugin, with a backward pass derived by automatic differentiation.
struct MishPluginTests {
    func registry() throws -> LayerRegistry {
        let r = try builtinRegistry()
        try PluginLoader.load(path: BuildProducts.plugin("MishPlugin"), into: r)
        return r
    }

    @Test func loadsAndRegisters() throws {
        let r = try registry()
        #expect(r.entry("Mish")?.origin == BuildProducts.plugin("MishPlugin"))
        #expect(r.entry("Convolution")?.origin == "built-in")
    }

    @Test func forwardMatchesFormula() throws {
        let net = try singleLayerNet("type: \"Mish\"", inputShapes: [[2, 5]], registry: try registry())
        let x = Tensor(shape: [2, 5], values: [-30, -2, -0.5, 0, 0.3, 1, 2.5, 10, 40, -1e-3])
        try net.forward(["data": x])
        let y = try net.blob("out")!
        for i in 0..<x.count {
            let v = Double(x[i])
            let ref = v * tanh(log1p(exp(min(v, 30))) + (v > 30 ? v - 30 : 0))
            #expect(abs(Double(y[i]) - ref) <= 1e-5 * max(1, abs(ref)), "mish(\(v))")
        }
    }

    @Test func finiteDifferenceGradient() throws {
        let failures = try checkLayerGradients("type: \"Mish\"", inputShapes: [[2, 3, 4]], registry: try registry())
        #expect(failures.isEmpty, "\(failures)")
    }

    @Test func pluginErrors() throws {
        let r = try builtinRegistry()
        expectError("plugin '/nonexistent/libX.so': no such file") { try PluginLoader.load(path: "/nonexistent/libX.so", into: r) }
        // A shared library without the entry point (libpng is one).
        do {
            try PluginLoader.load(path: BuildProducts.plugin("InverseSet"), into: r)
            Issue.record("a library without the entry point must be refused")
        } catch {
            #expect("\(error)".contains("has no entry point"))
        }
        // Built for another plugin API version, or without the version symbol.
        do {
            try PluginLoader.load(path: BuildProducts.plugin("OldABITestPlugin"), into: r)
            Issue.record("a plugin of another API version must be refused")
        } catch {
            let text = "\(error)"
            #expect(text.contains("OldABITestPlugin") && text.contains("version 0")
                    && text.contains("version \(PluginABI.version)") && text.contains("rebuild"), "\(text)")
        }
        do {
            try PluginLoader.load(path: BuildProducts.plugin("NoVersionTestPlugin"), into: r)
            Issue.record("a plugin without the version symbol must be refused")
        } catch {
            #expect("\(error)".contains(PluginABI.versionSymbol), "\(error)")
        }
        // The CLI says the same in one line and exits 1.
        let cli = try runCLI(["layers", "--plugin", BuildProducts.plugin("OldABITestPlugin")])
        #expect(cli.status == 1 && cli.stderr.contains("version 0"), "\(cli.stderr)")
        // Registering a type twice is an error unless replacing.
        try PluginLoader.load(path: BuildProducts.plugin("MishPlugin"), into: r)
        expectError("registration failed", "'Mish' is already registered") { try PluginLoader.load(path: BuildProducts.plugin("MishPlugin"), into: r) }
        try r.register("ReLU", origin: "test", replacing: true) { try ElementwiseFunctionLayer($0, { $0 }) }
        #expect(r.entry("ReLU")?.origin == "test")
    }
}
