import ArgumentParser
import CaffeImport
import Dispatch
import Foundation
import GraphIR
import ImageIO
import Runtime

/// `inverse-set train SOLVER.prototxt [--weights INIT.caffemodel] [--resume STATE.solverstate]`
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a network with a Caffe solver file (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam).",
        discussion: """
        Caffe's semantics: the nets come from net / net_param (TRAIN phase for training, TEST for
        each test_iter) or train_net + test_net; paths in the solver (net, snapshot_prefix) are
        relative to the current directory. Snapshots are <prefix>_iter_N.caffemodel and
        <prefix>_iter_N.solverstate; --resume continues from a .solverstate (its learned_net is
        loaded too). Without snapshot_prefix, the solver file's path without extension is the
        prefix; a folder as prefix gets the solver file's name appended.
        Progress (iteration, loss, lr, it/s, ETA) and test scores go to stderr. Ctrl-C stops after
        the current iteration and writes a snapshot (a second Ctrl-C exits at once).

        Example: inverse-set train Models/fashion/classifier_solver.prototxt
        """.reflowed)

    @Argument(help: "Solver definition (.prototxt, caffe.SolverParameter).") var solver: String
    @Option(help: "Initial weights (.caffemodel), copied by layer name; comma-separated for several.") var weights: String?
    @Option(help: "Resume from a .solverstate written by a snapshot.") var resume: String?
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            if weights != nil && resume != nil {
                throw RuntimeError.input("give --weights to fine-tune or --resume to continue training, not both")
            }
            let registry = try common.makeRegistry()
            var tree = try CaffeModel.readPrototxt(solver, schema: CaffeSchemaRegistry.shared.solverParameter)
            try TrainingFiles.defaultSnapshotPrefix(&tree, solverFile: solver)
            let config = try SolverConfig(tree)
            var (train, tests) = try TrainingFiles.nets(tree, solverFile: solver)
            var initial = try tree.strings("weights")
            initial += Toolbox.weightFiles(weights)
            for w in initial {
                try CaffeModel.attachWeights(&train, from: w)
                for k in tests.indices { try CaffeModel.attachWeights(&tests[k], from: w) }
            }
            if config.snapshot > 0 || config.snapshotAfterTrain {
                try TrainingFiles.checkWritable(prefix: config.snapshotPrefix)
            }
            let solver = try Solver(config: config, trainGraph: train, testGraphs: tests, registry: registry,
                                    allowMissingWeights: missingWeights.allowMissingWeights, threads: common.computeThreads)
            Toolbox.warnAboutWeights(train)
            if !initial.isEmpty { Toolbox.noteFilledLayers(solver.net, seed: solver.seed) }
            solver.snapshotWriter = TrainingFiles.snapshotWriter()
            if let resume {
                let (state, learned) = try TrainingFiles.readState(resume, net: train)
                try solver.restore(state, weights: learned, file: resume)
                solver.log("Resuming from \(resume) at iteration \(state.iter)")
            }
            let interrupt = Interrupt { solver.requestStop() }
            defer { interrupt.cancel() }
            try solver.solve()
            let (model, state) = solver.snapshotPaths
            var summary: [String: Any] = ["iter": solver.iter, "loss": Double(solver.smoothedLoss)]
            if config.snapshotAfterTrain || (config.snapshot > 0 && solver.iter % config.snapshot == 0) {
                summary["caffemodel"] = model
                summary["solverstate"] = state
            }
            var tests_: [[String: Double]] = []
            for scores in solver.lastTestScores where !scores.isEmpty {
                var d: [String: Double] = [:]
                for s in scores { d[s.name] = Double(s.value) }
                tests_.append(d)
            }
            if !tests_.isEmpty { summary["test"] = tests_ }
            let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

/// SIGINT: the first asks the solver to stop (it snapshots), the second exits.
final class Interrupt: @unchecked Sendable {
    private let source: DispatchSourceSignal
    private var count = 0

    init(_ onFirst: @escaping () -> Void) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [unowned self] in
            self.count += 1
            if self.count == 1 {
                FileHandle.standardError.write(Data("inverse-set: interrupted; stopping after this iteration and writing a snapshot (Ctrl-C again to quit now)\n".utf8))
                onFirst()
            } else {
                exit(130)
            }
        }
        source.resume()
    }

    func cancel() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}

/// File handling of training: which nets a solver names, snapshots, states.
enum TrainingFiles {
    /// Newer BVLC Caffe's UpgradeSnapshotPrefixProperty: no snapshot_prefix
    /// means the solver file's path without extension; a folder means
    /// folder/solver-file-name.
    static func defaultSnapshotPrefix(_ tree: inout ParamMessage, solverFile: String) throws {
        let withoutExtension = (solverFile as NSString).deletingPathExtension
        guard tree.has("snapshot_prefix") else {
            tree.set("snapshot_prefix", .string(withoutExtension))
            return
        }
        let prefix = try tree.string("snapshot_prefix")
        var isDir: ObjCBool = false
        if prefix.hasSuffix("/") || (FileManager.default.fileExists(atPath: prefix, isDirectory: &isDir) && isDir.boolValue) {
            let stem = (withoutExtension as NSString).lastPathComponent
            tree.set("snapshot_prefix", .string((prefix.hasSuffix("/") ? prefix : prefix + "/") + stem))
        }
    }

