import GraphIR
import Runtime

/// Flatten: merges the axes `axis` ... `end_axis` (defaults 1 and -1, negative
/// counts from the end) into one; the data are unchanged (row-major order).
///   (d0, ..., d_{a-1}, d_a, ..., d_e, d_{e+1}, ...) -> (d0, ..., d_{a-1}, d_a * ... * d_e, d_{e+1}, ...)
/// Forward and backward are plain copies (`ShapeOnlyLayer`).
final class FlattenLayer: LayerBase, BuiltinLayer, ShapeOnlyLayer {
    static let typeNames = ["Flatten"]
    let axisParam: Int
    let endAxisParam: Int

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        let p = ctx.param("flatten_param")
        (axisParam, endAxisParam) = try ctx.reading {
            (try p.int("axis", default: 1), try p.int("end_axis", default: -1))
        }
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0]
        let start = try structureAxis(axisParam, of: x, field: "flatten_param.axis", error: { self.error($0) })
        let end = try structureAxis(endAxisParam, of: x, field: "flatten_param.end_axis", error: { self.error($0) })
        guard start <= end else {
            throw error("flatten_param.end_axis (\(end)) comes before axis (\(start)) for input \(x)")
        }
        return [Shape(Array(x.dims[..<start]) + [x.count(from: start, to: end + 1)] + Array(x.dims[(end + 1)...]))]
    }
}
