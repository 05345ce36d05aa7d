import Foundation
import GraphIR
import Runtime

/// Normalize (SSD fork, ParseNet's L2 normalisation with a learned scale), as
/// used on VGG's conv4_3 in SSD:
///
///     layer { type: "Normalize" bottom: "conv4_3" top: "conv4_3_norm"
///             norm_param { across_spatial: false channel_shared: false
///                          scale_filler { type: "constant" value: 20 } } }
///
/// Shapes: input (N, C, spatial...) of rank >= 2, with S = product of the
/// axes after C (1 for a 2-d input); output the same shape. One learnable
/// blob, the scale `a`: shape [1] if `channel_shared` (default true), else [C].
///
/// Math, with `a_c` the scale of channel c (the single value when shared):
///
///     across_spatial (default true):  r_n   = sqrt(eps + sum_{c,s} x[n,c,s]^2)
///     otherwise:                      r_n,s = sqrt(eps + sum_c   x[n,c,s]^2)
///     y[n,c,s] = a_c * x[n,c,s] / r
///
/// `eps` defaults to 1e-10 and is added once inside the root, as in the fork.
///
/// Backward (exact), summing over the elements that share one norm r
/// (the whole sample, or one spatial position):
///
///     dx[n,c,s] = a_c * dy[n,c,s] / r  -  x[n,c,s] * (sum a_c' x dy) / r^3
///     da_c     += sum_{n,s} dy[n,c,s] * x[n,c,s] / r
///
/// The fork computes `da` as sum(dy * y) / a, which is the same for a != 0 (and
/// NaN at a = 0; here it stays finite). Its `dx` leaves the scale out of the
/// inner sum: a_c * (dy - x * (sum x dy) / r^2) / r. That equals the formula
/// above whenever all a_c are equal (channel_shared, or equal scales such as
/// SSD's initial 20), and is not the derivative otherwise; this layer returns
/// the true derivative. Evidence (`SSDPluginTests`,
/// `normalizeGradientAgainstFiniteDifferences`): on the fork's own
/// `normalize_channel` case (scales 0.894, 0.218, 0.048, -0.932), double
/// precision central differences of sum(dy * y) are 9.7e-8 from our dx and 0.50
/// from the fork's (relative to max(1, max|fd|)); on a real SSD face detector
/// the fork's input gradient is 4e-2 off. See docs/writing-a-layer-plugin.md.
///
/// `scale_filler` (default constant 1) fills the scale when no caffemodel gives it.
final class NormalizeLayer: LayerBase, Layer {
    let acrossSpatial: Bool
    let channelShared: Bool
    let eps: Float
    let scaleFiller: ParamMessage
    let channels: Int

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("norm_param")
        (acrossSpatial, channelShared, eps) = try ctx.reading {
            (try p.bool("across_spatial", default: true),
             try p.bool("channel_shared", default: true),
             try p.float("eps", default: 1e-10))
        }
        guard eps >= 0, eps.isFinite else {
            throw ctx.error("norm_param.eps must be a finite number >= 0, got \(eps)")
        }
        if p.has("scale_filler") {
            scaleFiller = p.message("scale_filler")
        } else {
            scaleFiller = ParamMessage(fields: [ParamField(name: "type", value: .string("constant")),
                                                ParamField(name: "value", value: .double(1))])
        }
        let shape = ctx.inputShapes[0]
        guard shape.rank >= 2 else {
            throw ctx.error("needs an input with at least 2 axes (N, C, ...), got shape \(shape)")
        }
        channels = shape[1]
        super.init(base: ctx)
    }

    var parameterShapes: [Shape] { [Shape([channelShared ? 1 : channels])] }
    var parameterFillers: [ParamMessage?] { [scaleFiller] }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let s = inputs[0]
        guard s.rank >= 2 else { throw error("needs an input with at least 2 axes (N, C, ...), got shape \(s)") }
        guard s[1] == channels else {
            throw error("was set up for \(channels) channels (the size of its scale blob), but the input now has shape \(s)")
        }
        return [s]
    }

    /// (N, C, S) of an input shape.
    private func dims(_ s: Shape) -> (n: Int, c: Int, s: Int) {
        (s[0], s[1], s.count(from: 2))
    }

    /// The scale of channel c.
    @inline(__always) private func scale(_ a: UnsafeMutablePointer<Float>, _ c: Int) -> Float {
        channelShared ? a[0] : a[c]
    }

    /// Fills `norm` with r for each group of sample n: one value (across
    /// spatial) or S values.
    private func norms(_ x: UnsafeMutablePointer<Float>, c: Int, s: Int, into norm: UnsafeMutablePointer<Float>) {
        if acrossSpatial {
            var sum: Double = 0
            for i in 0..<(c * s) { sum += Double(x[i]) * Double(x[i]) }
            norm[0] = Float((sum + Double(eps)).squareRoot())
        } else {
            for j in 0..<s {
                var sum: Double = 0
                for ch in 0..<c { let v = Double(x[ch * s + j]); sum += v * v }
                norm[j] = Float((sum + Double(eps)).squareRoot())
            }
        }
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let (n, c, s) = dims(inputs[0].shape)
        guard n * c * s > 0 else { return }
        let a = parameters[0].data
        let norm = ctx.scratch(s)
        for i in 0..<n {
            let x = inputs[0].data + i * c * s, y = outputs[0].data + i * c * s
            norms(x, c: c, s: s, into: norm)
            for ch in 0..<c {
                let sc = scale(a, ch)
                for j in 0..<s {
                    let r = acrossSpatial ? norm[0] : norm[j]
                    y[ch * s + j] = sc * (x[ch * s + j] / r)
                }
            }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let (n, c, s) = dims(pass.inputs[0].shape)
        guard n * c * s > 0 else { return }
        let a = parameters[0].data
        let norm = ctx.scratch(s, slot: 0)
        let inner = ctx.scratch(s, slot: 1)     // sum over the group of a_c * x * dy
        let dScale = pass.paramGrads.first ?? nil
        let dxT = pass.inputGrads[0]
        for i in 0..<n {
            let off = i * c * s
            let x = pass.inputs[0].data + off, dy = pass.outputGrads[0].data + off
            norms(x, c: c, s: s, into: norm)
            if let dScale {
                let da = dScale.data
                for ch in 0..<c {
                    var sum: Double = 0
                    for j in 0..<s {
                        let r = acrossSpatial ? norm[0] : norm[j]
                        sum += Double(dy[ch * s + j]) * Double(x[ch * s + j]) / Double(r)
                    }
                    da[channelShared ? 0 : ch] += Float(sum)
                }
            }
            guard let dxT else { continue }
            let dx = dxT.data + off
            if acrossSpatial {
                var sum: Double = 0
                for ch in 0..<c {
                    let sc = Double(scale(a, ch))
                    for j in 0..<s { sum += sc * Double(x[ch * s + j]) * Double(dy[ch * s + j]) }
                }
                inner[0] = Float(sum)
            } else {
                for j in 0..<s {
                    var sum: Double = 0
                    for ch in 0..<c { sum += Double(scale(a, ch)) * Double(x[ch * s + j]) * Double(dy[ch * s + j]) }
                    inner[j] = Float(sum)
                }
            }
            for ch in 0..<c {
                let sc = Double(scale(a, ch))
                for j in 0..<s {
                    let g = acrossSpatial ? 0 : j
                    let r = Double(norm[g])
                    dx[ch * s + j] = Float(sc * Double(dy[ch * s + j]) / r - Double(x[ch * s + j]) * Double(inner[g]) / (r * r * r))
                }
            }
        }
    }

    var backwardUses: BackwardUses { .inputs }
}
