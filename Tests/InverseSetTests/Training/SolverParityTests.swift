import Foundation
import Testing
import CaffeImport
import GraphIR
import ImageIO
import Layers
import Runtime
import TestSupport

/// Training against real Caffe (Tests/Fixtures/solver, made by
/// tools/reference/solver_parity.py): the same net, initial weights and 20
/// batches per iteration sequence; every iteration's loss within 1e-3
/// relative, the final weights within 1e-3 (relative to max(1, max|ref|)),
/// and, where Caffe's own .solverstate is kept, the history blobs too.
struct SolverParityTests {
    static let root = Paths.root + "/Tests/Fixtures/solver"
    static let cases: [String] = {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter {
            fm.fileExists(atPath: root + "/" + $0 + "/meta.json")
        }.sorted()
    }()

    struct Run {
        var losses: [Float]
        var solver: Solver
        var graph: Graph
    }

    /// Trains a case for 20 iterations, batch iteration * iter_size + pass.
    static func run(_ name: String, registry: LayerRegistry) throws -> Run {
        let dir = root + "/" + name
        let data = try NPY.read(root + "/data.npy"), labels = try NPY.read(root + "/labels.npy")
        let tree = try CaffeModel.readPrototxt(dir + "/solver.prototxt", schema: CaffeSchemaRegistry.shared.solverParameter)
        let config = try SolverConfig(tree)
        let graph = try CaffeModel.load(prototxt: dir + "/net.prototxt", weights: root + "/init.caffemodel",
                                        state: NetState(phase: "TRAIN"))
        let solver = try Solver(config: config, trainGraph: graph, registry: registry, seed: 1)
        solver.log = { _ in }
        let per = data.count / data.shape[0], n = labels.shape[1]
        let batchShape = Shape(Array(data.shape.dims.dropFirst()))
        solver.feeder = { req in
            let b = req.iteration * config.iterSize + req.pass
            guard b < data.shape[0] else { throw RuntimeError.input("the fixture has no batch \(b)") }
            return ["data": Tensor(shape: batchShape, values: Array(data.array[(b * per)..<((b + 1) * per)])),
                    "label": Tensor(shape: [n], values: Array(labels.array[(b * n)..<((b + 1) * n)]))]
        }
        var losses: [Float] = []
        solver.onIteration = { losses.append($0.loss) }
        try solver.step(20)
        return Run(losses: losses, solver: solver, graph: graph)
    }

    /// Losses, final weights and (when present) Caffe's history blobs.
    static func compare(_ name: String, _ run: Run, layers: String) throws {
        let dir = root + "/" + name
        let ref = try NPY.read(dir + "/losses.npy").array
        #expect(run.losses.count == ref.count)
        var worst = 0.0
        for (i, (a, b)) in zip(run.losses, ref).enumerated() {
            let rel = Double(abs(a - b)) / Double(abs(b))
            worst = max(worst, rel)
            #expect(rel <= 1e-3, "\(name) iteration \(i): loss \(a), Caffe \(b) (relative \(rel))")
        }
        var final = run.graph
        try CaffeModel.attachWeights(&final, from: dir + "/final.caffemodel")
        for blob in run.solver.learnable {
            let want = try #require(final.node(named: blob.layer)?.weights[blob.index]).data
            let err = relativeError(blob.tensor.array, want)
            #expect(err <= 1e-3, "\(name): \(blob.layer) blob \(blob.index) differs by \(err)")
        }
        let statePath = dir + "/caffe.solverstate"
        if FileManager.default.fileExists(atPath: statePath) {
            let state = try CaffeModel.readSolverState(statePath)
            #expect(state.iter == 20)
            #expect(state.history.count == run.solver.history.count)
            for (h, refBlob) in zip(run.solver.history, state.history) {
                let scale = Double(refBlob.data.map { abs($0) }.max() ?? 0)
                let diff = zip(refBlob.data, h.array).map { Double(abs($0 - $1)) }.max() ?? 0
                #expect(diff <= 1e-3 * max(scale, 1e-12), "\(name): history blob differs by \(diff) (scale \(scale))")
            }
        }
        print("solver parity \(name) (\(layers) layers): worst loss difference \(String(format: "%.2e", worst)) relative over \(ref.count) iterations")
    }

    @Test("fixtures exist") func fixturesExist() {
        #expect(Self.cases.count >= 3, "\(Self.cases)")
        for required in ["sgd_step", "nesterov_itersize2", "adam_clip"] { #expect(Self.cases.contains(required)) }
    }

    @Test("matches real Caffe with the built-in layers", arguments: cases)
    func matchesCaffe(_ name: String) throws {
        try Self.compare(name, try Self.run(name, registry: try builtinRegistry()), layers: "built-in")
    }

    @Test("matches real Caffe with plain-loop reference layers", arguments: cases)
    func matchesCaffeWithReferenceLayers(_ name: String) throws {
        try Self.compare(name, try Self.run(name, registry: try ReferenceLayers.registry()), layers: "reference")
    }
}
