import GraphIR
import Runtime

/// The scratch buffers of the convolution drivers (a Winograd pass, which
/// never runs at the same time, reuses the same memory under its own names).
extension ScratchBuffer {
    /// im2col columns of a batch of images.
    static let convolutionColumns = ScratchBuffer(0)
    /// The matrix side of a batch as one matrix, images side by side: gathered
    /// for a GEMM to read, or a GEMM's product before it is scattered.
    static let convolutionMatrix = ScratchBuffer(1)
    /// A second such matrix, needed while `convolutionMatrix` is in use
    /// (Deconvolution's dx while x is gathered for dW).
    static let convolutionSecondMatrix = ScratchBuffer(2)
}

/// The im2col + GEMM arithmetic Convolution and Deconvolution share (what
/// Caffe keeps in BaseConvolutionLayer), for one input of the layer.
///
/// One side of the layer is unrolled by im2col, the *column side*
/// (Convolution's input, Deconvolution's output); the other is a plain
/// (M x L) matrix per image, the *matrix side* (Convolution's output, M =
/// Cout; Deconvolution's input, M = C), L = the pixels of the geometry's
/// output. Both layers store their weights as W (M, C'/G, kh, kw), with C'
/// the column side's channels, so per group g:
///
///     W_g: (M/G) x (C'/G kh kw)    m_g: (M/G) x L    col_g = im2col(c)_g: (C'/G kh kw) x L
///     m_g = W_g col_g                   Convolution forward, Deconvolution dx
///     c  += col2im(W_g^T m_g)           Convolution dx, Deconvolution forward
///     dW_g += m_g col_g^T               both weight gradients
///
/// Several images sit side by side in one GEMM (`denseBatchSize`); with a
/// 1x1 stride-1 unpadded geometry the image is its own column matrix.
struct ConvolutionGEMM {
    /// The window geometry over one column-side image.
    let g: ConvGeometry
    let images: Int, groups: Int
    /// Column rows per group (C'/G kh kw) and matrix-side channels per group (M/G).
    let kg: Int, mg: Int
    /// Columns per image: the pixels of one matrix-side channel.
    let l: Int
    /// Floats of one image on each side.
    let columnImage: Int, matrixImage: Int
    /// Images per GEMM: one when the image is its own column matrix.
    let batchImages: Int
    /// Compute threads of the GEMMs and of im2col/col2im (`ExecutionContext.threads`).
    let threads: Int

    init(_ g: ConvGeometry, images: Int, groups: Int, matrixChannels: Int, threads: Int) {
        self.g = g; self.images = images; self.groups = groups; self.threads = threads
        kg = g.columnRows / groups
        mg = matrixChannels / groups
        l = g.columnCols
        columnImage = g.channels * g.height * g.width
        matrixImage = matrixChannels * g.columnCols
        batchImages = g.isIdentity ? 1 : denseBatchSize(floatsPerImage: g.columnRows * l, columnsPerImage: l, images: images)
    }

    var matrixChannels: Int { mg * groups }

    // MARK: The three products, per group (ld = columns of a batch)

    /// m_g = W_g col_g + beta m_g.
    func weightsTimesColumns(_ w: UnsafePointer<Float>, _ col: UnsafePointer<Float>, ld: Int, beta: Float = 0,
                             _ m: UnsafeMutablePointer<Float>) {
        for gi in 0..<groups {
            gemm(m: mg, n: ld, k: kg, a: w + gi * mg * kg, lda: kg, b: col + gi * kg * ld, ldb: ld,
                 beta: beta, c: m + gi * mg * ld, ldc: ld, threads: threads)
        }
    }

    /// col_g = W_g^T m_g + beta col_g.
    func weightsTransposedTimesMatrix(_ w: UnsafePointer<Float>, _ m: UnsafePointer<Float>, ld: Int, beta: Float = 0,
                                      _ col: UnsafeMutablePointer<Float>) {
        for gi in 0..<groups {
            gemm(transA: true, m: kg, n: ld, k: mg, a: w + gi * mg * kg, lda: kg, b: m + gi * mg * ld, ldb: ld,
                 beta: beta, c: col + gi * kg * ld, ldc: ld, threads: threads)
        }
    }

