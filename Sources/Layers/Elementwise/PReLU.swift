import GraphIR
import Runtime

/// PReLU: y = max(0, x) + a_c * min(0, x), with one learned slope a_c per
/// channel (axis 1), or a single slope for all channels with
/// `channel_shared: true`. Input (N, C, ...) with at least 2 axes; the
/// slopes blob is (C) or a scalar (). Default filler: constant 0.25.
///
/// Backward (x read from the input, so the layer also works in place):
///   dx = dy * (x > 0 ? 1 : a_c)
///   da_c += sum over n and spatial positions of dy * x * (x <= 0)
final class PReLULayer: LayerBase, BuiltinLayer {
    static let typeNames = ["PReLU"]
    let channelShared: Bool
    let channels: Int
    let filler: ParamMessage

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("prelu_param")
        channelShared = try ctx.reading { try p.bool("channel_shared", default: false) }
        if p.has("filler") {
            filler = p.message("filler")
        } else {
            var f = ParamMessage()
            f.set("type", .string("constant"))
            f.set("value", .double(0.25))
            filler = f
        }
        let s = ctx.inputShapes[0]
        guard s.rank >= 2 else {
            throw ctx.error("needs an input with at least 2 axes (N, C, ...), got \(s); PReLU learns one slope per channel (axis 1)")
        }
        channels = s[1]
        super.init(base: ctx)
    }

    var parameterShapes: [Shape] { [channelShared ? Shape([]) : Shape([channels])] }
    var parameterFillers: [ParamMessage?] { [filler] }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let s = inputs[0]
        guard s.rank >= 2 else {
            throw error("needs an input with at least 2 axes (N, C, ...), got \(s)")
        }
        guard s[1] == channels else {
            throw error("input has \(s[1]) channels but the layer was set up (and its slopes sized) for \(channels)")
        }
        return [s]
    }

    /// Geometry: (outer = N, channels = C, inner = product of axes 2...).
    private func dims(_ s: Shape) -> (outer: Int, inner: Int) { (s[0], s.count(from: 2)) }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let (outer, inner) = dims(inputs[0].shape)
        let x = inputs[0].data, y = outputs[0].data, a = parameters[0].data
        for o in 0..<outer {
            for c in 0..<channels {
                let slope = channelShared ? a[0] : a[c]
                let base = (o * channels + c) * inner
                for i in base..<(base + inner) {
                    let v = x[i]
                    y[i] = max(v, 0) + slope * min(v, 0)
                }
            }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let (outer, inner) = dims(pass.inputs[0].shape)
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, a = parameters[0].data
        if let daT = pass.paramGrads[0] {
            let da = daT.data
            for o in 0..<outer {
                for c in 0..<channels {
                    let base = (o * channels + c) * inner
                    var s: Float = 0
                    for i in base..<(base + inner) {
                        let v = x[i]
                        s += v <= 0 ? dy[i] * v : 0
                    }
                    da[channelShared ? 0 : c] += s
                }
            }
        }
        if let dxT = pass.inputGrads[0] {
            let dx = dxT.data
            for o in 0..<outer {
                for c in 0..<channels {
                    let slope = channelShared ? a[0] : a[c]
                    let base = (o * channels + c) * inner
                    for i in base..<(base + inner) { dx[i] = x[i] > 0 ? dy[i] : dy[i] * slope }
                }
            }
        }
    }

    var backwardUses: BackwardUses { .inputs }
}
