import GraphIR
import Runtime

/// The `convolution_param` of Convolution and Deconvolution, read and checked
/// as Caffe's BaseConvolutionLayer::LayerSetUp does, for two spatial axes.
///
/// Window sizes come either as `kernel_size` (once, or once per spatial axis:
/// h then w) or as the pair `kernel_h`/`kernel_w`; likewise `stride`
/// (default 1) / `stride_h`,`stride_w` and `pad` (default 0) / `pad_h`,`pad_w`.
/// `dilation` (default 1) has only the repeated form.
struct ConvolutionSpec {
    let numOutput: Int
    let biasTerm: Bool
    let group: Int
    /// The channel axis (canonical); spatial axes are axis+1 and axis+2.
    let axis: Int
    let kernelH: Int, kernelW: Int
    let strideH: Int, strideW: Int
    let padH: Int, padW: Int
    let dilationH: Int, dilationW: Int
    let weightFiller: ParamMessage
    let biasFiller: ParamMessage
    /// Input rank and channel count the layer was set up for (its weights'
    /// shape depends on them).
    let rank: Int
    let channels: Int

    /// The fillers of the weight blob and, with a bias term, of the bias.
    var fillers: [ParamMessage?] { biasTerm ? [weightFiller, biasFiller] : [weightFiller] }

    /// Reads `convolution_param` for Convolution and Deconvolution, which
    /// both take one output per input.
    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(1...1024)
        guard ctx.outputCount == ctx.inputShapes.count else {
            throw ctx.error("has \(ctx.inputShapes.count) inputs but \(ctx.outputCount) outputs; \(ctx.node.type) needs one output per input")
        }
        let p = ctx.param("convolution_param")
        let input = ctx.inputShapes[0]
        (numOutput, biasTerm, group, axis, weightFiller, biasFiller) = try ctx.reading {
            let numOutput = try p.int("num_output", default: 0)
            let biasTerm = try p.bool("bias_term", default: true)
            let group = try p.int("group", default: 1)
            let rawAxis = try p.int("axis", default: 1)
            _ = try p.enumName("engine", default: "DEFAULT")          // CPU: one engine
            _ = try p.bool("force_nd_im2col", default: false)       // same result either way
            guard let axis = input.canonicalAxis(rawAxis) else {
                throw ctx.error("axis \(rawAxis) is out of range for the \(input.rank)-d input \(input)")
            }
            return (numOutput, biasTerm, group, axis, p.message("weight_filler"), p.message("bias_filler"))
        }
        let spatialAxes = input.rank - axis - 1
        guard spatialAxes == 2 else {
            throw ctx.error("input \(input) has \(max(spatialAxes, 0)) spatial axes after the channel axis \(axis); only 2-d convolution (N, C, H, W) is supported")
        }
        guard numOutput > 0 else {
            throw ctx.error("num_output must be > 0 (got \(numOutput)); set convolution_param { num_output: ... }")
        }
        guard group > 0 else { throw ctx.error("group must be > 0 (got \(group))") }
        rank = input.rank
        channels = input[axis]

