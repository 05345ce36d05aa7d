import _Differentiation
import GraphIR

/// Layers whose backward pass is derived by the compiler.
///
/// A layer author writes only the forward computation as a
/// `@differentiable(reverse)` Swift function; the Swift toolchain's automatic
/// differentiation (`_Differentiation`) produces the vector-Jacobian product.
///
///     @differentiable(reverse) func mish(_ x: Float) -> Float { x * tanh(log(1 + exp(x))) }
///     try registry.registerElementwise("Mish", function: mish)
///
/// When is this fast enough? The element-wise form calls the pullback once
/// per element: fine for activations of any size (a few ns per element more
/// than a hand-written loop). The array form (`registerDifferentiable`)
/// builds Swift arrays and a tape per sample: fine for small tensors (heads,
/// normalisations of a few thousand values), too slow for convolutions or
/// large inner products — write those as a `Layer` with a hand-written
/// backward over `gemm`.
public typealias ScalarFunction = @differentiable(reverse) (Float) -> Float

/// y = f(x) element-wise, any shape; dx = f'(x) * dy via the pullback.
public final class ElementwiseFunctionLayer: LayerBase, Layer {
    let f: ScalarFunction
    public init(_ ctx: LayerContext, _ f: @escaping ScalarFunction) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        self.f = f
        super.init(base: ctx)
    }
    public func reshape(_ inputs: [Shape]) throws -> [Shape] { [inputs[0]] }
    public func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0].data, y = outputs[0].data
        for i in 0..<inputs[0].count { y[i] = f(x[i]) }
    }
    public func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dxT = pass.inputGrads[0] else { return }
        let x = pass.inputs[0].data, dy = pass.outputGrads[0].data, dx = dxT.data
        for i in 0..<dxT.count { dx[i] = gradient(at: x[i], of: f) * dy[i] }
    }
    public var backwardUses: BackwardUses { .inputs }
}

/// A general per-sample function of the input and the layer's learnable
/// values: out_n = f(x_n, params), differentiated with respect to both.
public typealias SampleFunction = @differentiable(reverse) ([Float], [Float]) -> [Float]

/// What a differentiable layer declares besides its function.
public struct DifferentiableLayerSpec {
    /// Per-sample output shape (without the batch axis) for a per-sample input shape.
    public var outputShape: (Shape) throws -> Shape
    /// Learnable values (one flat blob) and their initial value when no weights are given.
    public var parameterCount: Int
    public var parameterFiller: ParamMessage?
    public var function: SampleFunction
    public init(outputShape: @escaping (Shape) throws -> Shape, parameterCount: Int = 0,
                parameterFiller: ParamMessage? = nil, function: @escaping SampleFunction) {
        self.outputShape = outputShape; self.parameterCount = parameterCount
        self.parameterFiller = parameterFiller; self.function = function
    }
}

public final class DifferentiableFunctionLayer: LayerBase, Layer {
    let spec: DifferentiableLayerSpec
    public init(_ ctx: LayerContext, _ spec: DifferentiableLayerSpec) throws {
        try ctx.expectInputs(1)
        try ctx.expectOutputs(1)
        self.spec = spec
        super.init(base: ctx)
    }
    public var parameterShapes: [Shape] { spec.parameterCount > 0 ? [Shape([spec.parameterCount])] : [] }
    public var parameterFillers: [ParamMessage?] { spec.parameterCount > 0 ? [spec.parameterFiller] : [] }

    public func reshape(_ inputs: [Shape]) throws -> [Shape] {
        guard inputs[0].rank >= 1 else { throw error("needs a batch axis") }
        let per = try spec.outputShape(Shape(Array(inputs[0].dims.dropFirst())))
        return [Shape([inputs[0][0]] + per.dims)]
    }
    private var params: [Float] { parameters.first?.array ?? [] }

    public func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let n = inputs[0].shape[0], inPer = inputs[0].count / max(n, 1), outPer = outputs[0].count / max(n, 1)
        let p = params
        for s in 0..<n {
            let x = Array(UnsafeBufferPointer(start: inputs[0].data + s * inPer, count: inPer))
            let y = spec.function(x, p)
            guard y.count == outPer else { throw error("the function returned \(y.count) values; the declared output shape holds \(outPer)") }
            (outputs[0].data + s * outPer).update(from: y, count: outPer)
        }
    }

    public func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let n = pass.inputs[0].shape[0], inPer = pass.inputs[0].count / max(n, 1), outPer = pass.outputs[0].count / max(n, 1)
        let p = params
        for s in 0..<n {
            let x = Array(UnsafeBufferPointer(start: pass.inputs[0].data + s * inPer, count: inPer))
            let (_, pb) = valueWithPullback(at: x, p, of: spec.function)
            let dy = Array(UnsafeBufferPointer(start: pass.outputGrads[0].data + s * outPer, count: outPer))
            let (dx, dp) = pb(Array<Float>.TangentVector(dy))
            if let g = pass.inputGrads[0] {
                let v = dx.base
                if v.count == inPer { (g.data + s * inPer).update(from: v, count: inPer) } else { (g.data + s * inPer).update(repeating: 0, count: inPer) }
            }
            if let pg = pass.paramGrads.first ?? nil {
                let v = dp.base
                for j in 0..<min(v.count, pg.count) { pg.data[j] += v[j] }
            }
        }
    }
    public var backwardUses: BackwardUses { .inputs }
}

extension LayerRegistry {
    /// Registers an element-wise layer from a differentiable scalar function.
    public func registerElementwise(_ type: String, origin: String = "built-in", replacing: Bool = false,
                                    function: @escaping ScalarFunction) throws {
        try register(type, origin: origin, replacing: replacing) { ctx in
            try ElementwiseFunctionLayer(ctx, function)
        }
    }

    /// Registers a layer from a differentiable per-sample function.
    public func registerDifferentiable(_ type: String, origin: String = "built-in", replacing: Bool = false,
                                       _ make: @escaping (LayerContext) throws -> DifferentiableLayerSpec) throws {
        try register(type, origin: origin, replacing: replacing) { ctx in
            try DifferentiableFunctionLayer(ctx, try ctx.reading { try make(ctx) })
        }
    }
}
