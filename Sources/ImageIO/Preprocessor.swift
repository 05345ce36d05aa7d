import GraphIR
import Tensors

/// Turns an image into a network input the way pycaffe's classic
/// `caffe.io.Transformer` does, and turns a network-space array back into a
/// picture for display.
///
/// For a net input of shape (N, C, H, W), `tensor(from:shape:)` computes
///
///     x = image as RGB floats in [0, 1]                   (H0, W0, 3)   alpha dropped
///     x = resize(x, H, W)                                 (H, W, 3)     bilinear; or, with
///                                                                        centerCrop, scale the
///                                                                        short side then crop
///     x = transpose(x) ; x = x[channelSwap]               (3, H, W)     e.g. [2,1,0]: RGB -> BGR
///     out = ((x * rawScale) - mean) * scale               (C, H, W)
///
/// repeated N times. For C == 1 the image is made gray first (Rec. 709 luma,
/// as skimage's rgb2gray that `caffe.io.load_image(color=False)` uses) and
/// `channelSwap` is ignored. With pycaffe's usual settings for ImageNet
/// models (`raw_scale 255`, `channel_swap (2,1,0)`, BGR mean in 0-255), this
/// is `transformer.preprocess('data', caffe.io.load_image(f))` up to the
/// resampling filter.
public struct Preprocessor {
    /// `channelSwap[i]` is the RGB channel that becomes output channel `i`.
    public var channelSwap: [Int]
    /// Multiplies [0, 1] pixels (255 gives Caffe's 0-255 range).
    public var rawScale: Float
    /// Multiplies after mean subtraction (Caffe's `input_scale`).
    public var scale: Float
    /// A mean in the net's channel order and raw scale: (C, H', W'), (1, C, H', W'), (C, 1, 1) or (C).
    public var mean: Tensor?
    /// One mean value per channel (or one for all), in the net's channel order.
    public var meanValues: [Float]?
    /// Resize the short side and crop the centre instead of stretching to H x W.
    public var centerCrop: Bool

    public init(channelSwap: [Int], rawScale: Float, scale: Float, mean: Tensor?, meanValues: [Float]?,
                centerCrop: Bool) {
        self.channelSwap = channelSwap; self.rawScale = rawScale; self.scale = scale
        self.mean = mean; self.meanValues = meanValues; self.centerCrop = centerCrop
    }

    /// Where preprocessing errors point: there is no file at this stage.
    static let origin = "preprocessing"

    /// The input tensor for `image`. `shape` is the net's declared input,
    /// (N, C, H, W) or (C, H, W) (the result has the same shape); nil means
    /// (1, 3, image height, image width).
    public func tensor(from image: PNGImage, shape: Shape?) throws -> Tensor {
        guard image.isWellFormed else {
            throw IOError(Self.origin, "image of \(image.width) x \(image.height) x \(image.channels) "
                + "holds \(image.pixels.count) bytes; cannot preprocess it")
        }
        let outShape = shape ?? Shape([1, 3, image.height, image.width])
        let dims = outShape.dims
        guard dims.count == 4 || dims.count == 3 else {
            throw IOError(Self.origin, "net input shape \(outShape) is not (N, C, H, W) or (C, H, W); an image cannot fill it")
        }
        let n = dims.count == 4 ? dims[0] : 1
        let (c, h, w) = (dims[dims.count - 3], dims[dims.count - 2], dims[dims.count - 1])
        guard c == 1 || c == 3 else {
            throw IOError(Self.origin, "net input shape \(outShape) has \(c) channels; an image gives 1 (gray) or 3 (colour)")
        }
        guard n > 0, h > 0, w > 0, outShape.checkedCount != nil else {
            throw IOError(Self.origin, "net input shape \(outShape) is empty or too large")
        }
        let t = Tensor(shape: outShape)
        try write(unitHWC: Self.unitFloats(image, channels: c), width: image.width, height: image.height,
                  into: t.data, channels: c, height: h, width: w)
        // 4. The same image for every item of the batch.
        let one = c * h * w
        for b in 1..<max(1, n) { (t.data + b * one).update(from: t.data, count: one) }
        return t
    }

