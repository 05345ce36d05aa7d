import GraphIR
import Runtime

/// Deconvolution (Caffe's DeconvolutionLayer): the transpose of Convolution,
/// same `convolution_param`.
///
/// Shapes: x (N, C, H, W) -> y (N, Cout, OH, OW) with OH = strideH (H - 1) +
/// dilH (kh - 1) + 1 - 2 padH, likewise OW. Weights W (C, Cout/group, kh, kw)
/// (input channels first, as Caffe stores them), bias b (Cout).
///
/// The convolution geometry is the one over the *output* image: its column
/// matrix has Cout*kh*kw rows and H*W columns. Per group g:
///     forward:   y = col2im(W_g^T (Cout/G*kh*kw x C/G) * x_g (C/G x H*W)) + b
///     backward:  dx_g = W_g * im2col(dy)_g;  dW_g += x_g * im2col(dy)_g^T;
///                db += sum of dy over images and pixels.
/// Images are batched side by side into one GEMM like Convolution.
final class DeconvolutionLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Deconvolution"]
    let spec: ConvolutionSpec
    private var currentMACs = 0

    init(_ ctx: LayerContext) throws {
        spec = try ConvolutionSpec(ctx)
        super.init(base: ctx)
    }

    var parameterShapes: [Shape] {
        let w = Shape([spec.channels, spec.numOutput / spec.group, spec.kernelH, spec.kernelW])
        return spec.biasTerm ? [w, Shape([spec.numOutput])] : [w]
    }
    var parameterFillers: [ParamMessage?] { spec.fillers }

    /// Output size: stride (in - 1) + dilation (k - 1) + 1 - 2 pad.
    private func outSize(_ h: Int, _ w: Int) -> (Int, Int) {
        (spec.strideH * (h - 1) + spec.dilationH * (spec.kernelH - 1) + 1 - 2 * spec.padH,
         spec.strideW * (w - 1) + spec.dilationW * (spec.kernelW - 1) + 1 - 2 * spec.padW)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        try ConvolutionSpec.checkSameShapes(inputs, error: error)
        let (num, h, w) = try spec.inputDims(inputs[0], error: error)
        let (oh, ow) = outSize(h, w)
        guard h > 0, w > 0, oh > 0, ow > 0 else {
            throw error("output size \(oh)x\(ow) for the \(h)x\(w) input is empty; the padding \(spec.padH)x\(spec.padW) is too large for kernel \(spec.kernelH)x\(spec.kernelW) stride \(spec.strideH)x\(spec.strideW)")
        }
        currentMACs = inputs.count * num * spec.channels * h * w * (spec.numOutput / spec.group) * spec.kernelH * spec.kernelW
        let out = spec.outputShape(inputs[0], channels: spec.numOutput, oh: oh, ow: ow)
        return inputs.map { _ in out }
    }

    var macs: Int { currentMACs }
    var backwardUses: BackwardUses { .inputs }

    private struct Plan {
        let num: Int, g: ConvGeometry   // geometry over the output image
        let k: Int, kg: Int             // column rows (Cout*kh*kw): all, per group
        let l: Int                      // column cols = H*W of the input
        let cg: Int                     // input channels per group
        let inImage: Int, outImage: Int
    }
    private func plan(_ s: Shape) throws -> Plan {
        let (num, h, w) = try spec.inputDims(s, error: error)
        let (oh, ow) = outSize(h, w)
        let g = spec.geometry(channels: spec.numOutput, height: oh, width: ow)
        return Plan(num: num, g: g, k: g.columnRows, kg: g.columnRows / spec.group, l: h * w,
                    cg: spec.channels / spec.group, inImage: spec.channels * h * w,
                    outImage: spec.numOutput * oh * ow)
    }

    /// The Winograd plan for input `p`, when it applies (square kernel, no
    /// dilation, enough channels and outputs; see Winograd.swift): the forward pass is
    /// the transposed correlation x -> y; dx (`gradient`) the strided
    /// correlation dy -> dx.
    private func winograd(_ p: Plan, gradient: Bool, _ algorithm: ConvolutionAlgorithm) -> WinogradPass? {
        // p.g is the geometry over the output image, so its "output" is the input.
        let h = p.g.outHeight, w = p.g.outWidth, oh = p.g.height, ow = p.g.width
        let kPer = spec.numOutput / spec.group
        return WinogradPass.plan(algorithm, transposed: !gradient, spec, images: p.num,
                                 c: gradient ? kPer : p.cg, k: gradient ? p.cg : kPer,
                                 h: gradient ? oh : h, w: gradient ? ow : w, outH: gradient ? h : oh, outW: gradient ? w : ow)
    }

    /// col = W^T x per group, then y = b + col2im(col). Square kernels
    /// without dilation use Winograd instead where it pays (Winograd.swift).
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let wp = parameters[0].data, groups = spec.group
        let bias = spec.biasTerm ? parameters[1].data : nil
        for (xT, yT) in zip(inputs, outputs) {
            let p = try plan(xT.shape)
            let x = xT.data, y = yT.data
            if let wg = winograd(p, gradient: false, ctx.convolution) {
                // W[g*C + c][k] is the kernel from input c to output k of group g.
                let kPer = wg.k, cPer = wg.c, area = spec.kernelH * spec.kernelW
                winogradRun(wg, ctx, x: x, y: y, bias: bias) { g, k, c in UnsafePointer(wp + ((g * cPer + c) * kPer + k) * area) }
                continue
            }
            let outPlane = p.g.height * p.g.width
            // Start from the bias (or zero); col2im / the GEMM add onto it.
            for n in 0..<p.num {
                let yn = y + n * p.outImage
                if let bias {
                    denseFillBias(yn, channels: spec.numOutput, inner: outPlane, bias)
                } else {
                    yn.update(repeating: 0, count: p.outImage)
                }
            }
            if p.g.isIdentity {
                // 1x1 stride 1: col2im is the identity.
                for n in 0..<p.num {
                    for gi in 0..<groups {
                        gemm(transA: true, m: p.kg, n: p.l, k: p.cg, a: wp + gi * p.cg * p.kg,
                             b: x + n * p.inImage + gi * p.cg * p.l, beta: 1, c: y + n * p.outImage + gi * p.kg * p.l)
                    }
                }
                continue
            }
            let nb = denseBatchSize(floatsPerImage: p.k * p.l, columnsPerImage: p.l, images: p.num)
            let col = ctx.scratch(p.k * nb * p.l, slot: 0)
            var start = 0
            while start < p.num {
                let cnt = min(nb, p.num - start), ld = cnt * p.l
                let xb = denseBatchMatrix(x + start * p.inImage, count: cnt, rows: spec.channels, cols: p.l,
                                          stride: p.inImage, ctx, slot: 1)
                for gi in 0..<groups {
                    gemm(transA: true, m: p.kg, n: ld, k: p.cg, a: wp + gi * p.cg * p.kg, lda: p.kg,
                         b: xb + gi * p.cg * ld, ldb: ld, c: col + gi * p.kg * ld, ldc: ld)
                }
                denseCol2imBatch(p.g, col, count: cnt, y + start * p.outImage, imageStride: p.outImage)
                start += cnt
            }
        }
    }

    /// With col = im2col(dy): dx_g = W_g col_g; dW_g += x_g col_g^T; db += sum dy.
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let wp = parameters[0].data, groups = spec.group
        let dW = pass.paramGrads.first.flatMap { $0 }?.data
        let dB = spec.biasTerm && pass.paramGrads.count > 1 ? pass.paramGrads[1]?.data : nil
        for i in pass.inputs.indices {
            let p = try plan(pass.inputs[i].shape)
            let x = pass.inputs[i].data, dy = pass.outputGrads[i].data
            var dx = pass.inputGrads[i]?.data
            if let dB {
                denseAccumulateBiasGrad(dy, outer: p.num, channels: spec.numOutput,
                                        inner: p.g.height * p.g.width, dB)
            }
            if let out = dx, let wg = winograd(p, gradient: true, ctx.convolution) {
                // The pass runs from dy (K per group) to dx (C per group).
                let kPer = wg.c, cPer = wg.k, area = spec.kernelH * spec.kernelW
                winogradRun(wg, ctx, x: dy, y: out, bias: nil) { g, c, k in UnsafePointer(wp + ((g * cPer + c) * kPer + k) * area) }
                dx = nil   // done; the code below computes dW only
            }
            guard dW != nil || dx != nil else { continue }
            if p.g.isIdentity {
                for n in 0..<p.num {
                    for gi in 0..<groups {
                        let dyg = dy + n * p.outImage + gi * p.kg * p.l
                        if let dW {
                            gemm(transB: true, m: p.cg, n: p.kg, k: p.l, a: x + n * p.inImage + gi * p.cg * p.l,
                                 b: dyg, beta: 1, c: dW + gi * p.cg * p.kg)
                        }
                        if let dx {
                            gemm(m: p.cg, n: p.l, k: p.kg, a: wp + gi * p.cg * p.kg, b: dyg,
                                 c: dx + n * p.inImage + gi * p.cg * p.l)
                        }
                    }
                }
                continue
            }
            let nb = denseBatchSize(floatsPerImage: p.k * p.l, columnsPerImage: p.l, images: p.num)
            let col = ctx.scratch(p.k * nb * p.l, slot: 0)
            var start = 0
            while start < p.num {
                let cnt = min(nb, p.num - start), ld = cnt * p.l
                denseIm2colBatch(p.g, dy + start * p.outImage, count: cnt, imageStride: p.outImage, col)
                if let dW {
                    let xb = denseBatchMatrix(x + start * p.inImage, count: cnt, rows: spec.channels, cols: p.l,
                                              stride: p.inImage, ctx, slot: 1)
                    for gi in 0..<groups {
                        gemm(transB: true, m: p.cg, n: p.kg, k: ld, a: xb + gi * p.cg * ld, lda: ld,
                             b: col + gi * p.kg * ld, ldb: ld, beta: 1, c: dW + gi * p.cg * p.kg, ldc: p.kg)
                    }
                }
                if let dx {
                    let dst = cnt == 1 ? dx + start * p.inImage : ctx.scratch(spec.channels * ld, slot: 2)
                    for gi in 0..<groups {
                        gemm(m: p.cg, n: ld, k: p.kg, a: wp + gi * p.cg * p.kg, lda: p.kg,
                             b: col + gi * p.kg * ld, ldb: ld, c: dst + gi * p.cg * ld, ldc: ld)
                    }
                    if cnt > 1 {
                        denseScatter(dst, count: cnt, rows: spec.channels, cols: p.l,
                                     dx + start * p.inImage, dstStride: p.inImage)
                    }
                }
                start += cnt
            }
        }
    }
}
