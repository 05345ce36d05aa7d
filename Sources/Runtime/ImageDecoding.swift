import Foundation

/// An image file decoded for a data layer: `height x width x channels`
/// interleaved (row-major HWC), channels in file order (gray, gray+alpha,
/// RGB or RGBA), values on the 8-bit scale 0...255 (16-bit files divided by 257).
public struct DecodedImage: Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [Float]
    public init(width: Int, height: Int, channels: Int, pixels: [Float]) {
        self.width = width; self.height = height; self.channels = channels; self.pixels = pixels
    }
}

/// Decodes image files (PNG, ...) for the ImageData layer. Runtime and the
/// layers know no image format, and ImageIO knows no Runtime: the tool wraps
/// ImageIO's PNG reader in a decoder (`PNGFileDecoder`, InverseSetCLI) and
/// passes it to `registerBuiltins(into:imageDecoder:)`; tests pass theirs.
public protocol ImageFileDecoder: Sendable {
    /// Throws an error that names `path` and what is wrong with it.
    func decodeImage(atPath path: String) throws -> DecodedImage
}
