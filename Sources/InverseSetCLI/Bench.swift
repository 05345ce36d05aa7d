import ArgumentParser
import Foundation
import GraphIR
import Runtime
import Sampler
import SamplerIO

/// `inverse-set bench NET.prototxt [--weights W] --batch N [--backward] [--threads T]`
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a network against the GEMM lower bound measured in the same process.",
        discussion: """
        Measures the machine's SGEMM rate (1024^3, fastest of 20 runs), then the net's forward
        time and, with --backward, forward + backward to the inputs (median after warm-up).
        The lower bound is FLOPs / SGEMM rate, FLOPs = 2 x multiply-adds of the conv, deconv and
        inner-product layers (x2 again with --backward: the input gradient costs as much).
        The last line is one JSON object:
          {"macs", "gemm_gflops", "forward_ms", "backward_ms" (forward+backward,
           null without --backward), "bound_ms", "ratio_to_bound", "peak_rss_mb"}

        Example: inverse-set bench Models/caffenet/deploy.prototxt --batch 10 --backward
        """.reflowed)

    @Argument(help: "Network definition (.prototxt); or give --pipeline.") var prototxt: String?
    @Option(help: "Time one sampler step of this pipeline instead: G forward, glue, f forward, backward from a neuron and E's blob to the codes.")
    var pipeline: String?
    @Option(help: "With --pipeline: the neuron whose gradient is seeded (with E's).") var neuron: String = "fc8:0"
    @Option(help: "Weights (.caffemodel); default: the layers' fillers, msra where none is declared.") var weights: String?
    @Option(help: "Batch size.") var batch: Int = 10
    @Flag(help: "Also time forward + backward to the inputs.") var backward = false
    @Option(help: "Timed repeats (after 2 warm-up runs).") var repeats: Int = 7
    @Flag(help: "Also print each layer's forward and backward time (mean over the repeats).") var layers = false
    @Option(help: "Convolution algorithm: automatic (Winograd where it pays), direct (im2col + GEMM, as Caffe), winograd (wherever the kernel allows).")
    var convolution: ConvolutionAlgorithm = .automatic
    @OptionGroup var missingWeights: MissingWeightsOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        try reportingErrors {
            let registry = try common.makeRegistry()
            if let pipeline {
                try benchSamplerStep(pipeline, registry: registry)
                return
            }
            guard let prototxt else { throw ValidationError("give a NET.prototxt or --pipeline P.json") }
            let graph = try Toolbox.load(prototxt, weights: weights)
            let gemmRate = measureGEMM(repeats: 20, threads: common.computeThreads)
            var shapes: [String: Shape] = [:]
            var feeds: [String: Tensor] = [:]
            var rng = SplitMix64(seed: 1)
            for input in graph.inputs {
                let blob = graph.values[input.index].blob
                guard var s = graph.inputShapes[input], s.rank > 0 else {
                    throw RuntimeError.input("input '\(blob)' has no declared shape")
                }
                s[0] = batch
                shapes[blob] = s
                let t = Tensor(shape: s)
                for i in 0..<t.count { t[i] = rng.gaussian() }
                feeds[blob] = t
            }
            // Without weights: msra for the weights deploy prototxts leave to
            // Caffe's all-zero default (zeros would make sparse paths look fast).
            let net = try Net(graph: graph, registry: registry, inputShapes: shapes, seed: 1,
                              defaultWeightFiller: weights == nil ? try Init.filler("msra") : nil,
                              allowMissingWeights: missingWeights.allowMissingWeights, threads: common.computeThreads)
            Toolbox.warnAboutWeights(graph)
            Toolbox.noteFilledLayers(net, seed: 1)
            net.context.convolution = convolution
            try net.forward(feeds)
            let macs = net.macs.reduce(0, +)
            let forwardMs = try medianTime(repeats) { try net.forward(feeds) }
            // Backward from every output, seeded with ones.
            let plan = backward ? try net.plan(seeds: graph.outputs, gradientsFor: graph.inputs) : nil
            var seeds: [ValueID: Tensor] = [:]
            for o in graph.outputs { seeds[o] = Tensor(shape: net.shapes[o.index], repeating: 1) }
            var backwardMs: Double? = nil
            if let plan {
                backwardMs = try medianTime(repeats) {
                    try net.forward(feeds, plan: plan)
                    _ = try net.backward(seeds: seeds, plan: plan)
                }
            }
            if layers {
                // A separate profiled run, so the timing hooks do not touch the figures above.
                net.profiling = true
                for _ in 0..<repeats {
                    try net.forward(feeds, plan: plan)
                    if let plan { _ = try net.backward(seeds: seeds, plan: plan) }
                }
                net.profiling = false
                func pad(_ s: String, _ w: Int) -> String { s.padding(toLength: max(w, s.count), withPad: " ", startingAt: 0) }
                print(pad("layer", 16) + " " + pad("type", 14) + "     fwd ms     bwd ms   MACs G")
                for (i, node) in graph.nodes.enumerated() {
                    let f = i < net.forwardTimes.count ? net.forwardTimes[i] / Double(repeats) : 0
                    let b = i < net.backwardTimes.count ? net.backwardTimes[i] / Double(repeats) : 0
                    print(pad(node.name, 16) + " " + pad(node.type, 14)
                          + String(format: " %10.2f %10.2f %8.3f", f, b, Double(net.layers[i].macs) / 1e9))
                }
            }
            let flops = 2.0 * Double(macs) * (backward ? 2 : 1)
            let boundMs = flops / (gemmRate * 1e9) * 1e3
            let measured = backwardMs ?? forwardMs
            let rss = peakRSSMegabytes()
            print("net            \(graph.name.isEmpty ? prototxt : graph.name)")
            print("batch          \(batch), threads \(net.context.threads), convolution \(convolution)")
            print(String(format: "multiply-adds  %.3f G per pass (%.1f GFLOP %@)", Double(macs) / 1e9, flops / 1e9,
                         backward ? "forward+backward" : "forward"))
            print(String(format: "SGEMM rate     %.1f GFLOP/s (1024^3, fastest of 20)", gemmRate))
            print(String(format: "forward        %.1f ms", forwardMs))
            if let b = backwardMs { print(String(format: "fwd+bwd        %.1f ms", b)) }
            print(String(format: "lower bound    %.1f ms -> ratio %.2f", boundMs, measured / boundMs))
            print(String(format: "peak RSS       %.0f MB", rss))
            let json: [String: Any] = [
                "macs": macs, "gemm_gflops": round1(gemmRate), "forward_ms": round1(forwardMs),
                "backward_ms": backwardMs.map(round1) as Any? ?? NSNull(), "bound_ms": round1(boundMs),
                "ratio_to_bound": (measured / boundMs * 1000).rounded() / 1000, "peak_rss_mb": round1(rss),
            ]
            let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }
}

