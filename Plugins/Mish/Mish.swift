import _Differentiation
import Foundation
import GraphIR
import Runtime

// Mish (Misra 2019): y = x * tanh(softplus(x)), softplus(x) = log(1 + e^x),
// written only as a differentiable function: the backward pass is derived by
// the compiler (see Runtime/DifferentiableLayer.swift).
//
//     layer { name: "act" type: "Mish" bottom: "x" top: "y" }
//
// For large x, log(1 + e^x) = x + log(1 + e^-x) keeps exp from overflowing.

@differentiable(reverse)
func softplus(_ x: Float) -> Float {
    x > 0 ? x + log(1 + exp(-x)) : log(1 + exp(x))
}

@differentiable(reverse)
func mish(_ x: Float) -> Float { x * tanh(softplus(x)) }

@_cdecl("inverse_set_plugin_abi_version")
public func mishPluginABIVersion() -> Int32 { PluginABI.version }

@_cdecl("inverse_set_plugin_register")
public func mishPluginRegister(_ registry: UnsafeMutableRawPointer, _ origin: UnsafePointer<CChar>) -> Int32 {
    PluginABI.register(registry, origin) { registry, origin in
        try registry.registerElementwise("Mish", origin: origin, function: mish)
    }
}
