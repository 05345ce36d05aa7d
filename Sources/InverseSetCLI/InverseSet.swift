import ArgumentParser
import Foundation
import GraphIR
import Runtime

@main
struct InverseSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inverse-set",
        abstract: "Import Caffe models, run them with autodiff, and sample the inverse set of a neuron.",
        discussion: "Example: inverse-set sample --neuron fc8:7 --range 10:15 --out out/sneaker",
        version: BuildInfo.versionLine,
        subcommands: [Inspect.self, Run.self, Init.self, SampleCommand.self, EvaluateCommand.self, StatsCommand.self, AtlasCommand.self, DiversityCommand.self, Bench.self, Train.self, TrainGenerator.self, Score.self, ListLayers.self])
}

/// The tool's name and version, recorded in every sample folder.
let toolVersion = "inverse-set 0.2"

extension InverseSet {
    /// Parses the command line after `negativeValuesJoined`, so that
    /// `--range -2:3` reads as written.
    static func main() {
        main(negativeValuesJoined(Array(CommandLine.arguments.dropFirst())))
    }

    /// `--option -2:3` -> `--option=-2:3`: ArgumentParser takes a word that
    /// starts with '-' for an option, so a negative value after a long option
    /// would otherwise need the `=` form.
    static func negativeValuesJoined(_ args: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" { out += args[i...]; break }
            if a.hasPrefix("--"), !a.contains("="), i + 1 < args.count, looksNegative(args[i + 1]) {
                out.append(a + "=" + args[i + 1]); i += 2; continue
            }
            out.append(a); i += 1
        }
        return out
    }

    /// "-2:3", "-0.5", "-1,2": a value, not an option.
    static func looksNegative(_ s: String) -> Bool {
        guard s.hasPrefix("-"), s.count > 1 else { return false }
        let next = s[s.index(after: s.startIndex)]
        return next.isNumber || next == "."
    }
}

extension String {
    /// Help text as paragraphs: the lines of each paragraph joined with
    /// spaces, so that ArgumentParser wraps them at the terminal's width
    /// instead of keeping the source's line breaks (ragged lines). A line that
    /// starts with spaces (a code or JSON sample) keeps its own line.
    var reflowed: String {
        var out: [String] = []
        for line in split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if let last = out.last, !last.isEmpty, !line.isEmpty, !line.hasPrefix(" "), !last.hasPrefix(" ") {
                out[out.count - 1] = last + " " + line
            } else {
                out.append(line)
            }
        }
        return out.joined(separator: "\n")
    }
}

/// Options every subcommand takes.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("plugin"), help: "Load a layer plugin library at start-up (repeatable). Also read from INVERSE_SET_PLUGINS (colon-separated).")
    var plugins: [String] = []

    @Option(help: "Compute threads for the GEMMs and the parallel kernels (default: all cores).")
    var threads: Int?

    /// --threads (at least 1), else all cores: what the nets a command builds compute on.
    var computeThreads: Int { max(1, threads ?? defaultComputeThreads) }

    /// The registry with built-ins and every plugin loaded.
    func makeRegistry() throws -> LayerRegistry {
        try Toolbox.registry(plugins: plugins)
    }
}

/// `--allow-missing-weights`, for the commands that take --weights.
struct MissingWeightsOption: ParsableArguments {
    @Flag(name: .customLong("allow-missing-weights"),
          help: "With --weights: let layers the weights files do not cover start from their fillers (fine-tuning, net surgery) instead of refusing the files.")
    var allowMissingWeights = false
}

/// Runs `body`, turning any error into a one-line message on stderr and exit
/// code 1. The message is clipped and its control characters escaped: it may
/// quote what a file holds.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let e as ExitCode { throw e } catch let e as CleanExit { throw e } catch {
        FileHandle.standardError.write(Data("inverse-set: error: \("\(error)".clippedForDisplay(limit: 4_000))\n".utf8))
        throw ExitCode(1)
    }
}
