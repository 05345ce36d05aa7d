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
final class DeconvolutionLayer: ConvolutionLayerBase, BuiltinLayer {
    static let typeNames = ["Deconvolution"]

    init(_ ctx: LayerContext) throws { try super.init(ctx, transposed: true) }

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

    /// The GEMM driver for one input shape: the geometry is the one over the
    /// output image (the column side); x is the matrix side.
    private func driver(_ s: Shape, _ ctx: ExecutionContext) throws -> ConvolutionGEMM {
        let (_, h, w) = try spec.inputDims(s, error: error)
        let (oh, ow) = outSize(h, w)
        return try driver(s, columnHeight: oh, columnWidth: ow, ctx)
    }

    /// col = W^T x per group, then y = b + col2im(col). Square kernels
    /// without dilation use Winograd instead where it pays (Winograd.swift).
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let wp = parameters[0].data
        let bias = spec.biasTerm ? parameters[1].data : nil
        for (xT, yT) in zip(inputs, outputs) {
            let d = try driver(xT.shape, ctx)
            let x = xT.data, y = yT.data
            if let wg = winogradPass(d, fromMatrixSide: true, ctx.convolution) {
                winogradRun(wg, ctx, x: x, y: y, bias: bias, fromMatrixSide: true)
                continue
            }
            // Start from the bias (or zero); col2im / the GEMM add onto it.
            for n in 0..<d.images {
                let yn = y + n * d.columnImage
                if let bias {
                    denseFillBias(yn, channels: spec.numOutput, inner: d.g.height * d.g.width, bias)
                } else {
                    yn.update(repeating: 0, count: d.columnImage)
                }
            }
            d.forEachBatch { b in d.addColumnsFromMatrix(wp, d.matrix(of: x, b, ctx), b, into: y, ctx) }
        }
    }

    /// With col = im2col(dy): dx_g = W_g col_g; dW_g += x_g col_g^T; db += sum dy.
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let wp = parameters[0].data
        let dW = pass.paramGrads.first.flatMap { $0 }?.data
        let dB = spec.biasTerm && pass.paramGrads.count > 1 ? pass.paramGrads[1]?.data : nil
        for i in pass.inputs.indices {
            let d = try driver(pass.inputs[i].shape, ctx)
            let x = pass.inputs[i].data, dy = pass.outputGrads[i].data
            var dx = pass.inputGrads[i]?.data
            if let dB {
                denseAccumulateBiasGrad(dy, outer: d.images, channels: spec.numOutput,
                                        inner: d.g.height * d.g.width, dB)
            }
            if let out = dx, let wg = winogradPass(d, fromMatrixSide: false, ctx.convolution) {
                winogradRun(wg, ctx, x: dy, y: out, bias: nil, fromMatrixSide: false)
                dx = nil   // done; the code below computes dW only
            }
            guard dW != nil || dx != nil else { continue }
            d.forEachBatch { b in
                let col = d.columns(of: dy, b, ctx)
                if let dW { d.accumulateWeightGradient(d.matrix(of: x, b, ctx), col, ld: b.ld, dW) }
                if let dx { d.matrixFromColumns(wp, col, b, bias: nil, into: dx, ctx, .convolutionSecondMatrix) }
            }
        }
    }
}
