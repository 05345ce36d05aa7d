import GraphIR
import Runtime

/// Eltwise: combines two or more inputs of the same shape element by element
/// (`eltwise_param.operation`: PROD, SUM or MAX, default SUM).
///
///   SUM:  y = sum_k c_k * x_k      (`coeff`: none = all 1, or one per input)
///   PROD: y = prod_k x_k
///   MAX:  y = max_k x_k
/// Backward:
///   SUM:  dx_k = c_k * dy
///   PROD: dx_k = dy * prod_{j != k} x_j   (`stable_prod_grad`, default true)
///         dx_k = dy * y / x_k             (stable_prod_grad: false)
///   MAX:  dx_k = dy where input k was the maximum, else 0. Ties follow
///         Caffe: between inputs 0 and 1 the later wins (x_0 > x_1 is needed
///         for input 0); a later input k >= 2 must be strictly larger than
///         the running maximum. The arg-max is recomputed from the inputs.
final class EltwiseLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Eltwise"]
    enum Operation: String { case prod = "PROD", sum = "SUM", max = "MAX" }
    let operation: Operation
    let coeffs: [Float]
    let stableProdGrad: Bool

    init(_ ctx: LayerContext) throws {
        try ctx.expectAtLeastInputs(2)
        try ctx.expectOutputs(1)
        let p = ctx.param("eltwise_param")
        let op: String, c: [Float]
        (op, c, stableProdGrad) = try ctx.reading {
            (try p.enumName("operation", default: "SUM"), try p.floats("coeff"), try p.bool("stable_prod_grad", default: true))
        }
        guard let o = Operation(rawValue: op) else {
            throw ctx.error("eltwise_param.operation \(op) is unknown; use PROD, SUM or MAX")
        }
        operation = o
        let n = ctx.inputShapes.count
        if !c.isEmpty && o != .sum {
            throw ctx.error("eltwise_param.coeff applies only to operation SUM (this layer is \(op)); remove the coefficients")
        }
        if !c.isEmpty && c.count != n {
            throw ctx.error("eltwise_param has \(c.count) coeff values for \(n) inputs; give one per input, or none")
        }
        coeffs = c.isEmpty ? Array(repeating: 1, count: n) : c
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        for (k, s) in inputs.enumerated().dropFirst() where s != inputs[0] {
            throw error("all inputs must have the same shape: input 0 is \(inputs[0]), input \(k) is \(s)")
        }
        return [inputs[0]]
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let y = outputs[0].data, n = outputs[0].count
        switch operation {
        case .sum:
            let c0 = coeffs[0], x0 = inputs[0].data
            for i in 0..<n { y[i] = c0 * x0[i] }
            for (k, x) in inputs.enumerated().dropFirst() {
                let c = coeffs[k], xk = x.data
                for i in 0..<n { y[i] += c * xk[i] }
            }
        case .prod:
            let x0 = inputs[0].data, x1 = inputs[1].data
            for i in 0..<n { y[i] = x0[i] * x1[i] }
            for x in inputs.dropFirst(2) {
                let xk = x.data
                for i in 0..<n { y[i] *= xk[i] }
            }
        case .max:
            let a = inputs[0].data, b = inputs[1].data
            for i in 0..<n { y[i] = a[i] > b[i] ? a[i] : b[i] }
            for x in inputs.dropFirst(2) {
                let xk = x.data
                for i in 0..<n where xk[i] > y[i] { y[i] = xk[i] }
            }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let dy = pass.outputGrads[0].data, n = pass.outputGrads[0].count
        switch operation {
        case .sum:
            for (k, g) in pass.inputGrads.enumerated() {
                guard let dx = g?.data else { continue }
                let c = coeffs[k]
                for i in 0..<n { dx[i] = c * dy[i] }
            }
        case .prod:
            for (k, g) in pass.inputGrads.enumerated() {
                guard let dx = g?.data else { continue }
                if stableProdGrad {
                    // Product of the other inputs, then times dy.
                    var first = true
                    for (j, x) in pass.inputs.enumerated() where j != k {
                        let xj = x.data
                        if first { dx.update(from: xj, count: n); first = false }
                        else { for i in 0..<n { dx[i] *= xj[i] } }
                    }
                    for i in 0..<n { dx[i] *= dy[i] }
                } else {
                    let y = pass.outputs[0].data, xk = pass.inputs[k].data
                    for i in 0..<n { dx[i] = dy[i] * y[i] / xk[i] }
                }
            }
        case .max:
            // Recompute the arg-max (Caffe's mask) into scratch, then route dy.
            let mask = ctx.scratch(n, ScratchBuffer(0))
            let a = pass.inputs[0].data, b = pass.inputs[1].data
            let best = ctx.scratch(n, ScratchBuffer(1))   // the running maximum, beside the mask
            for i in 0..<n {
                if a[i] > b[i] { best[i] = a[i]; mask[i] = 0 } else { best[i] = b[i]; mask[i] = 1 }
            }
            for (k, x) in pass.inputs.enumerated().dropFirst(2) {
                let xk = x.data, kf = Float(k)
                for i in 0..<n where xk[i] > best[i] { best[i] = xk[i]; mask[i] = kf }
            }
            for (k, g) in pass.inputGrads.enumerated() {
                guard let dx = g?.data else { continue }
                let kf = Float(k)
                for i in 0..<n { dx[i] = mask[i] == kf ? dy[i] : 0 }
            }
        }
    }

    var backwardUses: BackwardUses {
        switch operation {
        case .sum: return []
        case .max: return .inputs
        case .prod: return stableProdGrad ? .inputs : .all
        }
    }
}
