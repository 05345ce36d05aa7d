import GraphIR
import Runtime

/// Tile: repeats the input `tiles` times along `axis` (`tile_param`, axis
/// default 1, negative counts from the end; tiles required, > 0).
///
/// Viewing x as (outer, inner) with inner = count(axis) and y as
/// (outer, tiles, inner):
///   y[o, t, i] = x[o, i]
/// Backward: dx[o, i] = sum_t dy[o, t, i].
final class TileLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Tile"]
    let axisParam: Int
    let tiles: Int
    private var outer = 1, inner = 1

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("tile_param")
        guard p.has("tiles") else { throw ctx.error("tile_param.tiles is required: give the number of copies") }
        (axisParam, tiles) = try ctx.reading { (try p.int("axis", default: 1), try p.int("tiles", default: 1)) }
        guard tiles > 0 else { throw ctx.error("tile_param.tiles must be positive; got \(tiles)") }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0]
        let axis = try structureAxis(axisParam, of: x, field: "tile_param.axis", error: { self.error($0) })
        outer = x.count(from: 0, to: axis)
        inner = x.count(from: axis)
        var out = x
        out[axis] *= tiles
        return [out]
    }

    /// One block copy of `inner` floats per (o, t).
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data
        for o in 0..<outer {
            for t in 0..<tiles { (y + (o * tiles + t) * inner).update(from: x + o * inner, count: inner) }
        }
    }

    /// dx[o] = dy[o, 0] + dy[o, 1] + ... (first tile copied, the rest added).
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let dx = dxT.data, dy = pass.outputGrads[0].data, n = inner
        for o in 0..<outer {
            let d = dx + o * n
            d.update(from: dy + o * tiles * n, count: n)
            for t in 1..<tiles {
                let s = dy + (o * tiles + t) * n
                for i in 0..<n { d[i] += s[i] }
            }
        }
    }

    var backwardUses: BackwardUses { [] }
}
