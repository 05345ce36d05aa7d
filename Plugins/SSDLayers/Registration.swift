import GraphIR
import Runtime

// The SSD-family layers of Wei Liu's Caffe fork (github.com/weiliu89/caffe,
// branch ssd), as an InverseSet layer plugin:
//
//     swift build -c release --product SSDLayersPlugin
//     inverse-set layers --plugin .build/release/libSSDLayersPlugin.so
//
// Types: Permute (PermuteLayer.swift), Normalize (NormalizeLayer.swift),
// PriorBox (PriorBoxLayer.swift). Their parameters (`permute_param`,
// `norm_param`, `prior_box_param`) are not in InverseSet's caffe.proto; they
// arrive as untyped parameter trees and are read with the ParamMessage
// accessors, with the fork's defaults written out in each layer.

/// The plugin ABI version this library was built against (checked by the host first).
@_cdecl("inverse_set_plugin_abi_version")
public func ssdLayersPluginABIVersion() -> Int32 { PluginABI.version }

/// Registers Permute, Normalize and PriorBox, each with `origin` (the path of
/// this library) so `inverse-set layers` shows where they come from.
@_cdecl("inverse_set_plugin_register")
public func ssdLayersPluginRegister(_ registry: UnsafeMutableRawPointer, _ origin: UnsafePointer<CChar>) -> Int32 {
    PluginABI.register(registry, origin) { registry, origin in
        try registry.register("Permute", origin: origin) { try PermuteLayer($0) }
        try registry.register("Normalize", origin: origin) { try NormalizeLayer($0) }
        try registry.register("PriorBox", origin: origin) { try PriorBoxLayer($0) }
    }
}