        /// One spatial setting: the pair `<stem>_h`/`<stem>_w`, or the repeated
        /// field `list` given once or once per spatial axis.
        func pair(_ stem: String, list: String, default d: Int?) throws -> (Int, Int) {
            try ctx.reading {
                let hasH = p.has("\(stem)_h"), hasW = p.has("\(stem)_w")
                let values = try p.ints(list)
                if hasH || hasW {
                    guard values.isEmpty else {
                        throw ctx.error("either \(list) or \(stem)_h/\(stem)_w should be specified; not both")
                    }
                    // pad_h/pad_w default to 0; kernel and stride need both.
                    guard (hasH && hasW) || stem == "pad" else {
                        throw ctx.error("\(stem)_h and \(stem)_w must be given together (only \(hasH ? "\(stem)_h" : "\(stem)_w") is set)")
                    }
                    return (try p.int("\(stem)_h", default: 0), try p.int("\(stem)_w", default: 0))
                }
                switch values.count {
                case 0:
                    guard let d else {
                        throw ctx.error("kernel size is not set: give kernel_size, or kernel_h and kernel_w")
                    }
                    return (d, d)
                case 1: return (values[0], values[0])
                case 2: return (values[0], values[1])
                default:
                    throw ctx.error("\(list) must be specified once, or once per spatial dimension (\(list) specified \(values.count) times; 2 spatial dims)")
                }
            }
        }
        (kernelH, kernelW) = try pair("kernel", list: "kernel_size", default: nil)
        (strideH, strideW) = try pair("stride", list: "stride", default: 1)
        (padH, padW) = try pair("pad", list: "pad", default: 0)
        let dil = try ctx.reading { try p.ints("dilation") }
        switch dil.count {
        case 0: (dilationH, dilationW) = (1, 1)
        case 1: (dilationH, dilationW) = (dil[0], dil[0])
        case 2: (dilationH, dilationW) = (dil[0], dil[1])
        default:
            throw ctx.error("dilation must be specified once, or once per spatial dimension (dilation specified \(dil.count) times; 2 spatial dims)")
        }
        guard kernelH > 0, kernelW > 0 else {
            throw ctx.error("filter dimensions must be nonzero (kernel \(kernelH)x\(kernelW))")
        }
        guard strideH > 0, strideW > 0 else {
            throw ctx.error("stride must be nonzero (stride \(strideH)x\(strideW))")
        }
        guard padH >= 0, padW >= 0 else { throw ctx.error("pad must be >= 0 (pad \(padH)x\(padW))") }
        guard dilationH > 0, dilationW > 0 else {
            throw ctx.error("dilation must be nonzero (dilation \(dilationH)x\(dilationW))")
        }
        guard channels % group == 0 else {
            throw ctx.error("the input's \(channels) channels are not a multiple of group \(group)")
        }
        guard numOutput % group == 0 else {
            throw ctx.error("num_output \(numOutput) is not a multiple of group \(group)")
        }
    }

    /// The window geometry over an image of `channels` x h x w.
    func geometry(channels c: Int, height h: Int, width w: Int) -> ConvGeometry {
        ConvGeometry(channels: c, height: h, width: w, kernelH: kernelH, kernelW: kernelW,
                     padH: padH, padW: padW, strideH: strideH, strideW: strideW,
                     dilationH: dilationH, dilationW: dilationW)
    }

    /// Checks a (new) input shape against the set-up one; returns (num, h, w).
    func inputDims(_ s: Shape, error: (String) -> RuntimeError) throws -> (num: Int, h: Int, w: Int) {
        guard s.rank == rank else {
            throw error("input rank changed from \(rank) to \(s.rank) (\(s)); the number of axes may not change")
        }
        guard s[axis] == channels else {
            throw error("input has \(s[axis]) channels but the weights were made for \(channels); input size incompatible with the convolution kernel")
        }
        return (s.count(from: 0, to: axis), s[axis + 1], s[axis + 2])
    }

    /// Output shape with `c` channels and spatial size oh x ow.
    func outputShape(_ s: Shape, channels c: Int, oh: Int, ow: Int) -> Shape {
        Shape(Array(s.dims[0..<axis]) + [c, oh, ow])
    }

    /// Every input of a multi-input layer must have the shape of the first.
    static func checkSameShapes(_ inputs: [Shape], error: (String) -> RuntimeError) throws {
        for (i, s) in inputs.enumerated() where s != inputs[0] {
            throw error("all inputs must have the same shape: input 0 is \(inputs[0]), input \(i) is \(s)")
        }
    }
}

/// What Convolution and Deconvolution share (Caffe's BaseConvolutionLayer):
/// the parameters and their shapes. Both store W as (M, C'/group, kh, kw),
/// M the channels of the side that is a plain matrix and C' those of the
/// side im2col unrolls (see `ConvolutionGEMM`): Convolution's output and
/// input, Deconvolution's input and output (`transposed`).
class ConvolutionLayerBase: LayerBase {
    let spec: ConvolutionSpec
    /// True for Deconvolution: the output is the im2col side.
    let transposed: Bool
    var currentMACs = 0