    /// Caffe's CheckSnapshotWritePermissions: fail now, not after hours.
    static func checkWritable(prefix: String) throws {
        let probe = prefix + "_iter_0.tempfile"
        guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
            throw RuntimeError.input("cannot write to snapshot prefix '\(prefix)': make sure the folder exists and is writable")
        }
        try? FileManager.default.removeItem(atPath: probe)
    }

    /// The training graph and the test graphs of a solver, by Caffe's rules
    /// (Solver::InitTrainNet, InitTestNets): exactly one of train_net_param,
    /// train_net, net_param, net for training (phase TRAIN); test nets from
    /// test_net_param, then test_net files, then one copy of net_param or
    /// net per remaining test_iter (phase TEST). NetStates merge as in Caffe:
    /// the phase, then the net's own state, then train_state / test_state.
    static func nets(_ p: ParamMessage, solverFile: String) throws -> (Graph, [Graph]) {
        let sources = ["train_net_param", "train_net", "net_param", "net"].filter { p.has($0) }
        guard sources.count == 1 else {
            throw SolverError.invalid(field: "net", location: p.location,
                sources.isEmpty ? "is not set: give the training net with net: \"FILE\" (or train_net, net_param, train_net_param)"
                                : "is given more than once (\(sources.joined(separator: ", "))); give exactly one training net")
        }
        func netTree(_ field: String, _ value: ParamValue) throws -> (ParamMessage, String) {
            switch value {
            case .message(let m): return (try CaffeModel.upgrade(m, file: solverFile), solverFile)
            case .string(let path), .identifier(let path):
                return (try CaffeModel.upgrade(try CaffeModel.readPrototxt(path), file: path), path)
            default:
                throw SolverError.invalid(field: field, location: p.location(of: field), "must be a file name or a net, got \(value)")
            }
        }
        func graph(_ tree: ParamMessage, file: String, phase: String, extra: ParamMessage?) throws -> Graph {
            var state = NetState(phase: phase)
            var def = tree
            let own = def.message("state")
            if own.has("phase") { state.phase = try own.enumName("phase") }
            if own.has("level") { state.level = try own.int("level") }
            state.stages += try own.strings("stage")
            if let extra {
                if extra.has("level") { state.level = try extra.int("level") }
                state.stages += try extra.strings("stage")
                if extra.has("phase") { state.phase = try extra.enumName("phase") }
            }
            def.remove("state")
            return try CaffeModel.buildGraph(def, state: state, file: file)
        }

        let trainField = sources[0]
        guard let trainValue = p.value(trainField) else { throw SolverError.training("no training net") }
        let (trainTree, trainFile) = try netTree(trainField, trainValue)
        let train = try graph(trainTree, file: trainFile, phase: "TRAIN",
                              extra: p.has("train_state") ? p.message("train_state") : nil)

        var testDefs: [(ParamMessage, String)] = []
        for v in p.values("test_net_param") { testDefs.append(try netTree("test_net_param", v)) }
        for v in p.values("test_net") { testDefs.append(try netTree("test_net", v)) }
        let testIter = try p.ints("test_iter")
        let generic = p.has("net_param") ? "net_param" : (p.has("net") ? "net" : nil)
        if let generic {
            guard testIter.count >= testDefs.count else {
                throw SolverError.invalid(field: "test_iter", location: p.location(of: "test_iter"),
                    "gives \(testIter.count) value(s) for \(testDefs.count) test nets; give one per test net")
            }
            if testIter.count > testDefs.count, let v = p.value(generic) {
                let t = try netTree(generic, v)
                for _ in testDefs.count..<testIter.count { testDefs.append(t) }
            }
        } else if testIter.count != testDefs.count {
            throw SolverError.invalid(field: "test_iter", location: p.location(of: "test_iter"),
                "gives \(testIter.count) value(s) for \(testDefs.count) test net(s) (test_net, test_net_param); give one per test net")
        }
        let states = p.messages("test_state")
        if !states.isEmpty && states.count != testDefs.count {
            throw SolverError.invalid(field: "test_state", location: p.location(of: "test_state"),
                "gives \(states.count) state(s) for \(testDefs.count) test nets; give none, or one per test net")
        }
        let tests = try testDefs.enumerated().map { k, d in
            try graph(d.0, file: d.1, phase: "TEST", extra: states.isEmpty ? nil : states[k])
        }
        return (train, tests)
    }

    static func snapshotWriter() -> SnapshotWriter {
        SnapshotWriter(writeWeights: CaffeModel.writeCaffemodel, writeState: CaffeModel.writeSolverState)
    }

    /// Reads a .solverstate and the weights of its learned_net (resolved
    /// against the current directory as Caffe does, else next to the state).
    static func readState(_ path: String, net: Graph) throws -> (SolverState, Graph?) {
        let state = try CaffeModel.readSolverState(path)
        guard let model = try CaffeModel.learnedNetPath(of: state, statePath: path) else { return (state, nil) }
        var g = net
        for i in g.nodes.indices { g.nodes[i].weights = [] }
        try CaffeModel.attachWeights(&g, from: model)
        return (state, g)
    }
}
