/// Separable bilinear (triangle-filter) resampling of float images, the way
/// PIL's `Image.resize(..., BILINEAR)` does it:
///
/// - pixel centres sit at half-integers, so output pixel `o` of an axis
///   scaled by `s = n / m` looks at source coordinate `(o + 0.5) * s`;
/// - the tap weights are `max(0, 1 - |d| / f)` for a source pixel centred
///   at distance `d`, with `f = max(s, 1)`: plain 2-tap linear interpolation
///   when enlarging, a triangle `f` pixels wide when shrinking so that every
///   source pixel contributes (no aliasing when a 512 px photo becomes a
///   64 px tile);
/// - taps that fall outside the image are dropped and the rest renormalised,
///   which equals clamping to the edge pixel when enlarging.
enum Resample {
    /// Taps of one axis: output `o` reads `count[o]` source pixels starting
    /// at `start[o]`, with weights `weights[o * stride ..< o * stride + count[o]]`.
    struct Axis {
        var start: [Int]
        var count: [Int]
        var weights: [Float]
        var stride: Int

        init(from n: Int, to m: Int) {
            let scale = Double(n) / Double(m)
            let f = max(scale, 1)                 // filter half-width in source pixels
            stride = Int(f.rounded(.up)) * 2 + 2  // the most taps one output can touch
            start = [Int](repeating: 0, count: m)
            count = [Int](repeating: 0, count: m)
            weights = [Float](repeating: 0, count: m * stride)
            for o in 0..<m {
                let centre = (Double(o) + 0.5) * scale
                let lo = max(0, Int((centre - f).rounded(.down)))
                let hi = min(n, Int((centre + f).rounded(.up)))
                var taps: [Double] = []
                var sum = 0.0
                for i in lo..<max(lo, hi) {
                    let w = max(0, 1 - abs(Double(i) + 0.5 - centre) / f)
                    taps.append(w); sum += w
                }
                // Trim zero-weight taps at both ends so the inner loops stay short.
                var first = 0, last = taps.count
                while first < last, taps[first] == 0 { first += 1 }
                while last > first, taps[last - 1] == 0 { last -= 1 }
                if sum <= 0 || first == last {        // cannot happen for n, m >= 1; nearest pixel then
                    start[o] = min(n - 1, max(0, Int(centre))); count[o] = 1; weights[o * stride] = 1
                    continue
                }
                start[o] = lo + first
                count[o] = min(stride, last - first)
                for k in 0..<count[o] { weights[o * stride + k] = Float(taps[first + k] / sum) }
            }
        }
    }

    /// Resizes an HWC float image (`channels` interleaved values per pixel)
    /// from `width` x `height` to `toWidth` x `toHeight`. Rows first, then columns.
    static func hwc(_ src: [Float], width: Int, height: Int, channels: Int,
                    toWidth: Int, toHeight: Int) -> [Float] {
        guard width > 0, height > 0, channels > 0, toWidth > 0, toHeight > 0,
              src.count >= width * height * channels else { return [] }
        if width == toWidth && height == toHeight { return Array(src.prefix(width * height * channels)) }
        let c = channels
        // Horizontal pass: (height, width) -> (height, toWidth).
        var mid: [Float]
        if width == toWidth {
            mid = Array(src.prefix(width * height * c))
        } else {
            let ax = Axis(from: width, to: toWidth)
            mid = [Float](repeating: 0, count: height * toWidth * c)
            src.withUnsafeBufferPointer { s in
                mid.withUnsafeMutableBufferPointer { d in
                    for y in 0..<height {
                        let row = y * width * c, outRow = y * toWidth * c
                        for o in 0..<toWidth {
                            let s0 = ax.start[o], wBase = o * ax.stride
                            for ch in 0..<c {
                                var acc: Float = 0
                                for k in 0..<ax.count[o] { acc += ax.weights[wBase + k] * s[row + (s0 + k) * c + ch] }
                                d[outRow + o * c + ch] = acc
                            }
                        }
                    }
                }
            }
        }
        if height == toHeight { return mid }
        // Vertical pass: (height, toWidth) -> (toHeight, toWidth); whole rows at a time.
        let ay = Axis(from: height, to: toHeight)
        let rowLen = toWidth * c
        var out = [Float](repeating: 0, count: toHeight * rowLen)
        mid.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for o in 0..<toHeight {
                    let outRow = o * rowLen, wBase = o * ay.stride
                    for k in 0..<ay.count[o] {
                        let w = ay.weights[wBase + k], inRow = (ay.start[o] + k) * rowLen
                        for j in 0..<rowLen { d[outRow + j] += w * s[inRow + j] }
                    }
                }
            }
        }
        return out
    }

    /// Centre crop of an HWC float image (offsets floor((size - crop) / 2), as
    /// Caffe's test-phase crop). Requires `cropW <= width`, `cropH <= height`.
    static func centreCrop(_ src: [Float], width: Int, height: Int, channels: Int,
                           cropWidth: Int, cropHeight: Int) -> [Float] {
        let x0 = (width - cropWidth) / 2, y0 = (height - cropHeight) / 2
        var out: [Float] = []
        out.reserveCapacity(cropWidth * cropHeight * channels)
        for y in 0..<cropHeight {
            let base = ((y0 + y) * width + x0) * channels
            out += src[base..<(base + cropWidth * channels)]
        }
        return out
    }
}

