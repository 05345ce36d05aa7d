import CPNG
import Foundation
import GraphIR

/// An 8-bit image in memory: `channels` bytes per pixel (1 gray, 3 RGB,
/// 4 RGBA), rows top to bottom, pixels left to right (row-major HWC), so the
/// byte of channel `c` at (`x`, `y`) is `pixels[(y * width + x) * channels + c]`.
///
///     let img = try PNGImage.read("cat.png")          // any PNG, converted to 8 bits
///     try img.resized(width: 227, height: 227).write(to: "small.png")
public struct PNGImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    /// 1 gray, 3 RGB, 4 RGBA.
    public var channels: Int
    /// Row-major HWC bytes, `width * height * channels` of them.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }

    /// True when the sizes are positive and `pixels` holds exactly one byte per sample.
    public var isWellFormed: Bool {
        width > 0 && height > 0 && (1...4).contains(channels) && pixels.count == width * height * channels
    }

    /// The most pixels we agree to decode: 2^28 (16384 x 16384). libpng
    /// accepts headers of up to 1,000,000 x 1,000,000 pixels, and a PNG of a
    /// few MB can legally hold 26000 x 27000 pixels of one colour (a
    /// decompression bomb) that would take 2 GB as bytes and 8 GB as floats
    /// for a network input. Images within this bound must also fit the
    /// memory budget (`MemoryBudget`) as bytes plus one float copy.
    public static let maxPixels = 1 << 28

    /// Reads any PNG with libpng's simplified API and converts it to 8 bits
    /// per sample: palette images become RGB (RGBA when they have a tRNS
    /// chunk), gray+alpha becomes RGBA, 16-bit samples are scaled to 8 bits.
    ///
    /// 16-bit files without gamma information are taken as sRGB-encoded (as
    /// PIL, numpy and most tools write them), not as libpng's default of
    /// linear light, so a 16-bit value v reads as round(v / 257). (libpng does
    /// convert 8-bit files whose gAMA chunk is far from sRGB's to sRGB.)
    ///
    /// Every failure (missing file, not a PNG, truncated or corrupt data) is
    /// an `IOError` naming the file with libpng's own message. libpng's
    /// simplified API catches its internal errors itself, so a damaged file
    /// never unwinds through Swift frames.
    public static func read(_ path: String) throws -> PNGImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            throw IOError(path, "cannot read PNG: \(explain(message(of: &image)))")
        }
        return try finishRead(&image, path: path)
    }

    /// Decodes a PNG held in memory, as `read` does a file; `origin` names it in errors.
    public static func decode(_ bytes: [UInt8], origin: String) throws -> PNGImage {
        try bytes.withUnsafeBytes { raw in
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            guard let base = raw.baseAddress, png_image_begin_read_from_memory(&image, base, raw.count) != 0 else {
                throw IOError(origin, "cannot read PNG: \(explain(message(of: &image)))")
            }
            return try finishRead(&image, path: origin)   // the bytes stay alive until libpng is done
        }
    }

    /// The common part after `png_image_begin_read_*` succeeded: checks the
    /// size, then decodes to 8-bit samples.
    private static func finishRead(_ image: inout png_image, path: String) throws -> PNGImage {
        // From here libpng owns memory in image.opaque until finish_read or free.
        image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)   // only settable after begin_read

        let fileFormat = UInt32(image.format)
        let color = fileFormat & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
        let alpha = fileFormat & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
        // Requested layout: 8-bit (no LINEAR flag), never color-mapped.
        let channels: Int
        switch (color, alpha) {
        case (false, false): channels = 1
        case (true, false):  channels = 3
        default:             channels = 4   // RGBA, or gray+alpha expanded to RGBA
        }
        image.format = PNGImage.format(channels: channels)
        let width = Int(image.width), height = Int(image.height)
        // Both are below 2^32 (libpng's own limit is 10^6), so nothing here overflows.
        let pixels64 = width * height, n = pixels64 * channels
        guard width > 0, height > 0, pixels64 <= maxPixels else {
            png_image_free(&image)
            throw IOError(path, "PNG header claims \(width) x \(height) pixels, more than the \(maxPixels) (16384 x 16384) this tool decodes; "
                + "a small file this large is a corrupt file or a decompression bomb (resize the image first if it is real)")
        }
        if let excess = MemoryBudget.excess(n * (1 + MemoryLayout<Float>.size), for: "decoding its \(width) x \(height) x \(channels) pixels (bytes and floats)") {
            png_image_free(&image)
            throw IOError(path, excess)
        }
        var pixels = [UInt8](repeating: 0, count: n)
        let ok = pixels.withUnsafeMutableBytes { buf in
            png_image_finish_read(&image, nil, buf.baseAddress, Int32(width * channels), nil)
        }
        if ok == 0 {
            let text = message(of: &image)
            png_image_free(&image)   // finish_read has freed already; a second free is a no-op
            throw IOError(path, "cannot read PNG: \(explain(text))")
        }
        return PNGImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// Writes an 8-bit gray, RGB or RGBA PNG (with libpng's default compression).
    public func write(to path: String) throws {
        guard [1, 3, 4].contains(channels) else {
            throw IOError(path, "cannot write a PNG with \(channels) channels (1 gray, 3 RGB or 4 RGBA)")
        }
        guard width > 0, height > 0, width <= Int(Int32.max) / channels, height <= Int(Int32.max) else {
            throw IOError(path, "cannot write a \(width) x \(height) PNG")
        }
        guard pixels.count == width * height * channels else {
            throw IOError(path, "cannot write PNG: \(pixels.count) bytes for \(width) x \(height) x \(channels)")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = PNGImage.format(channels: channels)
        let ok = pixels.withUnsafeBytes { buf in
            png_image_write_to_file(&image, path, 0, buf.baseAddress, Int32(width * channels), nil)
        }
        if ok == 0 {
            let text = PNGImage.message(of: &image)
            png_image_free(&image)
            throw IOError(path, "cannot write PNG: \(text)")
        }
    }

    /// libpng's 8-bit (sRGB, not LINEAR, not COLORMAP) format code for 1, 3 or 4
    /// channels. (png.h's PNG_FORMAT_RGBA is a compound macro Swift does not import.)
    private static func format(channels: Int) -> UInt32 {
        let color = UInt32(PNG_FORMAT_FLAG_COLOR), alpha = UInt32(PNG_FORMAT_FLAG_ALPHA)
        switch channels {
        case 1: return 0
        case 3: return color
        default: return color | alpha
        }
    }

    /// libpng's error text, kept in the fixed 64-byte `message` field.
    private static func message(of image: inout png_image) -> String {
        let text = withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "unknown libpng error" : text
    }

    /// libpng's message plus a hint a user can act on for the common cases.
    private static func explain(_ text: String) -> String {
        let lower = text.lowercased()
        if lower.contains("not a png") { return text + " (wrong signature: the file is not a PNG)" }
        if lower.contains("read error") || lower.contains("not enough") || lower.contains("truncat") {
            return text + " (the file looks truncated)"
        }
        if lower.contains("crc") { return text + " (the file is corrupt)" }
        return text
    }
}