    /// One (C, H, W) net input at `out` from an image given as floats in
    /// [0, 1], HWC with `c` channels (as `unitFloats` makes them): steps 2 and
    /// 3 of `tensor(from:shape:)`.
    public func write(unitHWC x: [Float], width: Int, height: Int, into out: UnsafeMutablePointer<Float>,
                      channels c: Int, height h: Int, width w: Int) throws {
        let swap = try resolvedSwap(channels: c)
        let meanCHW = try resolvedMean(channels: c, height: h, width: w)
        let fitted = Self.fit(x, width: width, height: height, channels: c, toWidth: w, toHeight: h,
                              centerCrop: centerCrop)
        let plane = h * w
        for o in 0..<c {
            let s = swap[o]
            for p in 0..<plane {
                var v = fitted[p * c + s] * rawScale
                if let meanCHW { v -= meanCHW[o * plane + p] }
                out[o * plane + p] = v * scale
            }
        }
    }

    /// The swap as a list of source channels, validated.
    func resolvedSwap(channels c: Int) throws -> [Int] {
        if c == 1 || channelSwap.isEmpty { return Array(0..<c) }
        guard channelSwap.count == c, channelSwap.allSatisfy({ (0..<c).contains($0) }) else {
            throw IOError(Self.origin, "channel swap \(channelSwap) must list \(c) channel indices in 0..<\(c)")
        }
        return channelSwap
    }

    /// The mean as C*H*W values (CHW), or nil when there is none.
    func resolvedMean(channels c: Int, height h: Int, width w: Int) throws -> [Float]? {
        if mean != nil && meanValues != nil {
            throw IOError(Self.origin, "give either a mean file or per-channel mean values, not both")
        }
        let plane = h * w
        if let meanValues {
            guard meanValues.count == c || meanValues.count == 1 else {
                throw IOError(Self.origin, "\(meanValues.count) mean values for \(c) channels; give \(c) (or 1)")
            }
            return (0..<(c * plane)).map { meanValues[meanValues.count == 1 ? 0 : $0 / plane] }
        }
        guard let mean else { return nil }
        var dims = mean.shape.dims
        if dims.count == 4 && dims[0] == 1 { dims.removeFirst() }
        let values = mean.array
        switch dims.count {
        case 1:
            guard dims[0] == c || dims[0] == 1 else {
                throw IOError(Self.origin, "mean has \(dims[0]) values; the net input has \(c) channels")
            }
            return (0..<(c * plane)).map { values[dims[0] == 1 ? 0 : $0 / plane] }
        case 3:
            let (mc, mh, mw) = (dims[0], dims[1], dims[2])
            guard mc == c else {
                throw IOError(Self.origin, "mean has shape \(mean.shape) (\(mc) channels); the net input has \(c) channels")
            }
            guard mh > 0, mw > 0 else { throw IOError(Self.origin, "mean has empty shape \(mean.shape)") }
            if mh == 1 && mw == 1 { return (0..<(c * plane)).map { values[$0 / plane] } }
            if mh == h && mw == w { return values }
            // A mean image of another size: centre-crop it when it is larger in both
            // directions (Caffe's test-phase crop of e.g. a 256x256 ImageNet mean to 227),
            // otherwise resize it bilinearly to H x W.
            var out: [Float] = []
            out.reserveCapacity(c * plane)
            for ch in 0..<c {
                let chan = Array(values[(ch * mh * mw)..<((ch + 1) * mh * mw)])
                if mh >= h && mw >= w {
                    out += Resample.centreCrop(chan, width: mw, height: mh, channels: 1, cropWidth: w, cropHeight: h)
                } else {
                    out += Resample.hwc(chan, width: mw, height: mh, channels: 1, toWidth: w, toHeight: h)
                }
            }
            return out
        default:
            throw IOError(Self.origin, "mean has shape \(mean.shape); expected (C, H, W), (1, C, H, W) or (C)")
        }
    }

    /// HWC floats in [0, 1] with `channels` (1 or 3) per pixel: alpha is
    /// dropped (as `caffe.io.load_image`), gray is repeated for colour, and
    /// colour is reduced to luma Y = 0.2125 R + 0.7154 G + 0.0721 B for gray.
    public static func unitFloats(_ image: PNGImage, channels c: Int) -> [Float] {
        let sc = image.channels, n = image.width * image.height
        let px = image.pixels
        let k: Float = 1 / 255
        var out = [Float](repeating: 0, count: n * c)
        for i in 0..<n {
            let p = i * sc
            if sc <= 2 {                     // gray (+ alpha)
                let g = Float(px[p]) * k
                for j in 0..<c { out[i * c + j] = g }
            } else if c == 3 {
                out[i * 3] = Float(px[p]) * k; out[i * 3 + 1] = Float(px[p + 1]) * k; out[i * 3 + 2] = Float(px[p + 2]) * k
            } else {
                out[i] = (0.2125 * Float(px[p]) + 0.7154 * Float(px[p + 1]) + 0.0721 * Float(px[p + 2])) * k
            }
        }
        return out
    }

