import ArgumentParser
import Foundation
import Runtime
import Sampler
import SamplerIO

/// `inverse-set atlas --layer BLOB [--units 0-255] --bands p90:p99,p99:max --out DIR`
struct AtlasCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atlas",
        abstract: "Sweep the units of a layer: one resumable sample folder per unit and an index over them.",
        discussion: """
        Bands are numbers (--bands 1:2,2:3) or percentiles of each unit over the dataset (--bands p90:p99,p99:max; min and max too), computed once for all units in one pass; a unit whose band is empty over the dataset is skipped and listed. Each unit gets DIR/units/<blob>_<unit>/ (a sample folder with its report); DIR/index.html and DIR/atlas.json index them. Rerunning the command resumes: finished units are never recomputed. Per-unit seeds derive from --seed and the unit, so a unit rerun alone (--units U) gives the same samples.

        Backends: local (default) runs --jobs worker processes here; slurm writes DIR/slurm/atlas.sbatch and submits it as one array job whose task i runs `inverse-set atlas --shard i/N --out DIR`, plus a job that merges the index when the array ends (afterany). --status DIR tells what is done, running, failed and pending; resubmitting the same command reruns only what is missing. See docs/atlas.md and docs/scaling.md.

        Example: inverse-set atlas --layer conv5 --units 0-15 --bands p95:p99.5 -n 40 --out out/atlas
        """.reflowed)

    @Option(help: "Pipeline file naming G, f, E and the dataset.") var pipeline: String = BuildInfo.defaultPipeline
    @Option(help: "Classifier blob to sweep (fc8, fc6, conv5, ...).") var layer: String?
    @Option(help: "Units, as ranges and lists (0-255, 0-9,17); default all.") var units: String?
    @Option(help: "For feature maps: centre (default), mean, or Y,X.") var position: String = "centre"
    @Option(help: "Bands, comma-separated LOW:HIGH: numbers, pNN percentiles over the dataset, min, max.") var bands: String?
    @Option(help: "Dataset for the percentiles and the evaluation (default: the pipeline's data.dataset).") var dataset: String?
    @Option(help: "Its split (default: the pipeline's evaluation split, test).") var split: String?
    @Option(name: .short, help: "Samples per unit and band.") var n: Int = 50
    @Option(name: .short, help: "Walkers.") var k: Int = 10
    @Option(help: "Seed of the sweep (each unit's seed is derived from it).") var seed: UInt64 = 0
    @Option(name: .customLong("max-steps"), help: "Steps per band before a unit gives up.") var maxSteps: Int = 3000
    @Option(help: "inverse-set, am or ppgn.") var method: String = "inverse-set"
    @Option(help: "inverse-set's variant: data or paper.") var variant: String = "data"
    @Option(name: .customLong("prior-count"), help: "Training images of the code prior.") var priorCount: Int = 10_000
    @Option(help: "Local worker processes (default: the cores divided by --threads).") var jobs: Int?
    @Option(help: "Compute threads per worker (1 keeps results identical across machines and backends).") var threads: Int = 1
    @Option(help: "local or slurm.") var backend: String = "local"
    @Option(help: "Slurm: partition.") var partition: String?
    @Option(help: "Slurm: time limit per task (e.g. 01:00:00).") var time: String = "01:00:00"
    @Option(name: .customLong("cpus-per-task"), help: "Slurm: CPUs per task (default: --threads).") var cpusPerTask: Int?
    @Option(help: "Slurm: memory per task (e.g. 4G).") var mem: String = "4G"
    @Option(name: .customLong("array-throttle"), help: "Slurm: at most this many tasks at once.") var arrayThrottle: Int?
    @Option(help: "Slurm: array tasks (default: one per unit still to do, at most 1000).") var tasks: Int?
    @Option(name: .customLong("sbatch-arg"), help: "Slurm: extra sbatch argument (repeatable).") var sbatchArgs: [String] = []
    @Flag(name: .customLong("dry-run"), help: "Slurm: print the batch scripts instead of submitting them.") var dryRun = false
    @Option(help: "Run shard I/N of the plan in DIR (what each worker and array task runs).") var shard: String?
    @Option(name: .customLong("todo"), help: .hidden) var todo: String?
    @Option(help: "Print what is done, running, failed and pending in DIR.") var status: String?
    @Option(help: "Merge the finished units of DIR into its index (the Slurm merge job).") var merge: String?
    @Option(help: "Output folder.") var out: String?
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            if let dir = status { return try printStatus(dir) }
            if let dir = merge {
                let index = try Atlas.merge(dir: dir)
                print("atlas: merged \(index.units.count) unit(s), \(index.failed.count) failed, \(index.pending.count) pending: \(dir)/index.html")
                return
            }
            guard let out else { throw SamplerError("give --out DIR (or --status DIR / --merge DIR)") }
            if let shard { return try runShard(shard, dir: out) }
            guard let layer else { throw SamplerError("give --layer BLOB, e.g. --layer conv5") }
            guard let bands else { throw SamplerError("give --bands, e.g. --bands p90:p99 or --bands 1:2,2:3") }
            guard n > 0, k > 0, threads > 0, (tasks ?? 1) > 0 else { throw SamplerError("-n, -k, --threads and --tasks must be positive") }
            guard ["local", "slurm"].contains(backend) else { throw SamplerError("--backend must be local or slurm, not '\(backend)'") }
            guard SampleRequest.Method(rawValue: method) != nil else { throw SamplerError("--method must be inverse-set, am or ppgn") }
            guard SamplerSettings.Variant(rawValue: variant) != nil else { throw SamplerError("--variant must be data or paper") }
            if backend == "slurm" && dryRun {
                print(try slurmScripts(dir: absolute(out), tasks: tasks ?? 1).joined(separator: "\n"))
                return
            }
            let registry = try common.makeRegistry()
            let loaded = try Toolbox.loadPipeline(pipeline, registry: registry, allowMissingWeights: missingWeights.allowMissingWeights,
                                                  threads: threads)
            let positionText = try Self.position(position)
            // No dataset: numeric bands only, and no evaluation (the paper's pipeline names none).
            let given = dataset ?? loaded.spec.data?.dataset.map(loaded.resolve) ?? ""
            let datasetPath = given.isEmpty ? "" : absolute(given)
            // Absolute, so that array tasks and workers started elsewhere find it.
            let draft = Atlas.Plan(pipeline: absolute(BuildInfo.pipeline(pipeline)), layer: layer, position: positionText, units: [], bandSpecs: [], bands: [],
                                   n: n, k: k, seed: seed, maxSteps: maxSteps, method: method, variant: variant,
                                   dataset: datasetPath, split: split ?? loaded.spec.data?.evaluation_split ?? "test",
                                   evaluationImages: 0, priorCount: priorCount, threads: threads)
            let plan = try Atlas.prepare(dir: out, plan: draft, unitsSpec: units, bandsSpec: bands, loaded: loaded) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            if backend == "slurm" { return try submit(plan: plan, dir: absolute(out)) }
            try runLocal(plan: plan, dir: out)
        }
    }

    /// The position as the plan records it.
    static func position(_ p: String) throws -> String {
        switch p {
        case "centre", "center": return "centre"
        case "mean": return "mean"
        default:
            let yx = p.split(separator: ",").compactMap { Int($0) }
            guard yx.count == 2, yx.allSatisfy({ $0 >= 0 }) else { throw SamplerError("--position must be centre, mean or Y,X, not '\(p)'") }
            return "\(yx[0]),\(yx[1])"
        }
    }

    func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// This executable's path, for workers and batch scripts.
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The plugin flags to pass on to workers.
    var pluginArguments: [String] { common.plugins.flatMap { ["--plugin", $0] } }

    // MARK: - Workers

    /// Runs the units of shard I/N that are not done yet; a failed unit is
    /// recorded (error.txt) and the others go on. Exit status 3 when a unit failed.
    func runShard(_ text: String, dir: String) throws {
        let parts = text.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] > 0, (0..<parts[1]).contains(parts[0]) else {
            throw SamplerError("--shard must be I/N with 0 <= I < N, not '\(text)'")
        }
        let plan = try Atlas.readPlan(dir)
        // Line by line into the worker's log (a file would otherwise get them at exit).
        setvbuf(stdout, nil, _IOLBF, 0)
        let registry = try common.makeRegistry()
        let loaded = try Toolbox.loadPipeline(plan.pipeline, registry: registry, allowMissingWeights: missingWeights.allowMissingWeights,
                                              threads: plan.threads)
        let cache = plan.dataset.isEmpty ? nil : try Atlas.Cache.read(from: dir + "/cache")
        // The evaluation images, read once for all of this worker's units.
        let evaluation = plan.dataset.isEmpty ? nil : try ImageDataset.load(plan.dataset, split: plan.split)
        // A Slurm resubmission deals out the units that were missing when it was
        // submitted (--todo FILE), not every unit of the plan.
        var units = Atlas.shard(plan, parts[0], of: parts[1])
        if let todo {
            guard let data = FileManager.default.contents(atPath: todo), let list = try? JSONDecoder().decode([Int].self, from: data) else {
                throw SamplerError("\(todo): missing or damaged; submit the atlas command again")
            }
            units = list.enumerated().filter { $0.offset % parts[1] == parts[0] }.map(\.element)
        }
        var failures = 0
        // Units another process is sampling (its folder lock is held) are left to it.
        for u in units where ![.done, .running].contains(Atlas.state(dir, plan: plan, unit: u)) {
            let started = Date()
            do {
                let r = try Atlas.runUnit(u, dir: dir, plan: plan, cache: cache, evaluation: evaluation, loaded: loaded, command: CommandLine.arguments,
                                          tool: toolVersion)
                print("atlas: unit \(u) done: \(r.accepted.map(String.init).joined(separator: "/")) samples in \(r.steps) steps, "
                      + String(format: "%.1f s of sampling, %.1f s in all", r.seconds, Date().timeIntervalSince(started)))
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("inverse-set: atlas: unit \(u) failed: \(error)\n".utf8))
            }
        }
        if failures > 0 { throw ExitCode(3) }
    }

    /// --jobs worker processes on this machine, one progress line, the index
    /// at the end and a summary of what failed.
    func runLocal(plan: Atlas.Plan, dir: String) throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let units = plan.runnable
        let workers = max(1, min(jobs ?? max(1, cores / plan.threads), units.count))
        let start = Date()
        let before = units.filter { Atlas.state(dir, plan: plan, unit: $0) == .done }.count
        var processes: [Process] = []
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        for i in 0..<workers {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.executable)
            p.arguments = ["atlas", "--shard", "\(i)/\(workers)", "--out", dir] + pluginArguments
                + (missingWeights.allowMissingWeights ? ["--allow-missing-weights"] : [])
            let log = dir + "/logs/worker\(i).log"
            // Appended to, so that the log of a resumed sweep keeps the earlier runs' lines.
            if !FileManager.default.fileExists(atPath: log) {
                guard FileManager.default.createFile(atPath: log, contents: nil) else { throw SamplerError("\(log): cannot be written") }
            }
            guard let handle = FileHandle(forWritingAtPath: log) else { throw SamplerError("\(log): cannot be written") }
            handle.seekToEndOfFile()
            p.standardOutput = handle
            p.standardError = handle
            try p.run()
            processes.append(p)
        }
        let tty = isatty(2) != 0
        func report(final: Bool) {
            let states = units.map { Atlas.state(dir, plan: plan, unit: $0) }
            let done = states.filter { $0 == .done }.count, failed = states.filter { $0 == .failed }.count
            let t = Date().timeIntervalSince(start)
            let rate = Double(done - before) / max(t, 1e-9)
            let remaining = units.count - done - failed
            let eta = rate > 0 ? String(format: "%.0fs", Double(remaining) / rate) : "?"
            let line = "atlas: \(done)/\(units.count) units done, \(failed) failed, \(workers) workers, \(String(format: "%.0f", t))s, ETA \(final ? "0s" : eta)"
            FileHandle.standardError.write(Data(((tty ? "\r" : "") + line + (tty && !final ? "" : "\n")).utf8))
        }
        var last = Date.distantPast
        while processes.contains(where: \.isRunning) {
            if Date().timeIntervalSince(last) >= (tty ? 1 : 10) { report(final: false); last = Date() }
            usleep(200_000)
        }
        report(final: true)
        let index = try Atlas.merge(dir: dir)
        print("index: \(dir)/index.html  (atlas.json: \(dir)/atlas.json)")
        // Status 3 is a worker whose units failed (each with its error.txt); any
        // other non-zero status is a worker that died or could not start.
        let died = processes.enumerated().filter { ![0, 3].contains($0.element.terminationStatus) }
        for (i, p) in died {
            let why = p.terminationReason == .uncaughtSignal ? "was killed by signal \(p.terminationStatus)" : "exited with status \(p.terminationStatus)"
            FileHandle.standardError.write(Data("inverse-set: atlas: worker \(i) \(why); its log: \(dir)/logs/worker\(i).log\n".utf8))
        }
        let short = index.units.filter { $0.accepted.contains { $0 < plan.n } }.map(\.unit)
        if !short.isEmpty {
            FileHandle.standardError.write(Data("inverse-set: atlas: \(short.count) unit(s) did not fill a band within --max-steps (\(short.prefix(12).map(String.init).joined(separator: ", "))\(short.count > 12 ? ", ..." : "")); what they found is kept, and each unit's report names the closest activation reached\n".utf8))
        }
        if !index.pending.isEmpty {
            FileHandle.standardError.write(Data("inverse-set: atlas: \(index.pending.count) unit(s) not run (\(index.pending.prefix(12).map(String.init).joined(separator: ", "))\(index.pending.count > 12 ? ", ..." : "")); rerun the same command to run them\n".utf8))
        }
        if !index.failed.isEmpty {
            FileHandle.standardError.write(Data("inverse-set: atlas: \(index.failed.count) unit(s) failed (logs in \(dir)/logs, each unit's error.txt); rerun the same command to retry them:\n".utf8))
            for f in index.failed {
                FileHandle.standardError.write(Data("  unit \(f.unit): \(f.error.split(separator: "\n").first ?? "")\n".utf8))
            }
            throw ExitCode(2)
        }
        if !died.isEmpty || !index.pending.isEmpty { throw ExitCode(2) }
    }

    // MARK: - Slurm

    /// `s` quoted for a POSIX shell.
    static func shellQuoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The array job's and the merge job's batch scripts.
    func slurmScripts(dir: String, tasks: Int, todo: String? = nil) throws -> [String] {
        let cpus = cpusPerTask ?? threads
        var head = ["#!/bin/bash", "# inverse-set atlas: one array task per shard of the plan in \(dir).",
                    "# Task i runs the units i, i + N, i + 2N, ... of DIR/plan.json that are not done yet;",
                    "# a unit killed midway resumes from its saved state when the command is submitted again."]
        // --output is given on sbatch's command line (submit), where a path with spaces survives.
        head += ["#SBATCH --job-name=inverse-set-atlas", "#SBATCH --array=0-\(max(0, tasks - 1))\(arrayThrottle.map { "%\($0)" } ?? "")",
                 "#SBATCH --cpus-per-task=\(cpus)", "#SBATCH --mem=\(mem)", "#SBATCH --time=\(time)"]
        if let partition { head.append("#SBATCH --partition=\(partition)") }
        for a in sbatchArgs { head.append("#SBATCH \(a)") }
        let extra = (pluginArguments + (missingWeights.allowMissingWeights ? ["--allow-missing-weights"] : [])
                     + (todo.map { ["--todo", $0] } ?? [])).map(Self.shellQuoted).joined(separator: " ")
        let array = (head + ["set -euo pipefail",
                             "exec \(Self.shellQuoted(Self.executable)) atlas --shard \"$SLURM_ARRAY_TASK_ID/\(tasks)\" --out \(Self.shellQuoted(dir)) \(extra)"])
            .joined(separator: "\n") + "\n"
        var mergeHead = ["#!/bin/bash", "# inverse-set atlas: merges the finished units of \(dir) into index.html and atlas.json",
                         "# once the array job has ended, whatever its tasks' outcome (afterany).",
                         "#SBATCH --job-name=inverse-set-atlas-merge", "#SBATCH --cpus-per-task=1", "#SBATCH --mem=1G",
                         "#SBATCH --time=00:30:00"]
        if let partition { mergeHead.append("#SBATCH --partition=\(partition)") }
        let merge = (mergeHead + ["set -euo pipefail", "exec \(Self.shellQuoted(Self.executable)) atlas --merge \(Self.shellQuoted(dir))"]).joined(separator: "\n") + "\n"
        return [array, merge]
    }

    func submit(plan: Atlas.Plan, dir: String) throws {
        let missing = plan.runnable.filter { Atlas.state(dir, plan: plan, unit: $0) != .done }
        guard !missing.isEmpty else {
            try Atlas.merge(dir: dir)
            print("atlas: every unit is done; index: \(dir)/index.html")
            return
        }
        let count = min(tasks ?? missing.count, 1000, missing.count)
        try FileManager.default.createDirectory(atPath: dir + "/slurm", withIntermediateDirectories: true)
        // The tasks deal out exactly the units missing now, so a resubmission's
        // tasks each get their share of them.
        let todo = dir + "/slurm/todo.json"
        try Toolbox.writeText(String(decoding: try JSONEncoder().encode(missing), as: UTF8.self) + "\n", to: todo)
        let scripts = try slurmScripts(dir: dir, tasks: count, todo: todo)
        try Toolbox.writeText(scripts[0], to: dir + "/slurm/atlas.sbatch")
        try Toolbox.writeText(scripts[1], to: dir + "/slurm/merge.sbatch")
        let arrayID = try sbatch(["--parsable", "--output=\(dir)/slurm/%A_%a.out", dir + "/slurm/atlas.sbatch"])
        let mergeID = try sbatch(["--parsable", "--output=\(dir)/slurm/merge_%j.out", "--dependency=afterany:\(arrayID)",
                                  dir + "/slurm/merge.sbatch"])
        let record = "{\"array\": \"\(arrayID)\", \"merge\": \"\(mergeID)\", \"tasks\": \(count), \"units\": \(missing.count), \"submitted\": \"\(ISO8601DateFormatter().string(from: Date()))\"}\n"
        try Toolbox.writeText(record, to: dir + "/slurm/jobs.json")
        print("atlas: submitted array job \(arrayID) (\(count) tasks for \(missing.count) units) and merge job \(mergeID); follow with: inverse-set atlas --status \(dir)")
    }

    /// Runs sbatch and returns the job id it prints with --parsable.
    func sbatch(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sbatch"] + args
        let outPipe = Pipe(), errPipe = Pipe()
        p.standardOutput = outPipe
        p.standardError = errPipe
        do { try p.run() } catch { throw SamplerError("sbatch cannot be started (\(error)); is Slurm's client installed?") }
        let out = outPipe.fileHandleForReading.readDataToEndOfFile(), err = errPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw SamplerError("sbatch \(args.joined(separator: " ")) failed: \(String(decoding: err, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let id = String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        guard !id.isEmpty else { throw SamplerError("sbatch printed no job id") }
        return id
    }

    // MARK: - Status

    func printStatus(_ dir: String) throws {
        let plan = try Atlas.readPlan(dir)
        var groups: [Atlas.UnitState: [Int]] = [:]
        for u in plan.runnable { groups[Atlas.state(dir, plan: plan, unit: u), default: []].append(u) }
        func list(_ s: Atlas.UnitState) -> String {
            let us = groups[s] ?? []
            return us.isEmpty ? "" : ": " + us.prefix(20).map(String.init).joined(separator: ", ") + (us.count > 20 ? ", ..." : "")
        }
        print("\(dir): \(plan.units.count) units of \(plan.layer)\(plan.skipped.isEmpty ? "" : ", \(plan.skipped.count) skipped when planning (empty bands)")")
        for s in [Atlas.UnitState.done, .running, .failed, .pending] {
            print("  \(s.rawValue): \(groups[s]?.count ?? 0)\(s == .done ? "" : list(s))")
        }
        for u in groups[.failed] ?? [] {
            let e = (try? String(contentsOfFile: "\(dir)/units/\(plan.folderName(u))/error.txt", encoding: .utf8)) ?? ""
            print("  unit \(u) failed: \(e.split(separator: "\n").first ?? "")")
        }
        let short = Atlas.shortUnits(dir, plan: plan, among: groups[.done] ?? [])
        if !short.isEmpty {
            print("  short of n = \(plan.n) in a band: \(short.count): " + short.prefix(20).map(String.init).joined(separator: ", ") + (short.count > 20 ? ", ..." : ""))
        }
        if let jobs = try? String(contentsOfFile: dir + "/slurm/jobs.json", encoding: .utf8) {
            print("  last Slurm submission: \(jobs.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let pending = (groups[.pending]?.count ?? 0) + (groups[.failed]?.count ?? 0)
        if pending > 0 { print("  to finish: rerun the same atlas command (only what is missing runs)") }
    }
}
