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

        Adversarial training (DeepSiM's): with --discriminator D_SOLVER, the solver file is the
        generator's; each round the discriminator learns real (label 1) from generated (label 0)
        images, then the generator learns from its own losses plus --adversarial-weight times
        the discriminator's loss on its images labelled real. The rule --balance pauses a net
        while it is far ahead (docs/adversarial-training.md). Snapshots write both nets and
        <prefix>_round_N.adversarial.json, which --resume takes.

        Example: inverse-set train Models/fashion/classifier_solver.prototxt
        """.reflowed)

    @Argument(help: "Solver definition (.prototxt, caffe.SolverParameter).") var solver: String
    @Option(help: "Initial weights (.caffemodel), copied by layer name; comma-separated for several.") var weights: String?
    @Option(help: "Resume from a .solverstate written by a snapshot (with --discriminator: the <prefix>_round_N.adversarial.json).") var resume: String?
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    @Option(name: .customLong("discriminator"),
            help: "Train adversarially: the discriminator's solver (.prototxt). Its net reads Input blobs 'data' and 'label' (1 = real, 0 = generated).")
    var discriminatorSolver: String?
    @Option(help: "With --discriminator: the generator net's blob of generated images.") var generated = "gen"
    @Option(help: "With --discriminator: the generator net's blob of real images.") var real = "data"
    @Option(help: "With --discriminator: weight of the generator's adversarial loss.") var adversarialWeight: Float = 1
    @Option(help: "With --discriminator: DeepSiM's balancing rule LOW:RESUME:HIGH, or 'off'.") var balance = "0.1:0.5:10"
    @Option(help: "With --discriminator: initial discriminator weights (.caffemodel).") var discriminatorWeights: String?

    func run() throws {
        try reportingErrors {
            if weights != nil && resume != nil {
                throw RuntimeError.input("give --weights to fine-tune or --resume to continue training, not both")
            }
            let registry = try common.makeRegistry()
            if let discriminatorSolver {
                try trainAdversarially(discriminatorSolver, registry: registry)
                return
            }
            let solver = try TrainingFiles.solver(solver, weights: weights, registry: registry,
                                                  allowMissingWeights: missingWeights.allowMissingWeights,
                                                  threads: common.computeThreads)
            if let resume {
                let (state, learned) = try TrainingFiles.readState(resume, net: solver.trainGraph)
                try solver.solver.restore(state, weights: learned, file: resume)
                solver.solver.log("Resuming from \(resume) at iteration \(state.iter)")
            }
            let s = solver.solver
            let interrupt = Interrupt { s.requestStop() }
            defer { interrupt.cancel() }
            try s.solve()
            let (model, state) = s.snapshotPaths
            var summary: [String: Any] = ["iter": s.iter, "loss": Double(s.smoothedLoss)]
            if s.config.snapshotAfterTrain || (s.config.snapshot > 0 && s.iter % s.config.snapshot == 0) {
                summary["caffemodel"] = model
                summary["solverstate"] = state
            }
            var tests_: [[String: Double]] = []
            for scores in s.lastTestScores where !scores.isEmpty {
                var d: [String: Double] = [:]
                for s in scores { d[s.name] = Double(s.value) }
                tests_.append(d)
            }
            if !tests_.isEmpty { summary["test"] = tests_ }
            try printJSON(summary)
        }
    }

    private func printJSON(_ summary: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// `train G_SOLVER --discriminator D_SOLVER`: the two solvers alternate
    /// (AdversarialTrainer); --resume takes the run's .adversarial.json.
    private func trainAdversarially(_ dSolverFile: String, registry: LayerRegistry) throws {
        let rule = try AdversarialBalance(parsing: balance)
        guard adversarialWeight.isFinite, adversarialWeight >= 0 else {
            throw RuntimeError.input("--adversarial-weight must be a number >= 0, got \(adversarialWeight)")
        }
        let g = try TrainingFiles.solver(solver, weights: weights, registry: registry,
                                         allowMissingWeights: missingWeights.allowMissingWeights,
                                         externalSeeds: [generated], threads: common.computeThreads)
        let d = try TrainingFiles.solver(dSolverFile, weights: discriminatorWeights, registry: registry,
                                         allowMissingWeights: missingWeights.allowMissingWeights,
                                         threads: common.computeThreads)
        guard g.solver.config.snapshotPrefix != d.solver.config.snapshotPrefix else {
            throw RuntimeError.input("the generator's and the discriminator's solvers share snapshot_prefix '\(g.solver.config.snapshotPrefix)'; give them different ones, or their snapshots overwrite each other")
        }
        let trainer = try AdversarialTrainer(generator: g.solver, discriminator: d.solver, generated: generated,
                                             real: real, adversarialWeight: adversarialWeight, balance: rule)
        trainer.writeState = TrainingFiles.writeJSON
        if let resume {
            guard resume.hasSuffix(".adversarial.json") else {
                throw RuntimeError.input("with --discriminator, --resume takes the run state <prefix>_round_N.adversarial.json that a snapshot wrote (it names both .solverstate files), not \(resume)")
            }
            let state: AdversarialState
            do {
                state = try JSONDecoder().decode(AdversarialState.self, from: try Data(contentsOf: URL(fileURLWithPath: resume)))
            } catch {
                throw RuntimeError.input("cannot read the adversarial run state \(resume): \(error)")
            }
            for (solver, graph, path) in [(g.solver, g.trainGraph, state.generatorState), (d.solver, d.trainGraph, state.discriminatorState)] {
                let (s, learned) = try TrainingFiles.readState(path, net: graph)
                try solver.restore(s, weights: learned, file: path)
            }
            trainer.adversarialWeight = state.adversarialWeight
            try trainer.restore(state, file: resume)
            trainer.log("Resuming from \(resume) at round \(state.round) (generator iteration \(g.solver.iter), discriminator iteration \(d.solver.iter))")
        }
        let interrupt = Interrupt { trainer.requestStop() }
        defer { interrupt.cancel() }
        try trainer.train()
        var summary: [String: Any] = [
            "round": trainer.round, "generator_iter": g.solver.iter, "discriminator_iter": d.solver.iter,
            "generator_caffemodel": g.solver.snapshotPaths.model, "discriminator_caffemodel": d.solver.snapshotPaths.model,
            "train_generator": trainer.balance.trainGenerator, "train_discriminator": trainer.balance.trainDiscriminator,
        ]
        if let state = trainer.lastState { summary["state"] = state }
        try printJSON(summary)
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

    /// A solver from its file, Caffe's way: the nets it names, weights from
    /// its `weights` fields and `weights` (comma-separated), a writable
    /// snapshot prefix, and the snapshot writer attached.
    static func solver(_ file: String, weights: String?, registry: LayerRegistry, allowMissingWeights: Bool,
                       externalSeeds: [String] = [], threads: Int) throws -> (solver: Solver, trainGraph: Graph) {
        var tree = try CaffeModel.readPrototxt(file, schema: CaffeSchemaRegistry.shared.solverParameter)
        try defaultSnapshotPrefix(&tree, solverFile: file)
        let config = try SolverConfig(tree)
        var (train, tests) = try nets(tree, solverFile: file)
        let initial = try tree.strings("weights") + Toolbox.weightFiles(weights)
        for w in initial {
            try CaffeModel.attachWeights(&train, from: w)
            for k in tests.indices { try CaffeModel.attachWeights(&tests[k], from: w) }
        }
        if config.snapshot > 0 || config.snapshotAfterTrain { try checkWritable(prefix: config.snapshotPrefix) }
        let solver = try Solver(config: config, trainGraph: train, testGraphs: tests, registry: registry,
                                allowMissingWeights: allowMissingWeights, externalSeeds: externalSeeds, threads: threads)
        Toolbox.warnAboutWeights(train)
        if !initial.isEmpty { Toolbox.noteFilledLayers(solver.net, seed: solver.seed) }
        solver.snapshotWriter = snapshotWriter()
        return (solver, train)
    }

    /// Writes a value as JSON (an adversarial run state).
    static func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { try encoder.encode(value).write(to: URL(fileURLWithPath: path)) } catch {
            throw RuntimeError.input("cannot write \(path): \(error.localizedDescription)")
        }
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