extension Bench {
    /// One step of the sampler at K = --batch walkers: G forward, glue, f
    /// forward (its trunk also gives E), backward from the neuron and from E's
    /// blob through f, the glue and G to the codes. The lower bound counts
    /// the GEMM FLOPs of G and f, forward and backward to the input.
    func benchSamplerStep(_ path: String, registry: LayerRegistry) throws {
        let loaded = try Toolbox.loadPipeline(path, registry: registry, allowMissingWeights: missingWeights.allowMissingWeights, threads: common.computeThreads)
        let p = loaded.pipeline
        for net in [p.generator, p.classifier] + (p.encoder.map { [$0] } ?? []) { net.context.convolution = convolution }
        try p.setNeurons([(try NeuronSpec(parsing: neuron), try Band(low: 0, high: 1))])
        let gemmRate = measureGEMM(repeats: 20, threads: p.threads)
        let d = p.codeSize
        var rng = SplitMix64(seed: 1)
        let codes = Tensor(shape: [batch, d])
        for i in 0..<codes.count { codes[i] = loaded.initLow.isEmpty ? rng.uniform()
            : loaded.initLow[i % d] + (loaded.initHigh[i % d] - loaded.initLow[i % d]) * rng.uniform() }
        var dE: Tensor? = nil
        let step: () throws -> Void = {
            let ev = try p.forward(codes)
            if dE == nil { dE = Tensor(shape: ev.embeddings.shape, repeating: 1e-3) }
            _ = try p.backward(dActivations: Array(repeating: [1], count: self.batch), dEmbeddings: dE)
        }
        try step()
        let ms = try medianTime(repeats, step)
        let macs = p.generator.macs.reduce(0, +) + p.classifier.macs.reduce(0, +)
            + (p.encoder?.macs.reduce(0, +) ?? 0)
        let flops = 4.0 * Double(macs)
        let boundMs = flops / (gemmRate * 1e9) * 1e3
        let rss = peakRSSMegabytes()
        print("pipeline       \(path)")
        print("walkers        \(batch), threads \(p.threads), convolution \(convolution)")
        print(String(format: "GEMM work      %.1f GFLOP per step (G and f, forward + backward)", flops / 1e9))
        print(String(format: "SGEMM rate     %.1f GFLOP/s (1024^3, fastest of 20)", gemmRate))
        print(String(format: "sampler step   %.1f ms", ms))
        print(String(format: "lower bound    %.1f ms -> ratio %.2f", boundMs, ms / boundMs))
        print(String(format: "peak RSS       %.0f MB", rss))
        let json: [String: Any] = ["macs": macs, "gemm_gflops": round1(gemmRate), "step_ms": round1(ms),
                                   "bound_ms": round1(boundMs), "ratio_to_bound": (ms / boundMs * 1000).rounded() / 1000,
                                   "peak_rss_mb": round1(rss), "trunk_passes_per_step": p.netPassesPerEvaluation]
        let data = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }

func time(_ body: () throws -> Void) rethrows -> Double {
    let t0 = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
}

/// Median wall time (ms) of `repeats` runs of `body` after two warm-up runs.
func medianTime(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    median(try (0..<(repeats + 2)).map { _ in try time(body) }.dropFirst(2))
}

func median<S: Sequence>(_ xs: S) -> Double where S.Element == Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Single-precision GEMM rate in GFLOP/s on 1024x1024x1024: the fastest
/// of `repeats` runs (on a shared machine the slower ones measure the
/// neighbours, and a low rate would flatter the ratio to the bound), and the
/// better of OpenBLAS's own threading and our split `gemm`, so the bound is
/// the fastest this machine multiplies, whichever way, on `threads` threads.
func measureGEMM(repeats: Int, threads: Int) -> Double {
    let n = 1024
    let a = Tensor(shape: [n, n]), b = Tensor(shape: [n, n]), c = Tensor(shape: [n, n])
    var rng = SplitMix64(seed: 3)
    for i in 0..<a.count { a[i] = rng.uniform(); b[i] = rng.uniform() }
    func rate(_ multiply: () -> Void) -> Double {
        multiply()   // warm-up
        let ms = (0..<repeats).map { _ in time(multiply) }.min() ?? .nan
        return 2 * Double(n * n * n) / (ms * 1e6)
    }
    let openBLAS = rate { openBLASThreadedGemm(m: n, n: n, k: n, a: a.data, b: b.data, c: c.data, threads: threads) }
    let split = rate { gemm(m: n, n: n, k: n, a: a.data, b: b.data, c: c.data, threads: threads) }
    return max(openBLAS, split)
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakRSSMegabytes() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        return kb / 1024
    }
    return 0
}

extension ConvolutionAlgorithm: ExpressibleByArgument {}
