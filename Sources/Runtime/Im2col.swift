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

/// Unrolls one image (C, H, W) into columns (C*kh*kw, outH*outW) so that a
/// convolution becomes one GEMM. Padding reads as zero.
public func im2col(_ g: ConvGeometry, _ image: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) {
    let oh = g.outHeight, ow = g.outWidth, h = g.height, w = g.width
    var dst = col
    for c in 0..<g.channels {
        let src = image + c * h * w
        for ki in 0..<g.kernelH {
            for kj in 0..<g.kernelW {
                let dy = ki * g.dilationH - g.padH
                let dx = kj * g.dilationW - g.padW
                for oy in 0..<oh {
                    let y = oy * g.strideH + dy
                    if y < 0 || y >= h {
                        dst.update(repeating: 0, count: ow)
                    } else {
                        let row = src + y * w
                        if g.strideW == 1 {
                            // contiguous run with zero borders
                            let lo = max(0, -dx), hi = min(ow, w - dx)
                            if lo > 0 { dst.update(repeating: 0, count: min(lo, ow)) }
                            if hi > lo { (dst + lo).update(from: row + lo + dx, count: hi - lo) }
                            if hi < ow { (dst + max(hi, 0)).update(repeating: 0, count: ow - max(hi, 0)) }
                        } else {
                            for ox in 0..<ow {
                                let x = ox * g.strideW + dx
                                dst[ox] = (x >= 0 && x < w) ? row[x] : 0
                            }
                        }
                    }
                    dst += ow
                }
            }
        }
    }
}

/// The adjoint of im2col: adds each column entry back to the pixel it was
/// read from (image must be zeroed by the caller if it should not accumulate).
public func col2im(_ g: ConvGeometry, _ col: UnsafePointer<Float>, _ image: UnsafeMutablePointer<Float>) {
    let oh = g.outHeight, ow = g.outWidth, h = g.height, w = g.width
    var src = col
    for c in 0..<g.channels {
        let dstImage = image + c * h * w
        for ki in 0..<g.kernelH {
            for kj in 0..<g.kernelW {
                let dy = ki * g.dilationH - g.padH
                let dx = kj * g.dilationW - g.padW
                for oy in 0..<oh {
                    let y = oy * g.strideH + dy
                    if y >= 0 && y < h {
                        let row = dstImage + y * w
                        if g.strideW == 1 {
                            let lo = max(0, -dx), hi = min(ow, w - dx)
                            if hi > lo {
                                let r = row + dx
                                for ox in lo..<hi { r[ox] += src[ox] }
                            }
                        } else {
                            for ox in 0..<ow {
                                let x = ox * g.strideW + dx
                                if x >= 0 && x < w { row[x] += src[ox] }
                            }
                        }
                    }
                    src += ow
                }
            }
        }
    }
}
