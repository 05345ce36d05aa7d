import ArgumentParser
import Foundation
import Runtime

@main
struct InverseSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inverse-set",
        abstract: "Import Caffe models, run them with autodiff, and sample the inverse set of a neuron.",
        subcommands: [Inspect.self, Run.self, Init.self, SampleCommand.self, EvaluateCommand.self, StatsCommand.self, DiversityCommand.self, Bench.self, Train.self, Score.self, ListLayers.self])
}

/// The tool's name and version, recorded in every sample folder.
let toolVersion = "inverse-set 0.2"

/// Options every subcommand takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("plugin"), help: "Load a layer plugin library at start-up (repeatable). Also read from INVERSE_SET_PLUGINS (colon-separated).")
    var plugins: [String] = []

    @Option(help: "Compute threads for the GEMMs and the parallel kernels (default: all cores).")
    var threads: Int?

    /// The registry with built-ins and every plugin loaded.
    func makeRegistry() throws -> LayerRegistry {
        if let t = threads { setComputeThreads(t) }
        return try Toolbox.registry(plugins: plugins)
    }
}

/// Runs `body`, turning any error into a one-line message on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ExitCode { throw e } catch let e as CleanExit { throw e } catch {
        FileHandle.standardError.write(Data("inverse-set: error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}
