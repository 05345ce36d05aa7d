import GraphIR
import Runtime

/// InnerProduct (fully connected), Caffe's InnerProductLayer.
///
/// The input is flattened from `axis` (default 1): x viewed as (M, K) with
/// M = product of dims before axis, K = product of dims from axis. Output
/// (dims before axis..., N) with N = num_output.
/// Weights W (N, K), or (K, N) with `transpose: true`; bias b (N).
///
///     y (M x N) = x (M x K) * W^T + 1 b^T          (transpose: x * W)
///     dx        = dy * W                           (transpose: dy * W^T)
///     dW       += dy^T * x  (N x K)                (transpose: x^T * dy, K x N)
///     db       += column sums of dy
///
/// One GEMM covers the whole batch: the layer is bound by reading W, so
/// per-sample products would read it M times.
final class InnerProductLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["InnerProduct"]
    let numOutput: Int
    let biasTerm: Bool
    let transpose: Bool
    let rawAxis: Int
    let k: Int
    let weightFiller: ParamMessage, biasFiller: ParamMessage
    private var currentMACs = 0

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("inner_product_param")
        (numOutput, biasTerm, transpose, rawAxis) = try ctx.reading {
            (try p.int("num_output", default: 0), try p.bool("bias_term", default: true),
             try p.bool("transpose", default: false), try p.int("axis", default: 1))
        }
        weightFiller = p.message("weight_filler")
        biasFiller = p.message("bias_filler")
        guard numOutput > 0 else {
            throw ctx.error("num_output must be > 0 (got \(numOutput)); set inner_product_param { num_output: ... }")
        }
        let s = ctx.inputShapes[0]
        guard let axis = s.canonicalAxis(rawAxis) else {
            throw ctx.error("axis \(rawAxis) is out of range for the \(s.rank)-d input \(s)")
        }
        k = s.count(from: axis)
        super.init(base: ctx)
    }

    var parameterShapes: [Shape] {
        let w = transpose ? Shape([k, numOutput]) : Shape([numOutput, k])
        return biasTerm ? [w, Shape([numOutput])] : [w]
    }
    var parameterFillers: [ParamMessage?] { biasTerm ? [weightFiller, biasFiller] : [weightFiller] }

    /// (M, K) view of an input shape.
    private func dims(_ s: Shape) throws -> (m: Int, axis: Int) {
        guard let axis = s.canonicalAxis(rawAxis) else {
            throw error("axis \(rawAxis) is out of range for the \(s.rank)-d input \(s)")
        }
        let newK = s.count(from: axis)
        guard newK == k else {
            throw error("input \(s) flattens from axis \(axis) to \(newK) features, but the weights were made for \(k); input size incompatible with inner product parameters")
        }
        return (s.count(from: 0, to: axis), axis)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let (m, axis) = try dims(inputs[0])
        currentMACs = m * k * numOutput
        return [Shape(Array(inputs[0].dims[0..<axis]) + [numOutput])]
    }

    var macs: Int { currentMACs }
    var backwardUses: BackwardUses { .inputs }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let (m, _) = try dims(inputs[0].shape)
        let x = inputs[0].data, y = outputs[0].data, w = parameters[0].data
        let n = numOutput
        let bias = biasTerm ? parameters[1].data : nil
        if !transpose && m >= 2 && m <= 10 && n * k >= 1 << 16 {
            // A batch of a few samples: weight-streaming kernel (see
            // denseSmallBatchGemmNT), on top of the bias rows.
            for r in 0..<m {
                if let bias { (y + r * n).update(from: bias, count: n) } else { (y + r * n).update(repeating: 0, count: n) }
            }
            denseSmallBatchGemmNT(m: m, n: n, k: k, x: x, w: w, y: y, threads: ctx.threads)
            return
        }
        if !transpose && m <= 32 {
            // Small batch: y^T (N x M) = W x^T keeps W as the untransposed
            // operand, which OpenBLAS packs faster (measured ~20% on
            // CaffeNet's fc6/fc7 at batch 10); then transpose the few values.
            let t = ctx.scratch(n * m, ScratchBuffer(0))   // y^T before the transpose
            gemm(transB: true, m: n, n: m, k: k, a: w, b: x, c: t, threads: ctx.threads)
            for r in 0..<m {
                let row = y + r * n
                for j in 0..<n { row[j] = t[j * m + r] + (bias?[j] ?? 0) }
            }
            return
        }
        if let bias {
            // Start from the bias rows, then accumulate x W^T on top.
            for r in 0..<m { (y + r * n).update(from: bias, count: n) }
        }
        gemm(transB: !transpose, m: m, n: n, k: k, a: x, b: w, beta: bias == nil ? 0 : 1, c: y, threads: ctx.threads)
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let (m, _) = try dims(pass.inputs[0].shape)
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, w = parameters[0].data
        let n = numOutput
        if let dW = pass.paramGrads[0]?.data {
            if transpose {
                gemm(transA: true, m: k, n: n, k: m, a: x, b: dy, beta: 1, c: dW, threads: ctx.threads)
            } else {
                gemm(transA: true, m: n, n: k, k: m, a: dy, b: x, beta: 1, c: dW, threads: ctx.threads)
            }
        }
        if biasTerm, pass.paramGrads.count > 1, let db = pass.paramGrads[1]?.data {
            for r in 0..<m {
                let row = dy + r * n
                for j in 0..<n { db[j] += row[j] }
            }
        }
        if let dx = pass.inputGrads[0]?.data {
            if !transpose && m <= 10 && n * k >= 1 << 16 {
                denseSmallBatchGemmNN(m: m, n: n, k: k, dy: dy, w: w, dx: dx, threads: ctx.threads)   // streams W once
            } else {
                gemm(transB: transpose, m: m, n: k, k: n, a: dy, b: w, c: dx, threads: ctx.threads)
            }
        }
    }
}
