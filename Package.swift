// swift-tools-version: 6.0
//
// InverseSet: import Caffe models, run them with reverse-mode autodiff, and
// sample the inverse set of a neuron. The target graph mirrors the
// architecture (see docs/ARCHITECTURE.md):
//
//   system libraries -> CaffeSchema (generated C) -> CaffeImport -> GraphIR
//   GraphIR -> Tensors -> Runtime (kernels, registry, executor) -> Layers
//   Tensors -> ImageIO (npy, PNG; no Runtime)
//   Runtime -> Sampler (format-free) ; Sampler + ImageIO + CaffeImport -> SamplerIO -> inverse-set (CLI)
import Foundation
import PackageDescription

let optimised: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

// The numeric kernels (Layers) are compiled for the CPU the package is built
// on when it has AVX2 and FMA (Haswell level, x86-64-v3), as -march=native would; elsewhere
// for the baseline. Set INVERSE_SET_PORTABLE=1 to force the baseline.
let hostHasAVX2: Bool = {
    #if arch(x86_64) && os(Linux)
    if ProcessInfo.processInfo.environment["INVERSE_SET_PORTABLE"] == "1" { return false }
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
    let flags = info.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
    let set = Set(flags.split(separator: " ").map(String.init))
    return set.contains("avx2") && set.contains("fma") && set.contains("bmi2")
    #else
    return false
    #endif
}()
let kernels: [SwiftSetting] = hostHasAVX2
    ? [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release))]
    : optimised

let package = Package(
    name: "InverseSet",
    products: [
        .executable(name: "inverse-set", targets: ["InverseSetCLI"]),
        // One dynamic library holds everything a layer plugin links against, so
        // the tool and every plugin share a single copy of the registry types.
        .library(name: "InverseSet", type: .dynamic,
                 targets: ["GraphIR", "CaffeImport", "Tensors", "Runtime", "Layers", "ImageIO", "Sampler", "SamplerIO"]),
        // Example plugins: build with `swift build -c release --product SSDLayersPlugin`,
        // load with `inverse-set --plugin .build/release/libSSDLayersPlugin.so ...`.
        .library(name: "SSDLayersPlugin", type: .dynamic, targets: ["SSDLayersPlugin"]),
        .library(name: "MishPlugin", type: .dynamic, targets: ["MishPlugin"]),
        // Runs inputs through the readers: the in-suite mutation test's child
        // process, and (built by tools/fuzz.sh with -sanitize=fuzzer) the libFuzzer targets.
        .executable(name: "inverse-set-fuzz", targets: ["FuzzInputs"]),
        // Broken plugins for the loader's error tests.
        .library(name: "OldABITestPlugin", type: .dynamic, targets: ["OldABITestPlugin"]),
        .library(name: "NoVersionTestPlugin", type: .dynamic, targets: ["NoVersionTestPlugin"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // ---- System libraries (installed by tools/setup.sh) ------------------
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // ---- Caffe schema: our caffe.proto and its protoc-c output ----------
        // Regenerate with tools/regen-proto.sh; the output is committed.
        .target(name: "CaffeSchema", dependencies: ["CProtobufC"],
                exclude: ["caffe.proto"],
                linkerSettings: [.linkedLibrary("protobuf-c")]),

        // ---- Caffe-free graph IR ---------------------------------------------
        .target(name: "GraphIR", swiftSettings: optimised),

        // ---- Importer: prototxt / caffemodel -> GraphIR, and the writer -------
        .target(name: "CaffeImport", dependencies: ["GraphIR", "CaffeSchema", "CProtobufC"],
                swiftSettings: optimised),

        // ---- Tensors: float storage with a shape (Runtime re-exports it) -------
        .target(name: "Tensors", dependencies: ["GraphIR"], swiftSettings: optimised),

        // ---- Runtime: kernels, layer registry, executor ----------------------
        .target(name: "Runtime", dependencies: ["GraphIR", "Tensors", "CBLAS"], swiftSettings: optimised),

        // ---- Built-in layers, registered like plugins ------------------------
        .target(name: "Layers", dependencies: ["Runtime", "GraphIR", "CBLAS", "CZlib"], swiftSettings: kernels),

        // ---- Images and arrays on disk ---------------------------------------
        // Tensors for npy and preprocessing; no Runtime (the CLI adapts its PNG
        // reader to the ImageData layer's decoder protocol).
        .target(name: "ImageIO", dependencies: ["GraphIR", "Tensors", "CPNG"], swiftSettings: optimised),

        // ---- The inverse-set sampler -----------------------------------------
        .target(name: "Sampler", dependencies: ["Runtime", "GraphIR"], swiftSettings: optimised),

        // ---- The sampler's files: pipelines, datasets, sample folders, reports --
        .target(name: "SamplerIO", dependencies: ["CaffeImport", "GraphIR", "Runtime", "Layers", "ImageIO", "Sampler"],
                swiftSettings: optimised),

        // ---- Command-line tool -------------------------------------------------
        .executableTarget(name: "InverseSetCLI",
                          dependencies: ["CaffeImport", "GraphIR", "Runtime", "Layers", "ImageIO", "Sampler", "SamplerIO",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: optimised,
                          // Export the runtime's symbols so that layer plugins loaded with
                          // dlopen bind to the tool's own registry and Layer types.
                          linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"])]),

        // ---- Example layer plugins (dynamic libraries, loaded with --plugin) --
        .target(name: "SSDLayersPlugin", dependencies: ["Runtime", "GraphIR"], path: "Plugins/SSDLayers",
                swiftSettings: optimised),
        .target(name: "MishPlugin", dependencies: ["Runtime", "GraphIR"], path: "Plugins/Mish",
                swiftSettings: optimised),

        .target(name: "OldABITestPlugin", path: "Tests/PluginFixtures/OldABI"),
        .target(name: "NoVersionTestPlugin", path: "Tests/PluginFixtures/NoVersion"),

        // ---- Fuzzing (Tests/Fuzz, tools/fuzz.sh) -----------------------------------
        .executableTarget(name: "FuzzInputs", dependencies: ["CaffeImport", "GraphIR", "Runtime", "Layers", "ImageIO"],
                          path: "Tests/Fuzz", swiftSettings: optimised),

        // ---- Tests --------------------------------------------------------------
        .target(name: "TestSupport", dependencies: ["Runtime", "GraphIR", "CaffeImport", "Layers"],
                path: "Tests/TestSupport"),
        .testTarget(name: "InverseSetTests",
                    dependencies: ["TestSupport", "CaffeImport", "GraphIR", "Runtime", "Layers", "ImageIO", "Sampler", "SamplerIO"],
                    path: "Tests/InverseSetTests",
                    linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"])]),
    ],
    swiftLanguageModes: [.v5]
)