    /// dW_g += m_g col_g^T.
    func accumulateWeightGradient(_ m: UnsafePointer<Float>, _ col: UnsafePointer<Float>, ld: Int,
                                  _ dW: UnsafeMutablePointer<Float>) {
        for gi in 0..<groups {
            gemm(transB: true, m: mg, n: kg, k: ld, a: m + gi * mg * ld, lda: ld, b: col + gi * kg * ld, ldb: ld,
                 beta: 1, c: dW + gi * mg * kg, ldc: kg, threads: threads)
        }
    }

    // MARK: Batches of images

    /// Images `start ..< start + count` of a batch; `ld` columns side by side.
    struct Batch {
        let start: Int, count: Int, ld: Int
    }

    /// Calls `body` for consecutive batches covering every image.
    func forEachBatch(_ body: (Batch) throws -> Void) rethrows {
        var start = 0
        while start < images {
            let count = min(batchImages, images - start)
            try body(Batch(start: start, count: count, ld: count * l))
            start += count
        }
    }

    /// The column buffer of a batch: (C' kh kw) x (batchImages L) floats.
    private func columnBuffer(_ ctx: ExecutionContext) -> UnsafeMutablePointer<Float> {
        ctx.scratch(g.columnRows * batchImages * l, .convolutionColumns)
    }

    /// The im2col columns of the batch's column-side images `c` (the image
    /// itself when it is its own column matrix).
    func columns(of c: UnsafeMutablePointer<Float>, _ b: Batch, _ ctx: ExecutionContext) -> UnsafeMutablePointer<Float> {
        if g.isIdentity { return c + b.start * columnImage }
        let col = columnBuffer(ctx)
        denseIm2colBatch(g, c + b.start * columnImage, count: b.count, imageStride: columnImage, col, threads: threads)
        return col
    }

    /// The batch's matrix-side images `m` as one (M x ld) matrix (the image
    /// itself when there is one).
    func matrix(of m: UnsafeMutablePointer<Float>, _ b: Batch, _ ctx: ExecutionContext,
                _ buffer: ScratchBuffer = .convolutionMatrix) -> UnsafeMutablePointer<Float> {
        denseBatchMatrix(m + b.start * matrixImage, count: b.count, rows: matrixChannels, cols: l,
                         stride: matrixImage, ctx, buffer)
    }

    /// m = W col (+ bias) into the batch's matrix-side images: straight into
    /// the image (on top of the bias) when there is one, else through
    /// `buffer` and a scatter.
    func matrixFromColumns(_ w: UnsafePointer<Float>, _ col: UnsafePointer<Float>, _ b: Batch,
                           bias: UnsafePointer<Float>?, into m: UnsafeMutablePointer<Float>,
                           _ ctx: ExecutionContext, _ buffer: ScratchBuffer = .convolutionMatrix) {
        if b.count == 1 {
            let mn = m + b.start * matrixImage
            if let bias { denseFillBias(mn, channels: matrixChannels, inner: l, bias) }
            weightsTimesColumns(w, col, ld: b.ld, beta: bias == nil ? 0 : 1, mn)
        } else {
            let product = ctx.scratch(matrixChannels * b.ld, buffer)
            weightsTimesColumns(w, col, ld: b.ld, product)
            denseScatter(product, count: b.count, rows: matrixChannels, cols: l,
                         m + b.start * matrixImage, dstStride: matrixImage, bias: bias)
        }
    }

    /// c += col2im(W^T m) for the batch, `mb` its matrix side as one matrix
    /// (one GEMM onto the image when it is its own column matrix).
    func addColumnsFromMatrix(_ w: UnsafePointer<Float>, _ mb: UnsafePointer<Float>, _ b: Batch,
                              into c: UnsafeMutablePointer<Float>, _ ctx: ExecutionContext) {
        if g.isIdentity {
            weightsTransposedTimesMatrix(w, mb, ld: b.ld, beta: 1, c + b.start * columnImage)
            return
        }
        let col = columnBuffer(ctx)
        weightsTransposedTimesMatrix(w, mb, ld: b.ld, col)
        denseCol2imBatch(g, col, count: b.count, c + b.start * columnImage, imageStride: columnImage, threads: threads)
    }
}
