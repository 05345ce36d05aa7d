import CaffeImport
import GraphIR
import Runtime
import Layers
import Foundation

let args = CommandLine.arguments
do {
    let g = try CaffeModel.load(prototxt: args[1], weights: args.count > 2 ? args[2] : nil)
    for n in g.nodes { print(n.name, n.type, n.inputs, n.outputs, n.weights.map { $0.shape }) }
    let reg = try builtinRegistry()
    let net = try Net(graph: g, registry: reg)
    for (i, v) in g.values.enumerated() { print(v.blob, v.version, net.shapes[i]) }
} catch {
    print("error: \(error)")
}