    init(_ ctx: LayerContext, transposed: Bool) throws {
        spec = try ConvolutionSpec(ctx)
        self.transposed = transposed
        super.init(base: ctx)
    }

    /// M: channels of the matrix side.
    var matrixChannels: Int { transposed ? spec.channels : spec.numOutput }
    /// C': channels of the im2col side.
    var columnChannels: Int { transposed ? spec.numOutput : spec.channels }

    var parameterShapes: [Shape] {
        let w = Shape([matrixChannels, columnChannels / spec.group, spec.kernelH, spec.kernelW])
        return spec.biasTerm ? [w, Shape([spec.numOutput])] : [w]
    }
    var parameterFillers: [ParamMessage?] { spec.fillers }
    var macs: Int { currentMACs }
    var backwardUses: BackwardUses { .inputs }

    /// The Winograd pass for driver `d`, when it applies (square kernel, no
    /// dilation, enough channels and outputs; see Winograd.swift): from the
    /// column side to the matrix side it is the strided correlation
    /// (Convolution's forward, Deconvolution's dx), the other way its
    /// transpose.
    func winogradPass(_ d: ConvolutionGEMM, fromMatrixSide: Bool, _ algorithm: ConvolutionAlgorithm) -> WinogradPass? {
        let columnPer = columnChannels / spec.group
        let (ch, cw, mh, mw) = (d.g.height, d.g.width, d.g.outHeight, d.g.outWidth)
        return fromMatrixSide
            ? WinogradPass.plan(algorithm, transposed: true, spec, images: d.images, c: d.mg, k: columnPer,
                                h: mh, w: mw, outH: ch, outW: cw)
            : WinogradPass.plan(algorithm, transposed: false, spec, images: d.images, c: columnPer, k: d.mg,
                                h: ch, w: cw, outH: mh, outW: mw)
    }

    /// Runs `pass` from x to y with this layer's weights: the kernel of group
    /// g between matrix-side channel m and column-side channel c is
    /// W[(g M/G + m) C'/G + c].
    func winogradRun(_ pass: WinogradPass, _ ctx: ExecutionContext, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                     bias: UnsafePointer<Float>?, fromMatrixSide: Bool) {
        let wp = parameters[0].data, area = spec.kernelH * spec.kernelW
        let mPer = matrixChannels / spec.group, cPer = columnChannels / spec.group
        func kernel(_ g: Int, matrix m: Int, column c: Int) -> UnsafePointer<Float> {
            UnsafePointer(wp + ((g * mPer + m) * cPer + c) * area)
        }
        Layers.winogradRun(pass, ctx, x: x, y: y, bias: bias) { g, out, inp in
            fromMatrixSide ? kernel(g, matrix: inp, column: out) : kernel(g, matrix: out, column: inp)
        }
    }

    /// The GEMM driver for an input of `s` with the im2col side's spatial
    /// size `h` x `w`, on the context's threads.
    func driver(_ s: Shape, columnHeight h: Int, columnWidth w: Int, _ ctx: ExecutionContext) throws -> ConvolutionGEMM {
        let (num, _, _) = try spec.inputDims(s, error: error)
        return ConvolutionGEMM(spec.geometry(channels: columnChannels, height: h, width: w), images: num,
                               groups: spec.group, matrixChannels: matrixChannels, threads: ctx.threads)
    }
}

/// Convolution (Caffe's ConvolutionLayer), 2-d, with groups, dilation,
/// rectangular kernels/strides/pads and an optional bias.
///
/// Shapes: x (N, C, H, W) -> y (N, Cout, OH, OW), OH = (H + 2 padH -
/// (dilH (kh - 1) + 1)) / strideH + 1 (floor), likewise OW. Weights
/// W (Cout, C/group, kh, kw), bias b (Cout). Several input/output pairs share
/// the weights, as in Caffe.
///
/// Per group g (channels g*C/G..., outputs g*Cout/G...), with col = im2col(x):
///     y_g = W_g (Cout/G x C/G*kh*kw) * col_g (C/G*kh*kw x OH*OW) + b
/// Several images' column matrices sit side by side so one GEMM covers a
/// batch (then its result is scattered back to NCHW); a 1x1 stride-1
/// unpadded convolution multiplies the image directly.
final class ConvolutionLayer: ConvolutionLayerBase, BuiltinLayer {
    static let typeNames = ["Convolution"]

