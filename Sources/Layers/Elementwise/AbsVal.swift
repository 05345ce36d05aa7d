import GraphIR
import Runtime

/// AbsVal: y = |x|.
///
/// Backward: dx = sign(x) * dy, with sign(0) = 0 as in Caffe. (Caffe refuses
/// AbsVal in place; here the executor always gives distinct tensors, and the
/// backward reads the kept input.)
final class AbsValLayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["AbsVal"]

    init(_ ctx: LayerContext) throws {
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data
        for i in 0..<inputs[0].count { y[i] = abs(x[i]) }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data
        for i in 0..<dxT.count {
            let v = x[i]
            dx[i] = v > 0 ? dy[i] : (v < 0 ? -dy[i] : 0)
        }
    }

    var backwardUses: BackwardUses { .inputs }
}
