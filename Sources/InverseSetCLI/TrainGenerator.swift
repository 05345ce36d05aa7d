import ArgumentParser
import CaffeImport
import Foundation
import GraphIR
import ImageIO
import Layers
import Runtime

/// `inverse-set train-generator CLASSIFIER_DEPLOY --weights W --data SOURCE --out DIR`
struct TrainGenerator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-generator",
        abstract: "Train a DeepSiM-style image generator for your classifier and write a pipeline.json that sample uses.",
        discussion: """
        Writes into --out the Caffe files of a generator for the classifier's --code blob
        (docs/train-generator.md has the architecture) and trains it in two phases with
        `train`'s own solvers: phase A, --iterations of image loss plus the code's feature loss
        through a frozen copy of the classifier; phase B, --adversarial-rounds of adversarial
        fine-tuning against a discriminator, with a feature term on the classifier's scores
        (the input of its final Softmax) as well. Then it keeps the generator's layers
        (generator.caffemodel), measures the code over the training data (per unit
        min(max, mean + 3 std): the sampler's code box) and writes pipeline.json.

        --data: an IDX image file (e.g. train-images-idx3-ubyte.gz), an ImageData list of
        "path label" lines (PNG or JPEG images, paths relative to --root, by default the
        list's folder), or a .npy array N x C x H x W. Pixels are multiplied by --scale, the
        classifier's input scale; the generator's images lie in [0, 256 x scale].

        Examples:
          inverse-set train-generator Models/fashion/classifier_deploy.prototxt \\
            --weights Models/fashion/classifier.caffemodel \\
            --data /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --out Models/fashion
          inverse-set train-generator my_deploy.prototxt --weights my.caffemodel --data train.txt \\
            --out my_generator --code fc7 --iterations 3000 --adversarial-rounds 1000
        """.reflowed)

    @Argument(help: "The classifier's deploy prototxt (one image input).") var classifier: String
    @Option(help: "The classifier's weights (.caffemodel).") var weights: String
    @Option(help: "Training images: an IDX file, an ImageData list (.txt) or a .npy array.") var data: String
    @Option(help: "Folder of an ImageData list's images (default: the list's folder).") var root: String?
    @Option(help: "Folder for the files (created).") var out: String
    @Option(help: "The code blob: what the generator maps to an image.") var code = "fc6"
    @Option(help: "The scores blob of phase B's feature term ('none' to leave it out; default: the input of the final Softmax).") var scores: String?
    @Option(help: "Multiplies the pixel values (the classifier's input scale).") var scale: Double = 0.00390625
    @Option(help: "Images per batch.") var batch = 64
    @Option(help: "Phase A iterations (image and feature losses).") var iterations = 6000
    @Option(help: "Phase B rounds (adversarial; 0 skips it).") var adversarialRounds = 3000
    @Option(help: "Weight of the adversarial loss in phase B.") var adversarialWeight: Float = 2
    @Option(help: "Weight of the code's feature loss.") var featureWeight = 0.02
    @Option(help: "Weight of the scores' feature loss in phase B.") var scoresWeight = 0.3
    @Option(help: "The random seed of both phases.") var seed = 2
    @Option(help: "Skip phase A: start phase B from this generator (a caffemodel holding its layers).") var generatorWeights: String?
    @Option(help: "Training images for the code statistics (default: all).") var statisticsCount: Int?
    @Option(help: "Class names, one per line, copied next to pipeline.json.") var labels: String?
    @Flag(help: "Write the files and stop (no training).") var filesOnly = false
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            guard batch > 0, iterations >= 0, seed >= 0 else {
                throw RuntimeError.input("--batch must be positive, --iterations and --seed not negative")
            }
            guard adversarialRounds >= 0, scale > 0, adversarialWeight >= 0 else {
                throw RuntimeError.input("--adversarial-rounds, --scale and --adversarial-weight must not be negative (--scale above 0)")
            }
            guard generatorWeights != nil || iterations > 0 else {
                throw RuntimeError.input("--iterations 0 skips phase A; give --generator-weights to start phase B from a generator")
            }
            let registry = try common.makeRegistry()
            let source = try dataSource()
            let graph = try Toolbox.load(classifier, weights: weights)
            let codeDim = try codeSize(graph, registry: registry)
            let scoresBlob = scores == "none" ? nil : try scores ?? GeneratorRecipe.defaultScores(classifier)
            var recipe = try GeneratorRecipe(classifierDeploy: classifier, graph: graph, code: code, scores: scoresBlob,
                                             codeDim: codeDim, folder: out, source: source)
            recipe.scale = scale; recipe.batch = batch; recipe.seed = seed
            recipe.iterations = max(iterations, 1); recipe.adversarialRounds = adversarialRounds
            recipe.featureWeight = featureWeight; recipe.scoresWeight = scoresWeight
            try Toolbox.makeDirectory(out)
            try Toolbox.makeDirectory(out + "/work")
            for (name, text) in recipe.files { try Toolbox.writeText(text, to: out + "/" + name) }
            log("wrote the generator's Caffe files to \(out) (code '\(code)', \(codeDim) values; image \(recipe.channels)x\(recipe.height)x\(recipe.width); scores \(scoresBlob.map { "'\($0)'" } ?? "none"))")
            if filesOnly { return }

            let npy = source == .fed ? try NPY.read(data) : nil
            let feeder = try npy.map(npyFeeder)
            let t0 = Date()
            var generator = generatorWeights
            if generator == nil {
                log("== phase A: \(iterations) iterations (\(out)/generator_solver.prototxt)")
                let a = try TrainingFiles.solver(out + "/generator_solver.prototxt", weights: weights, registry: registry,
                                                 allowMissingWeights: true, threads: common.computeThreads)
                a.solver.feeder = feeder
                let interrupt = Interrupt { a.solver.requestStop() }
                try a.solver.solve()
                interrupt.cancel()
                guard a.solver.iter == a.solver.config.maxIter else { throw RuntimeError.input(stoppedMessage("phase A")) }
                generator = a.solver.snapshotPaths.model
            }
            let t1 = Date()
            var final = generator ?? ""
            if adversarialRounds > 0 {
                log("== phase B: \(adversarialRounds) adversarial rounds (\(out)/generator_adversarial_solver.prototxt)")
                let g = try TrainingFiles.solver(out + "/generator_adversarial_solver.prototxt", weights: weights + "," + final,
                                                 registry: registry, allowMissingWeights: false, externalSeeds: ["gen"],
                                                 threads: common.computeThreads)
                let d = try TrainingFiles.solver(out + "/discriminator_solver.prototxt", weights: nil, registry: registry,
                                                 allowMissingWeights: false, threads: common.computeThreads)
                g.solver.feeder = feeder
                let trainer = try AdversarialTrainer(generator: g.solver, discriminator: d.solver,
                                                     real: recipe.inputBlob, adversarialWeight: adversarialWeight)
                trainer.writeState = TrainingFiles.writeJSON
                let interrupt = Interrupt { trainer.requestStop() }
                try trainer.train()
                interrupt.cancel()
                guard trainer.round == adversarialRounds else { throw RuntimeError.input(stoppedMessage("phase B")) }
                final = g.solver.snapshotPaths.model
            }
            let t2 = Date()
            // Keep the generator's layers only.
            var deploy = try Toolbox.load(out + "/generator_deploy.prototxt", weights: nil)
            try CaffeModel.attachWeights(&deploy, from: final)
            let net = try Net(graph: deploy, registry: registry, threads: common.computeThreads)
            try CaffeModel.writeCaffemodel(net.exportWeights(), to: out + "/generator.caffemodel")
            log("wrote \(out)/generator.caffemodel (from \(final))")

            let stats = try codeStatistics(recipe, registry: registry, feeder: feeder, images: npy?.shape.dims.first)
            try writePipeline(recipe, stats: stats)
            try writeJSON(["phase_a_seconds": Int(t1.timeIntervalSince(t0)), "phase_b_seconds": Int(t2.timeIntervalSince(t1)),
                           "generator": out + "/generator.caffemodel", "pipeline": out + "/pipeline.json",
                           "trained_from": final, "statistics_images": stats.samples] as [String: Any])
        }
    }

    private func log(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    private func stoppedMessage(_ phase: String) -> String {
        "stopped during \(phase); its snapshot is in \(out)/work (continue it with `inverse-set train` and --resume, then run train-generator again with --generator-weights)"
    }

    private func dataSource() throws -> GeneratorRecipe.Source {
        guard FileManager.default.fileExists(atPath: data) else {
            throw RuntimeError.input("\(data): no such file (--data takes an IDX file, an ImageData list or a .npy array)")
        }
        if data.hasSuffix(".npy") { return .fed }
        if data.hasSuffix(".txt") || data.hasSuffix(".list") {
            return .imageList(data, root: (root ?? (data as NSString).deletingLastPathComponent) + "/")
        }
        return .idx(data)
    }

    /// Values per image of the code blob, from one forward pass's shapes.
    private func codeSize(_ graph: Graph, registry: LayerRegistry) throws -> Int {
        guard graph.values.contains(where: { $0.blob == code }) else {
            throw RuntimeError.input("\(classifier): has no blob '\(code)' for the code (--code); its blobs: \(graph.blobNames.joined(separator: ", "))")
        }
        let net = try Net(graph: graph, registry: registry, threads: common.computeThreads)
        let shape = try net.shape(code)
        return shape.dims.dropFirst().reduce(1, *)
    }

    /// Batches of the .npy array in order (times --scale), cycling.
    private func npyFeeder(_ array: Tensor) throws -> (FeedRequest) throws -> [String: Tensor] {
        guard array.shape.dims.count == 4, array.shape.dims[0] > 0 else {
            throw RuntimeError.input("\(data): holds a \(array.shape) array; give N x C x H x W images")
        }
        let n = array.shape.dims[0], item = array.count / n
        let s = Float(scale)
        var next = 0
        return { request in
            guard let (blob, shape) = request.inputs.first, shape.dims.count == 4, shape.count / shape.dims[0] == item else {
                throw RuntimeError.input("\(data): images of \(item) values do not fit the net's input \(request.inputs)")
            }
            let b = shape.dims[0]
            let t = Tensor(shape: shape)
            for i in 0..<b {
                let src = array.data + ((next + i) % n) * item, dst = t.data + i * item
                for k in 0..<item { dst[k] = src[k] * s }
            }
            next = (next + b) % n
            return [blob: t]
        }
    }

    /// The code's per-unit statistics over the training data, in order.
    /// `images`: how many the data hold, when the caller knows.
    private func codeStatistics(_ recipe: GeneratorRecipe, registry: LayerRegistry,
                                feeder: ((FeedRequest) throws -> [String: Tensor])?, images: Int?) throws -> ChannelStats {
        let per = 100
        let file = out + "/work/code_statistics.prototxt"
        try Toolbox.writeText(recipe.statisticsNet(batch: per), to: file)
        let graph = try Toolbox.load(file, weights: weights)
        let net = try Net(graph: graph, registry: registry, threads: common.computeThreads)
        let codeValue = try net.resolve(code)
        let plan = try net.plan(seeds: [], gradientsFor: [], keep: [codeValue])
        let total = try statisticsCount ?? images ?? imageCount()
        var stats = ChannelStats()
        var done = 0
        while done < total {
            var feeds: [String: Tensor] = [:]
            if let feeder {
                feeds = try feeder(FeedRequest(phase: .test, testNet: 0, iteration: 0, pass: 0,
                                               inputs: [recipe.inputBlob: Shape([per, recipe.channels, recipe.height, recipe.width])]))
            }
            try net.forward(feeds, plan: plan)
            guard let t = net.tensor(codeValue) else { break }
            let take = min(per, total - done)
            stats.add(take == per ? t : Tensor(shape: Shape([take] + t.shape.dims.dropFirst()),
                                               values: Array(UnsafeBufferPointer(start: t.data, count: take * t.count / per))))
            done += take
        }
        try stats.write(prefix: out + "/work/" + NPY.fileSafe(code))
        try FileManager.default.copyItemReplacing(out + "/work/\(NPY.fileSafe(code)).upper.txt", to: out + "/\(NPY.fileSafe(code))_code_upper_bound.txt")
        try FileManager.default.copyItemReplacing(out + "/work/\(NPY.fileSafe(code)).mean.txt", to: out + "/\(NPY.fileSafe(code))_code_mean.txt")
        log("code statistics over \(done) training images -> \(out)/\(NPY.fileSafe(code))_code_upper_bound.txt")
        return stats
    }

    /// Images in the training data (for the statistics pass).
    private func imageCount() throws -> Int {
        if data.hasSuffix(".txt") || data.hasSuffix(".list") {
            return try String(contentsOfFile: data, encoding: .utf8).split(whereSeparator: \.isNewline)
                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
        }
        return try IDXFile.read(data).count
    }

    private func writePipeline(_ recipe: GeneratorRecipe, stats: ChannelStats) throws {
        func relative(_ path: String) -> String {
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            let base = URL(fileURLWithPath: out).standardizedFileURL.path
            let a = absolute.split(separator: "/"), b = base.split(separator: "/")
            var common = 0
            while common < min(a.count, b.count) && a[common] == b[common] { common += 1 }
            return (Array(repeating: "..", count: b.count - common) + a[common...].map(String.init)).joined(separator: "/")
        }
        let low = stats.minimum.min().map { min(0, Double($0)) } ?? 0
        // Random starting codes: uniform up to a third of the mean upper bound.
        let bounds = stats.upperBounds
        let upper = bounds.reduce(0, +) / Double(max(1, bounds.count))
        let range = CaffeModel.textValue(.double(recipe.range))
        var lines = [
            "{",
            "  \"generator\": { \"prototxt\": \"generator_deploy.prototxt\", \"weights\": \"generator.caffemodel\",",
            "                 \"input\": \(json(code)), \"output\": \"gen\" },",
            "  \"classifier\": { \"prototxt\": \(json(relative(classifier))), \"weights\": \(json(relative(weights))), \"input\": \(json(recipe.inputBlob)) },",
            "  \"encoder\": { \"cut\": \(json(code)) },",
            "  \"glue\": { \"clip\": { \"low\": 0, \"high\": \(range) } },",
            "  \"display\": { \"low\": 0, \"high\": \(range) },",
            "  \"codes\": { \"low\": \(CaffeModel.textValue(.double(low))), \"upper_bound_file\": \(json(NPY.fileSafe(code) + "_code_upper_bound.txt")), \"init_low\": 0, \"init_high\": \(String(format: "%.2g", upper / 3)) }",
        ]
        if let labels {
            let target = out + "/labels.txt"
            if URL(fileURLWithPath: labels).standardizedFileURL != URL(fileURLWithPath: target).standardizedFileURL {
                try FileManager.default.copyItemReplacing(labels, to: target)
            }
            lines[lines.count - 1] += ","
            lines.append("  \"labels\": \"labels.txt\"")
        }
        // The dataset for the sampler's quality measures (prior codes and
        // evaluation): an IDX folder with train and t10k files by split,
        // else the training data itself.
        let folder = (data as NSString).deletingLastPathComponent
        let name = (data as NSString).lastPathComponent
        let idxFolder = name.hasPrefix("train-images-idx3-ubyte")
            && ["t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"].contains { FileManager.default.fileExists(atPath: folder + "/" + $0) }
        let dataset = idxFolder ? (folder.hasPrefix("/") ? folder : relative(folder)) : (data.hasPrefix("/") ? data : relative(data))
        let splits = idxFolder ? "\"prior_split\": \"train\", " : ""
        let evaluation = idxFolder ? "\"evaluation_split\": \"test\", " : ""
        lines[lines.count - 1] += ","
        lines.append("  \"data\": { \"dataset\": \(json(dataset)), \(splits)\"prior_count\": 10000,")
        lines.append("            \(evaluation)\"code_blob\": \(json(code)), \"preprocess\": { \"raw_scale\": \(range) } }")
        lines.append("}")
        try Toolbox.writeText(lines.joined(separator: "\n") + "\n", to: out + "/pipeline.json")
        log("wrote \(out)/pipeline.json: inverse-set sample --pipeline \(out)/pipeline.json --neuron \(scores ?? "fc8"):0")
    }

    private func json(_ s: String) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed, .withoutEscapingSlashes])) ?? Data("\"\"".utf8), as: UTF8.self)
    }

    private func writeJSON(_ summary: [String: Any]) throws {
        let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: data, as: UTF8.self))
    }
}

extension FileManager {
    /// Copies `from` to `to`, replacing a file that is there.
    func copyItemReplacing(_ from: String, to: String) throws {
        if fileExists(atPath: to) { try removeItem(atPath: to) }
        do { try copyItem(atPath: from, toPath: to) } catch {
            throw RuntimeError.input("cannot copy \(from) to \(to): \(error.localizedDescription)")
        }
    }
}