    /// Resizes to exactly W x H, or with `centerCrop` scales so the image covers
    /// W x H (factor max(H/H0, W/W0), the short side for a square input) and
    /// takes the centre.
    static func fit(_ x: [Float], width: Int, height: Int, channels: Int, toWidth w: Int, toHeight h: Int,
                    centerCrop: Bool) -> [Float] {
        guard centerCrop else {
            return Resample.hwc(x, width: width, height: height, channels: channels, toWidth: w, toHeight: h)
        }
        let s = max(Double(h) / Double(height), Double(w) / Double(width))
        let rw = max(w, Int((Double(width) * s).rounded())), rh = max(h, Int((Double(height) * s).rounded()))
        let r = Resample.hwc(x, width: width, height: height, channels: channels, toWidth: rw, toHeight: rh)
        return Resample.centreCrop(r, width: rw, height: rh, channels: channels, cropWidth: w, cropHeight: h)
    }
}

// MARK: - Back to pictures

extension Preprocessor {
    /// Undoes `tensor(from:shape:)` for one (C, H, W) item, for display:
    ///
    ///     rgb[channelSwap[i]] = clip((x[i] / scale + mean[i]) / rawScale, 0, 1)
    ///
    /// then 8 bits. `mean` holds C values (per channel), C*H*W values (a mean
    /// image, CHW) or 1 value. C == 1 gives a gray image; for C > 3 the first
    /// three channels are shown. An invalid swap falls back to the identity,
    /// a zero scale to 1.
    public static func image(from chw: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
                             channelSwap: [Int], rawScale: Float, mean: [Float]?, scale: Float) -> PNGImage {
        let plane = max(0, height) * max(0, width)
        let inv = scale == 0 ? 1 : 1 / scale, invRaw = rawScale == 0 ? 1 : 1 / rawScale
        return render(channels: channels, height: height, width: width, swap: channelSwap) { ch, p in
            var v = chw[ch * plane + p] * inv
            if let mean, !mean.isEmpty {
                v += mean.count == channels * plane ? mean[ch * plane + p] : mean[min(ch, mean.count - 1)]
            }
            return v * invRaw
        }
    }

    /// Maps values in [low, high] linearly to 0-255, clipping outside (for
    /// generator outputs such as tanh's [-1, 1]). Channels are shown in the
    /// order given: 1 gray, 3 RGB; for C > 3 the first three.
    public static func image(fromCHW chw: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
                             low: Float, high: Float) -> PNGImage {
        let plane = max(0, height) * max(0, width)
        let span = high - low
        return render(channels: channels, height: height, width: width, swap: []) { ch, p in
            span == 0 ? 0.5 : (chw[ch * plane + p] - low) / span
        }
    }

    /// Shared back end: `value(channel, pixel)` in [0, 1] (clipped here),
    /// channel `i` of the source shown as image channel `swap[i]`.
    private static func render(channels: Int, height: Int, width: Int, swap: [Int],
                               value: (Int, Int) -> Float) -> PNGImage {
        guard channels > 0, height > 0, width > 0 else {
            return PNGImage(width: 0, height: 0, channels: 3, pixels: [])
        }
        let plane = height * width
        let outC = channels >= 3 ? 3 : 1
        // Inverse permutation: image channel swap[i] comes from source channel i.
        var source = Array(0..<outC)
        if outC == 3, swap.count == channels, channels == 3, Set(swap) == Set(0..<3) {
            for i in 0..<3 { source[swap[i]] = i }
        }
        var px = [UInt8](repeating: 0, count: plane * outC)
        for o in 0..<outC {
            let s = source[o]
            for p in 0..<plane { px[p * outC + o] = PNGImage.byte(value(s, p) * 255) }
        }
        return PNGImage(width: width, height: height, channels: outC, pixels: px)
    }
}
