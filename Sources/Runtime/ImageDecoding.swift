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
/// layers know no image format; the tool installs a decoder built on
/// ImageIO at start-up (`ImageDecoders.install`), and tests install theirs.
public protocol ImageFileDecoder: Sendable {
    /// Throws an error that names `path` and what is wrong with it.
    func decodeImage(atPath path: String) throws -> DecodedImage
}

/// The installed image decoder (one per process, like the BLAS thread count).
public enum ImageDecoders {
    private final class Slot: @unchecked Sendable {
        let lock = NSLock()
        var decoder: (any ImageFileDecoder)?
    }
    private static let slot = Slot()

    public static func install(_ decoder: any ImageFileDecoder) {
        slot.lock.withLock { slot.decoder = decoder }
    }
    public static var current: (any ImageFileDecoder)? { slot.lock.withLock { slot.decoder } }
}
