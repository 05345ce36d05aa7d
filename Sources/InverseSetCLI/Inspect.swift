import ArgumentParser
import CaffeImport
import Foundation
import GraphIR
import Runtime

/// `inverse-set inspect NET.prototxt [--weights W] [--json]`
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a network's layers, shapes, parameter counts and multiply-adds.",
        discussion: """
        The JSON form (--json) is one object:
          {"name": str, "inputs": {blob: shape},
           "layers": [{"name", "type", "inputs": [blob], "outputs": [blob],
                       "output_shapes": [[int]], "parameters": int, "macs": int,
                       "notes": [str]}],
           "blobs": {blob: shape}, "parameters": int, "macs": int}
        "parameters" counts learnable values (shared blobs once); "macs" counts the
        multiply-adds of one forward pass per sample (the declared batch divided
        out, as papers quote it); "batch" is that declared batch size and
        "macs_batch" the multiply-adds at the declared shapes.

        Example: inverse-set inspect Models/caffenet/deploy.prototxt
        """.reflowed)

    @Argument(help: "Network definition (.prototxt).") var prototxt: String
    @Option(help: "Trained weights (.caffemodel), checked against the definition.") var weights: String?
    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            let registry = try common.makeRegistry()
            let graph = try Toolbox.load(prototxt, weights: weights)
            let net = try Net(graph: graph, registry: registry, lazyParameters: weights == nil,
                              allowMissingWeights: missingWeights.allowMissingWeights, threads: common.computeThreads)
            Toolbox.warnAboutWeights(net.graph)
            if weights == nil {
                Toolbox.note("no --weights given: parameter counts only; run and sample would use random weights from the fillers")
            }
            let report = InspectReport(net: net)
            print(json ? report.json() : report.table())
        }
    }
}

struct InspectReport {
    struct Row {
        var name: String, type: String, inputs: [String], outputs: [String]
        var shapes: [Shape], parameters: Int, macs: Int, notes: [String]
    }
    var rows: [Row] = []
    var name: String
    var inputs: [(String, Shape)]
    var blobs: [(String, Shape)]
    var totalParameters = 0
    var totalMacs = 0
    /// Batch size of the declared inputs (first axis of the first input).
    var batch = 1

    init(net: Net) {
        let g = net.graph
        name = g.name
        inputs = g.inputs.map { (g.values[$0.index].blob, net.shapes[$0.index]) }
        // The batch: of the first input, or of the first data layer's first top.
        let firstShape = inputs.first?.1 ?? g.nodes.first?.outputs.first.map { net.shapes[$0.index] }
        if let first = firstShape, first.rank > 0, first.dims[0] > 0 { batch = first.dims[0] }
        var seenShared = Set<String>()
        for (i, node) in g.nodes.enumerated() {
            let layer = net.layers[i]
            var params = 0
            for (j, s) in layer.parameterShapes.enumerated() {
                if j < node.paramSpecs.count, let n = node.paramSpecs[j].name, !n.isEmpty {
                    guard seenShared.insert(n).inserted else { continue }
                }
                params += s.count
            }
            var notes: [String] = []
            if let described = layer as? any DescribesBehaviour { notes = described.notes }
            rows.append(Row(name: node.name, type: node.type,
                            inputs: node.inputs.map { g.values[$0.index].blob },
                            outputs: node.outputs.map { g.values[$0.index].blob },
                            shapes: node.outputs.map { net.shapes[$0.index] },
                            parameters: params, macs: layer.macs / batch, notes: notes))
            totalParameters += params
            totalMacs += layer.macs / batch
        }
        var latest: [String: Shape] = [:]
        var order: [String] = []
        for (i, v) in g.values.enumerated() {
            if latest[v.blob] == nil { order.append(v.blob) }
            latest[v.blob] = net.shapes[i]
        }
        blobs = order.map { ($0, latest[$0]!) }
    }

    static func grouped(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, c) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return String(out.reversed())
    }

    func table() -> String {
        var lines: [[String]] = [["layer", "type", "inputs -> outputs", "output shape", "params", batch == 1 ? "MACs" : "MACs/sample"]]
        // Names from the file are clipped (and control characters escaped) so
        // that one 8 MB name cannot widen every row of the table; --json keeps them whole.
        for r in rows {
            let flow = r.inputs.map { $0.clippedForDisplay(limit: 40) }.joined(separator: ",") + " -> "
                + r.outputs.map { $0.clippedForDisplay(limit: 40) }.joined(separator: ",")
            lines.append([r.name.clippedForDisplay(limit: 60), r.type.clippedForDisplay(limit: 40), flow.clippedForDisplay(limit: 120),
                          r.shapes.map(\.description).joined(separator: " "),
                          r.parameters == 0 ? "" : Self.grouped(r.parameters), r.macs == 0 ? "" : Self.grouped(r.macs)])
        }
        lines.append(["total", "", "", "", Self.grouped(totalParameters), Self.grouped(totalMacs)])
        let widths = (0..<6).map { c in lines.map { $0[c].count }.max() ?? 0 }
        var out = name.isEmpty ? "" : "net \(name.clippedForDisplay())\n"
        for (k, l) in lines.enumerated() {
            if k == lines.count - 1 { out += String(repeating: "-", count: widths.reduce(0, +) + 10) + "\n" }
            out += l.enumerated().map { c, s in
                c >= 4 ? String(repeating: " ", count: widths[c] - s.count) + s : s.padding(toLength: widths[c], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
            if k == 0 { out += String(repeating: "-", count: widths.reduce(0, +) + 10) + "\n" }
        }
        for r in rows { for n in r.notes { out += "note: \(r.name.clippedForDisplay(limit: 60)): \(n)\n" } }
        return out
    }

    func json() -> String {
        func shape(_ s: Shape) -> [Int] { s.dims }
        let obj: [String: Any] = [
            "name": name,
            "inputs": Dictionary(uniqueKeysWithValues: inputs.map { ($0.0, shape($0.1)) }),
            "layers": rows.map { r -> [String: Any] in
                ["name": r.name, "type": r.type, "inputs": r.inputs, "outputs": r.outputs,
                 "output_shapes": r.shapes.map(shape), "parameters": r.parameters, "macs": r.macs, "notes": r.notes]
            },
            "blobs": Dictionary(uniqueKeysWithValues: blobs.map { ($0.0, shape($0.1)) }),
            "parameters": totalParameters,
            "macs": totalMacs,
            "batch": batch,
            "macs_batch": totalMacs * batch,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