    init(_ ctx: LayerContext) throws { try super.init(ctx, transposed: false) }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        try ConvolutionSpec.checkSameShapes(inputs, error: error)
        let (num, h, w) = try spec.inputDims(inputs[0], error: error)
        let g = spec.geometry(channels: spec.channels, height: h, width: w)
        guard g.outHeight > 0, g.outWidth > 0,
              h + 2 * spec.padH >= spec.dilationH * (spec.kernelH - 1) + 1,
              w + 2 * spec.padW >= spec.dilationW * (spec.kernelW - 1) + 1 else {
            throw error("the \(spec.kernelH)x\(spec.kernelW) kernel (dilation \(spec.dilationH)x\(spec.dilationW)) does not fit the \(h)x\(w) input padded by \(spec.padH)x\(spec.padW)")
        }
        currentMACs = inputs.count * num * spec.numOutput * g.columnCols * (spec.channels / spec.group) * spec.kernelH * spec.kernelW
        let out = spec.outputShape(inputs[0], channels: spec.numOutput, oh: g.outHeight, ow: g.outWidth)
        return inputs.map { _ in out }
    }

    /// The GEMM driver for one input shape: x is the column side, y the matrix side.
    private func driver(_ s: Shape, _ ctx: ExecutionContext) throws -> ConvolutionGEMM {
        let (_, h, w) = try spec.inputDims(s, error: error)
        return try driver(s, columnHeight: h, columnWidth: w, ctx)
    }

    /// y = W * im2col(x) + b, per group; batched over images. Square kernels
    /// without dilation use Winograd instead where it pays (Winograd.swift).
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let wp = parameters[0].data
        let bias = spec.biasTerm ? parameters[1].data : nil
        for (xT, yT) in zip(inputs, outputs) {
            let d = try driver(xT.shape, ctx)
            let x = xT.data, y = yT.data
            if let wg = winogradPass(d, fromMatrixSide: false, ctx.convolution) {
                winogradRun(wg, ctx, x: x, y: y, bias: bias, fromMatrixSide: false)
                continue
            }
            d.forEachBatch { b in d.matrixFromColumns(wp, d.columns(of: x, b, ctx), b, bias: bias, into: y, ctx) }
        }
    }

    /// db += sum_{n,pixels} dy;  dW_g += dy_g * col_g^T;  dx = col2im(W_g^T dy_g).
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let wp = parameters[0].data
        let dW = pass.paramGrads.first.flatMap { $0 }?.data
        let dB = spec.biasTerm && pass.paramGrads.count > 1 ? pass.paramGrads[1]?.data : nil
        for i in pass.inputs.indices {
            let d = try driver(pass.inputs[i].shape, ctx)
            let x = pass.inputs[i].data, dy = pass.outputGrads[i].data
            var dx = pass.inputGrads[i]?.data
            if let dB { denseAccumulateBiasGrad(dy, outer: d.images, channels: spec.numOutput, inner: d.l, dB) }
            if let out = dx, let wg = winogradPass(d, fromMatrixSide: true, ctx.convolution) {
                winogradRun(wg, ctx, x: dy, y: out, bias: nil, fromMatrixSide: true)
                dx = nil   // done; the loop below computes dW only
            }
            guard dW != nil || dx != nil else { continue }
            if let dx { dx.update(repeating: 0, count: d.images * d.columnImage) }
            d.forEachBatch { b in
                // dy of the batch as one (Cout x count*L) matrix.
                let dyb = d.matrix(of: dy, b, ctx)
                if let dW { d.accumulateWeightGradient(dyb, d.columns(of: x, b, ctx), ld: b.ld, dW) }
                if let dx { d.addColumnsFromMatrix(wp, dyb, b, into: dx, ctx) }
            }
        }
    }
}
