import CaffeImport
import Foundation
import GraphIR
import Layers
import Runtime

/// Small layers with hand-checkable gradients for the solver tests, so they
/// do not depend on the built-in dense layers.
enum TrainingSupport {
    /// Built-ins plus TestLinear, TestSquareLoss and TestQuadratic.
    static func registry() throws -> LayerRegistry {
        let r = try builtinRegistry()
        try r.register("TestLinear", origin: "test") { try PlainLinearLayer($0, param: "linear_param", defaultOutputs: 1) }
        try r.register("TestSquareLoss", origin: "test") { try TestSquareLossLayer($0) }
        try r.register("TestQuadratic", origin: "test") { try TestQuadraticLayer($0) }
        return r
    }

    /// A graph from prototxt text, filtered for `phase`.
    static func graph(_ text: String, phase: String = "TRAIN", weights: String? = nil) throws -> Graph {
        let net = try CaffeModel.upgrade(try CaffeModel.parseText(text, file: "test.prototxt"), file: "test.prototxt")
        var g = try CaffeModel.buildGraph(net, state: NetState(phase: phase), file: "test.prototxt")
        if let weights { try CaffeModel.attachWeights(&g, from: weights) }
        return g
    }

    /// A solver configuration from prototxt text.
    static func config(_ text: String) throws -> SolverConfig {
        try SolverConfig(try solverTree(text))
    }

    static func solverTree(_ text: String) throws -> ParamMessage {
        try CaffeModel.parseText(text, file: "solver.prototxt", schema: CaffeSchemaRegistry.shared.solverParameter)
    }

    /// Writes snapshots with the importer's writers (what the CLI does).
    static func writer() -> SnapshotWriter {
        SnapshotWriter(writeWeights: CaffeModel.writeCaffemodel, writeState: CaffeModel.writeSolverState)
    }

    /// A deterministic regression problem: x ~ N(0, 1) of (n, d), t = x A + 0.1.
    static func regressionBatch(_ k: Int, n: Int = 4, d: Int = 3, outputs: Int = 2) -> (Tensor, Tensor) {
        var rng = SplitMix64(seed: UInt64(1000 + k))
        let x = Tensor(shape: [n, d]), t = Tensor(shape: [n, outputs])
        for i in 0..<x.count { x[i] = rng.gaussian() }
        for r in 0..<n {
            for o in 0..<outputs {
                var s: Float = 0.1
                for c in 0..<d { s += x[r * d + c] * Float((c + 1) * (o % 2 == 0 ? 1 : -1)) * 0.5 }
                t[r * outputs + o] = s
            }
        }
        return (x, t)
    }

    /// A feeder of `regressionBatch(iteration * iter_size + pass)`.
    static func regressionFeeder(iterSize: Int = 1) -> (FeedRequest) throws -> [String: Tensor] {
        { req in
            let (x, t) = regressionBatch(req.phase == .train ? req.iteration * iterSize + req.pass : 10_000 + req.pass)
            return ["x": x, "t": t]
        }
    }
}

/// y = x W^T + b over the flattened input; W is (out x in), b is (out).
/// Plain loops: the solver tests' TestLinear (`linear_param`, num_output
/// default 1) and the parity tests' reference InnerProduct
/// (`inner_product_param`, num_output required).
final class PlainLinearLayer: LayerBase, Layer {
    let outDim: Int, inDim: Int
    let fillers: [ParamMessage?]

    init(_ ctx: LayerContext, param: String, defaultOutputs: Int? = nil) throws {
        let p = ctx.param(param)
        if let d = defaultOutputs { outDim = try p.int("num_output", default: d) } else { outDim = try p.int("num_output") }
        inDim = ctx.inputShapes[0].count(from: 1)
        fillers = [p.has("weight_filler") ? p.message("weight_filler") : nil,
                   p.has("bias_filler") ? p.message("bias_filler") : nil]
        super.init(base: ctx)
    }
    var parameterShapes: [Shape] { [[outDim, inDim], [outDim]] }
    var parameterFillers: [ParamMessage?] { fillers }
    func reshape(_ s: [Shape]) throws -> [Shape] { [[s[0][0], outDim]] }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0], y = outputs[0], w = parameters[0], b = parameters[1]
        let n = x.shape[0]
        for r in 0..<n {
            for o in 0..<outDim {
                var s = b[o]
                for c in 0..<inDim { s += x[r * inDim + c] * w[o * inDim + c] }
                y[r * outDim + o] = s
            }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let x = pass.inputs[0], dy = pass.outputGrads[0], w = parameters[0]
        let n = x.shape[0]
        if let dw = pass.paramGrads[0] {
            for o in 0..<outDim { for c in 0..<inDim {
                var s: Float = 0
                for r in 0..<n { s += dy[r * outDim + o] * x[r * inDim + c] }
                dw[o * inDim + c] += s
            } }
        }
        if let db = pass.paramGrads[1] {
            for o in 0..<outDim { for r in 0..<n { db[o] += dy[r * outDim + o] } }
        }
        if let dx = pass.inputGrads[0] {
            for r in 0..<n { for c in 0..<inDim {
                var s: Float = 0
                for o in 0..<outDim { s += dy[r * outDim + o] * w[o * inDim + c] }
                dx[r * inDim + c] = s
            } }
        }
    }
}

/// loss = sum((p - t)^2) / (2 N), N = p.shape[0]; a scalar loss output.
final class TestSquareLossLayer: LayerBase, Layer {
    init(_ ctx: LayerContext) throws { super.init(base: ctx) }
    func reshape(_ s: [Shape]) throws -> [Shape] { [Shape([])] }
    var isLoss: Bool { true }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let p = inputs[0], t = inputs[1]
        var s: Float = 0
        for i in 0..<p.count { let d = p[i] - t[i]; s += d * d }
        outputs[0][0] = s / Float(2 * p.shape[0])
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let p = pass.inputs[0], t = pass.inputs[1], k = pass.outputGrads[0][0] / Float(p.shape[0])
        if let dp = pass.inputGrads[0] { for i in 0..<p.count { dp[i] = k * (p[i] - t[i]) } }
        if let dt = pass.inputGrads[1] { for i in 0..<p.count { dt[i] = -k * (p[i] - t[i]) } }
    }
}

/// No inputs; one parameter p (n values, `weight_filler`); a scalar loss
/// L = sum_i a_i p_i + b/2 sum_i p_i^2, so dL/dp_i = a_i + b p_i.
final class TestQuadraticLayer: LayerBase, Layer {
    let n: Int
    let a: [Float]
    let b: Float
    let filler: ParamMessage?

    init(_ ctx: LayerContext) throws {
        let p = ctx.param("quadratic_param")
        a = try p.floats("a")
        n = a.count
        b = try p.float("b", default: 0)
        filler = p.has("weight_filler") ? p.message("weight_filler") : nil
        super.init(base: ctx)
    }
    var parameterShapes: [Shape] { [[n]] }
    var parameterFillers: [ParamMessage?] { [filler] }
    var isLoss: Bool { true }
    func reshape(_ s: [Shape]) throws -> [Shape] { [Shape([])] }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let p = parameters[0]
        var s: Float = 0
        for i in 0..<n { s += a[i] * p[i] + 0.5 * b * p[i] * p[i] }
        outputs[0][0] = s
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let g = pass.paramGrads[0] else { return }
        let p = parameters[0], k = pass.outputGrads[0][0]
        for i in 0..<n { g[i] += k * (a[i] + b * p[i]) }
    }
}
