import GraphIR
import Runtime

/// ReLU: y = x if x > 0, else negative_slope * x (leaky when the slope is set).
///
/// Backward: dx = dy where x > 0, else negative_slope * dy. The mask is read
/// from the input, so the layer works in place too (x > 0 <=> y > 0 for
/// slope >= 0).
final class ReLULayer: UnaryLayer, BuiltinLayer {
    static let typeNames = ["ReLU"]
    let slope: Float

    init(_ ctx: LayerContext) throws {
        slope = try ctx.reading { try ctx.param("relu_param").float("negative_slope", default: 0) }
        try super.init(unary: ctx)
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = UnsafePointer(inputs[0].data), y = outputs[0].data, s = slope
        // y = x where x > 0, else s x (the same select as the scalar tail).
        reluMap(count: inputs[0].count, x, x, y, threads: ctx.threads) { v, _ in v.replacing(with: v * s, where: .!(v .> 0)) } scalar: { v, _ in
            v > 0 ? v : v * s
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let x = UnsafePointer(pass.inputs[0].data), dy = UnsafePointer(pass.outputGrads[0].data), s = slope
        reluMap(count: dxT.count, dy, x, dxT.data, threads: ctx.threads) { g, v in g.replacing(with: g * s, where: .!(v .> 0)) } scalar: { g, v in
            v > 0 ? g : g * s
        }
    }

    var backwardUses: BackwardUses { .inputs }
}

/// out[i] = f(a[i], b[i]) over `count` floats: eight at a time (`vector`),
/// the last few one by one (`scalar`), split between `threads` when large.
/// Memory-bound, so two threads read and write nearly twice as fast as one.
@inline(__always)
private func reluMap(count: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                     threads: Int, vector: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>, scalar: (Float, Float) -> Float) {
    let parts = denseParts(work: 4 * count, threads: threads)
    denseParallel(parts: parts) { part in
        // Slices on multiples of eight floats, so only the last has a tail.
        let blocks = (count + 7) / 8, range = denseSlice(blocks, part, parts)
        let lo = 8 * range.lowerBound, hi = min(count, 8 * range.upperBound)
        var i = lo
        while i + 8 <= hi {
            let r = vector(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self),
                           UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self))
            UnsafeMutableRawPointer(out + i).storeBytes(of: r, as: SIMD8<Float>.self)
            i += 8
        }
        while i < hi { out[i] = scalar(a[i], b[i]); i += 1 }
    }
}