extension PNGImage {
    /// The image scaled to `width` x `height` with bilinear filtering (see
    /// `Resample`). RGBA is filtered with premultiplied alpha, as PIL does, so
    /// the colour of transparent pixels does not bleed into their neighbours.
    /// A size below 1 gives an empty image.
    public func resized(width newWidth: Int, height newHeight: Int) -> PNGImage {
        guard newWidth > 0, newHeight > 0 else {
            return PNGImage(width: 0, height: 0, channels: channels, pixels: [])
        }
        if newWidth == width && newHeight == height { return self }
        let src = wellFormed()
        guard src.width > 0, src.height > 0 else {
            return PNGImage(width: newWidth, height: newHeight, channels: src.channels,
                            pixels: [UInt8](repeating: 0, count: newWidth * newHeight * src.channels))
        }
        let c = src.channels
        let hasAlpha = c == 2 || c == 4
        var f = src.pixels.map { Float($0) }
        if hasAlpha {   // colour *= alpha / 255
            for p in stride(from: 0, to: f.count, by: c) {
                let a = f[p + c - 1] / 255
                for k in 0..<(c - 1) { f[p + k] *= a }
            }
        }
        var r = Resample.hwc(f, width: src.width, height: src.height, channels: c,
                             toWidth: newWidth, toHeight: newHeight)
        if hasAlpha {   // undo the premultiplication where any coverage is left
            for p in stride(from: 0, to: r.count, by: c) {
                let a = r[p + c - 1] / 255
                for k in 0..<(c - 1) { r[p + k] = a > 0 ? r[p + k] / a : 0 }
            }
        }
        return PNGImage(width: newWidth, height: newHeight, channels: c, pixels: r.map(PNGImage.byte))
    }

    /// The pixels of the rectangle at (`x`, `y`) of size `width` x `height`,
    /// clipped to the image (so the result may be smaller, or empty).
    public func cropped(x: Int, y: Int, width cw: Int, height ch: Int) -> PNGImage {
        let src = wellFormed()
        let x0 = max(0, x), y0 = max(0, y)
        let x1 = min(src.width, x &+ max(0, cw)), y1 = min(src.height, y &+ max(0, ch))
        guard x1 > x0, y1 > y0 else { return PNGImage(width: 0, height: 0, channels: src.channels, pixels: []) }
        let c = src.channels, w = x1 - x0
        var out: [UInt8] = []
        out.reserveCapacity(w * (y1 - y0) * c)
        for row in y0..<y1 {
            let base = (row * src.width + x0) * c
            out += src.pixels[base..<(base + w * c)]
        }
        return PNGImage(width: w, height: y1 - y0, channels: c, pixels: out)
    }

    /// Rounds to the nearest byte, clipping to 0...255 (NaN becomes 0).
    @inline(__always) public static func byte(_ v: Float) -> UInt8 {
        guard v > 0 else { return 0 }
        return v >= 255 ? 255 : UInt8(v.rounded())
    }

    /// This image with `pixels` padded or cut to exactly `width * height *
    /// channels` bytes, so geometry code never indexes out of range even for
    /// a hand-built image whose fields disagree.
    func wellFormed() -> PNGImage {
        let w = max(0, width), h = max(0, height), c = min(4, max(1, channels))
        let n = w * h * c
        if pixels.count == n && c == channels && w == width && h == height { return self }
        var p = Array(pixels.prefix(n))
        if p.count < n { p += [UInt8](repeating: 0, count: n - p.count) }
        return PNGImage(width: w, height: h, channels: c, pixels: p)
    }

    /// The image as 3-channel RGB: gray is repeated, alpha is composited over
    /// a uniform `background` level (out = a * colour + (1 - a) * background).
    func rgb(background: UInt8 = 255) -> PNGImage {
        let src = wellFormed()
        if src.channels == 3 { return src }
        let n = src.width * src.height, c = src.channels
        var out = [UInt8](repeating: 0, count: n * 3)
        let bg = Float(background)
        for i in 0..<n {
            let p = i * c
            let colour: (Float, Float, Float)
            switch c {
            case 1, 2: let g = Float(src.pixels[p]); colour = (g, g, g)
            default: colour = (Float(src.pixels[p]), Float(src.pixels[p + 1]), Float(src.pixels[p + 2]))
            }
            let a: Float = (c == 2 || c == 4) ? Float(src.pixels[p + c - 1]) / 255 : 1
            out[i * 3] = PNGImage.byte(a * colour.0 + (1 - a) * bg)
            out[i * 3 + 1] = PNGImage.byte(a * colour.1 + (1 - a) * bg)
            out[i * 3 + 2] = PNGImage.byte(a * colour.2 + (1 - a) * bg)
        }
        return PNGImage(width: src.width, height: src.height, channels: 3, pixels: out)
    }
}
