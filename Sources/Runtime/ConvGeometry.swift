/// Geometry of a 2-d convolution window over one image, as Caffe defines it:
/// out = (in + 2*pad - (dilation*(kernel-1)+1)) / stride + 1 (floor).
public struct ConvGeometry: Hashable, Sendable {
    public var channels: Int
    public var height: Int, width: Int
    public var kernelH: Int, kernelW: Int
    public var padH: Int, padW: Int
    public var strideH: Int, strideW: Int
    public var dilationH: Int, dilationW: Int

    public init(channels: Int, height: Int, width: Int, kernelH: Int, kernelW: Int,
                padH: Int = 0, padW: Int = 0, strideH: Int = 1, strideW: Int = 1,
                dilationH: Int = 1, dilationW: Int = 1) {
        self.channels = channels; self.height = height; self.width = width
        self.kernelH = kernelH; self.kernelW = kernelW; self.padH = padH; self.padW = padW
        self.strideH = strideH; self.strideW = strideW; self.dilationH = dilationH; self.dilationW = dilationW
    }

    public var outHeight: Int { (height + 2 * padH - (dilationH * (kernelH - 1) + 1)) / strideH + 1 }
    public var outWidth: Int { (width + 2 * padW - (dilationW * (kernelW - 1) + 1)) / strideW + 1 }
    /// Rows of the column matrix: C * kh * kw.
    public var columnRows: Int { channels * kernelH * kernelW }
    /// Columns of the column matrix: outH * outW.
    public var columnCols: Int { outHeight * outWidth }
    /// True when the column matrix equals the image (1x1, stride 1, no pad).
    public var isIdentity: Bool {
        kernelH == 1 && kernelW == 1 && padH == 0 && padW == 0 && strideH == 1 && strideW == 1
    }
}
