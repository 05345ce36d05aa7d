import Foundation
import Testing
import GraphIR
import ImageIO
import Runtime
import TestSupport

/// PNG decoding and encoding through libpng, resizing, pycaffe-style
/// preprocessing and its inverse, mean files and contact sheets.
struct ImageIOTests {
    static let fixtureImages = Paths.root + "/Tests/Fixtures/images"
    static let chelsea = fixtureImages + "/chelsea.png"
    /// shared/data/images beside the repository (present for developers and CI).
    static let sharedImages = URL(fileURLWithPath: Paths.root + "/../shared/data/images").standardized.path

    /// A fresh path in a per-test temporary folder.
    static func tempPath(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("imageio-tests-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    /// Runs `body`, expecting an IOError that names `file`; returns its message.
    @discardableResult
    static func expectIOError(file: String, _ body: () throws -> Void,
                              sourceLocation: Testing.SourceLocation = #_sourceLocation) -> String {
        do {
            try body()
            Issue.record("expected an IOError for \(file)", sourceLocation: sourceLocation)
        } catch let e as IOError {
            #expect(e.file == file, sourceLocation: sourceLocation)
            #expect(!e.message.isEmpty, sourceLocation: sourceLocation)
            return e.message
        } catch {
            Issue.record("expected an IOError, got \(error)", sourceLocation: sourceLocation)
        }
        return ""
    }

    /// Deterministic bytes that exercise every value.
    static func pattern(_ n: Int, seed: Int) -> [UInt8] {
        (0..<n).map { UInt8(truncatingIfNeeded: ($0 &* 73 &+ seed &* 151 &+ ($0 >> 3) &* 29)) }
    }

    // MARK: - PNG round trips and real files

    @Test(arguments: [1, 3, 4])
    func pngRoundTripIsByteExact(channels: Int) throws {
        let img = PNGImage(width: 13, height: 7, channels: channels, pixels: Self.pattern(13 * 7 * channels, seed: channels))
        let path = try Self.tempPath("rt\(channels).png")
        try img.write(to: path)
        let back = try PNGImage.read(path)
        #expect(back.width == 13 && back.height == 7 && back.channels == channels)
        #expect(back.pixels == img.pixels)
    }

    @Test func readsTheFixturePhotograph() throws {
        let img = try PNGImage.read(Self.chelsea)
        #expect(img.width == 451 && img.height == 300 && img.channels == 3)
        #expect(img.pixels.count == 451 * 300 * 3)
        // A real photo: many distinct values, neither black nor white on average.
        let mean = img.pixels.reduce(0) { $0 + Int($1) } / img.pixels.count
        #expect(mean > 40 && mean < 215)
        #expect(Set(img.pixels).count > 200)
        // Writing and reading it again keeps every byte.
        let path = try Self.tempPath("chelsea-copy.png")
        try img.write(to: path)
        #expect(try PNGImage.read(path) == img)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: ImageIOTests.sharedImages),
                   "the shared photographs (../shared/data/images beside the repository) are absent"))
    func readsEverySharedPNG() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.sharedImages)
            .filter { $0.lowercased().hasSuffix(".png") }.sorted()
        #expect(files.count >= 3, "\(Self.sharedImages) holds \(files.count) PNG files")
        for f in files {
            let img = try PNGImage.read(Self.sharedImages + "/" + f)
            #expect(img.isWellFormed, "\(f)")
            #expect(img.width >= 100 && img.height >= 100, "\(f)")
        }
    }

    // MARK: - Other PNG flavours, made by hand (stored deflate blocks)

    /// A minimal PNG encoder for the tests: one IHDR, optional PLTE/tRNS, one
    /// IDAT holding uncompressed deflate blocks of filter-0 rows.
    enum HandPNG {
        static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
            var c = UInt32(n)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            return c
        }
        static func crc(_ bytes: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
            return c ^ 0xFFFF_FFFF
        }
        static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
        static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
            let body = Array(type.utf8) + data
            return be32(UInt32(data.count)) + body + be32(crc(body))
        }
        /// `rows` are the raw scanlines (without the filter byte).
        static func make(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]],
                         palette: [UInt8]? = nil, trns: [UInt8]? = nil) -> [UInt8] {
            var raw: [UInt8] = []
            for r in rows { raw += [0] + r }
            var z: [UInt8] = [0x78, 0x01]
            var i = 0
            repeat {
                let n = min(65535, raw.count - i)
                let last: UInt8 = i + n >= raw.count ? 1 : 0
                z += [last, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
                z += raw[i..<(i + n)]
                i += n
            } while i < raw.count
            var a: UInt32 = 1, b: UInt32 = 0
            for x in raw { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
            z += be32(b << 16 | a)
            var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            out += chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [bitDepth, colorType, 0, 0, 0])
            if let palette { out += chunk("PLTE", palette) }
            if let trns { out += chunk("tRNS", trns) }
            out += chunk("IDAT", z)
            out += chunk("IEND", [])
            return out
        }
    }

    static func writeBytes(_ bytes: [UInt8], _ name: String) throws -> String {
        let path = try tempPath(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func handMadeEncoderMatchesLibpng() throws {
        // Sanity of the helper: an 8-bit RGB file it makes reads back as given.
        let px: [UInt8] = [1, 2, 3, 250, 251, 252]
        let path = try Self.writeBytes(HandPNG.make(width: 2, height: 1, bitDepth: 8, colorType: 2, rows: [px]), "rgb8.png")
        #expect(try PNGImage.read(path) == PNGImage(width: 2, height: 1, channels: 3, pixels: px))
    }

    @Test func sixteenBitSamplesBecomeEightBit() throws {
        // v = b * 257 is exactly byte b; 0x1234 = 4660 is 18.13 bytes.
        let rgb16: [UInt16] = [0, 257 * 128, 65535, 257 * 7, 0x1234, 257 * 200]
        let row = rgb16.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let path = try Self.writeBytes(HandPNG.make(width: 2, height: 1, bitDepth: 16, colorType: 2, rows: [row]), "rgb16.png")
        let img = try PNGImage.read(path)
        #expect(img.channels == 3 && img.width == 2)
        #expect(Array(img.pixels[0..<4]) == [0, 128, 255, 7])
        #expect(abs(Int(img.pixels[4]) - 18) <= 1)
        #expect(img.pixels[5] == 200)

        let gray16: [UInt8] = [0x40, 0x40, 0xFF, 0xFF]   // 0x4040 = 64 * 257
        let gpath = try Self.writeBytes(HandPNG.make(width: 2, height: 1, bitDepth: 16, colorType: 0, rows: [gray16]), "g16.png")
        #expect(try PNGImage.read(gpath) == PNGImage(width: 2, height: 1, channels: 1, pixels: [64, 255]))
    }

    @Test func paletteImagesBecomeRGBOrRGBA() throws {
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 10, 20, 30]
        let rows: [[UInt8]] = [[0, 1], [2, 0]]
        let p = try Self.writeBytes(HandPNG.make(width: 2, height: 2, bitDepth: 8, colorType: 3, rows: rows, palette: palette), "pal.png")
        #expect(try PNGImage.read(p) == PNGImage(width: 2, height: 2, channels: 3,
                                                 pixels: [255, 0, 0, 0, 255, 0, 10, 20, 30, 255, 0, 0]))
        // With tRNS (entry 0 half transparent) the result carries alpha.
        let pa = try Self.writeBytes(HandPNG.make(width: 2, height: 2, bitDepth: 8, colorType: 3, rows: rows,
                                                  palette: palette, trns: [128]), "pal-trns.png")
        let img = try PNGImage.read(pa)
        #expect(img.channels == 4)
        #expect(Array(img.pixels[0..<8]) == [255, 0, 0, 128, 0, 255, 0, 255])
        #expect(Array(img.pixels[8..<12]) == [10, 20, 30, 255])
    }

    @Test func grayAlphaBecomesRGBA() throws {
        let row: [UInt8] = [100, 255, 200, 64]   // (gray, alpha) x 2
        let p = try Self.writeBytes(HandPNG.make(width: 2, height: 1, bitDepth: 8, colorType: 4, rows: [row]), "ga.png")
        let img = try PNGImage.read(p)
        #expect(img.channels == 4)
        #expect(Array(img.pixels[0..<4]) == [100, 100, 100, 255])
        #expect(img.pixels[7] == 64)
        #expect(img.pixels[4] == img.pixels[5] && img.pixels[5] == img.pixels[6])
        #expect(abs(Int(img.pixels[4]) - 200) <= 1)   // colour is not premultiplied
    }

    // MARK: - Broken and missing files

    @Test func corruptAndTruncatedPNGsAreErrorsNamingTheFile() throws {
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.chelsea)))
        var cases: [(String, [UInt8])] = [
            ("empty.png", []),
            ("garbage.png", Self.pattern(4000, seed: 9)),
            ("signature-only.png", Array(good.prefix(8))),
            ("header-only.png", Array(good.prefix(33))),
            ("truncated-half.png", Array(good.prefix(good.count / 2))),
            ("truncated-end.png", Array(good.dropLast(20))),
        ]
        var flipped = good                                   // damage inside the image data: CRC error
        for i in stride(from: good.count / 2, to: good.count / 2 + 64, by: 1) { flipped[i] ^= 0x5A }
        cases.append(("crc.png", flipped))
        var badHeader = good                                 // zero width in IHDR (CRC patched to match)
        for i in 16..<20 { badHeader[i] = 0 }
        let ihdrCRC = HandPNG.crc(Array(badHeader[12..<29]))
        badHeader.replaceSubrange(29..<33, with: HandPNG.be32(ihdrCRC))
        cases.append(("zero-width.png", badHeader))
        // A valid header claiming 10^6 x 10^6 RGB pixels (libpng's own limit) must not allocate 3 TB.
        cases.append(("huge.png", HandPNG.make(width: 1_000_000, height: 1_000_000, bitDepth: 8, colorType: 2, rows: [])))

        for (name, bytes) in cases {
            let path = try Self.writeBytes(bytes, name)
            let message = Self.expectIOError(file: path) { _ = try PNGImage.read(path) }
            #expect(message.contains("PNG"), "\(name): \(message)")
        }
    }

    @Test func missingFileAndUnwritablePathAreErrors() throws {
        let missing = "/nonexistent-dir-for-imageio/none.png"
        let m = Self.expectIOError(file: missing) { _ = try PNGImage.read(missing) }
        #expect(m.lowercased().contains("no such file"))
        let img = PNGImage(width: 1, height: 1, channels: 3, pixels: [1, 2, 3])
        Self.expectIOError(file: missing) { try img.write(to: missing) }
        // Inconsistent images are refused before libpng sees them.
        let bad = PNGImage(width: 2, height: 2, channels: 3, pixels: [1, 2, 3])
        let p = try Self.tempPath("bad.png")
        Self.expectIOError(file: p) { try bad.write(to: p) }
        Self.expectIOError(file: p) { try PNGImage(width: 1, height: 1, channels: 2, pixels: [1, 2]).write(to: p) }
    }

    // MARK: - Geometry

    @Test func bilinearResizeMatchesHandValues() throws {
        // 2x2 gray [0 100; 200 40] -> 4x4: half-pixel centres, edge clamped.
        let img = PNGImage(width: 2, height: 2, channels: 1, pixels: [0, 100, 200, 40])
        let big = img.resized(width: 4, height: 4)
        let expected: [Float] = [0, 25, 75, 100,
                                 50, 58.75, 76.25, 85,
                                 150, 126.25, 78.75, 55,
                                 200, 160, 80, 40]
        #expect(big.pixels == expected.map { UInt8($0.rounded()) })
        // 2x2 -> 1x1 averages all four (the triangle spans the whole image).
        #expect(img.resized(width: 1, height: 1).pixels == [85])
        // A flat image stays flat at any size, and same-size is the identity.
        let flat = PNGImage(width: 5, height: 3, channels: 3, pixels: [UInt8](repeating: 77, count: 45))
        #expect(flat.resized(width: 17, height: 2).pixels.allSatisfy { $0 == 77 })
        #expect(flat.resized(width: 5, height: 3) == flat)
    }

    @Test func resizingAPhotoKeepsItsAverage() throws {
        let img = try PNGImage.read(Self.chelsea)
        let small = img.resized(width: 64, height: 48)
        #expect(small.width == 64 && small.height == 48 && small.pixels.count == 64 * 48 * 3)
        func mean(_ p: [UInt8]) -> Double { Double(p.reduce(0) { $0 + Int($1) }) / Double(p.count) }
        #expect(abs(mean(small.pixels) - mean(img.pixels)) < 2)
    }

    @Test func rgbaResizeDoesNotBleedTransparentColour() throws {
        // Left pixel opaque red, right pixel fully transparent green.
        let img = PNGImage(width: 2, height: 1, channels: 4, pixels: [255, 0, 0, 255, 0, 255, 0, 0])
        let r = img.resized(width: 4, height: 1)
        for x in 0..<3 { #expect(r.pixels[x * 4 + 1] == 0, "green leaked at \(x)") }
        #expect(r.pixels[3] == 255 && r.pixels[15] == 0)
    }

    @Test func croppingClipsToTheImage() throws {
        let img = PNGImage(width: 4, height: 3, channels: 1, pixels: Array(0..<12))
        #expect(img.cropped(x: 1, y: 1, width: 2, height: 2) == PNGImage(width: 2, height: 2, channels: 1, pixels: [5, 6, 9, 10]))
        #expect(img.cropped(x: 3, y: -1, width: 5, height: 2) == PNGImage(width: 1, height: 1, channels: 1, pixels: [3]))
        #expect(img.cropped(x: 9, y: 0, width: 2, height: 2).pixels.isEmpty)
    }

    // MARK: - Preprocessing

    /// 2x2 RGB: (10,20,30) (40,50,60) / (70,80,90) (100,110,120).
    static let tiny = PNGImage(width: 2, height: 2, channels: 3,
                               pixels: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120])

    @Test func preprocessingMatchesHandComputation() throws {
        // BGR, 0-255, minus per-channel means (in BGR order), times 0.5.
        let pre = Preprocessor(channelSwap: [2, 1, 0], rawScale: 255, scale: 0.5, mean: nil,
                               meanValues: [1, 2, 3], centerCrop: false)
        let t = try pre.tensor(from: Self.tiny, shape: [1, 3, 2, 2])
        #expect(t.shape == [1, 3, 2, 2])
        let expected: [Float] = [(30 - 1) / 2, (60 - 1) / 2, (90 - 1) / 2, (120 - 1) / 2,     // B - 1
                                 (20 - 2) / 2, (50 - 2) / 2, (80 - 2) / 2, (110 - 2) / 2,     // G - 2
                                 (10 - 3) / 2, (40 - 3) / 2, (70 - 3) / 2, (100 - 3) / 2]     // R - 3
        #expect(relativeError(t.array, expected) < 1e-5)

        // No shape: the image's own size and 3 channels, identity swap; raw scale 1 keeps [0, 1].
        let plain = Preprocessor(channelSwap: [0, 1, 2], rawScale: 1, scale: 1, mean: nil, meanValues: nil, centerCrop: false)
        let u = try plain.tensor(from: Self.tiny, shape: nil)
        #expect(u.shape == [1, 3, 2, 2])
        #expect(relativeError(u.array, [10, 40, 70, 100, 20, 50, 80, 110, 30, 60, 90, 120].map { Float($0) / 255 }) < 1e-6)

        // A batch of 2 repeats the item; a (C, H, W) shape keeps rank 3.
        let b = try pre.tensor(from: Self.tiny, shape: [2, 3, 2, 2])
        #expect(Array(b.array[0..<12]) == Array(b.array[12..<24]))
        #expect(try pre.tensor(from: Self.tiny, shape: [3, 2, 2]).shape == [3, 2, 2])
    }

    @Test func preprocessingResizesGrayAndCrops() throws {
        let gray = PNGImage(width: 2, height: 2, channels: 1, pixels: [0, 100, 200, 40])
        let pre = Preprocessor(channelSwap: [2, 1, 0], rawScale: 255, scale: 1, mean: nil, meanValues: nil, centerCrop: false)
        // Upscaling to 4x4 gives the bilinear values, unrounded.
        let t = try pre.tensor(from: gray, shape: [1, 1, 4, 4])
        #expect(relativeError(t.array, [0, 25, 75, 100, 50, 58.75, 76.25, 85,
                                        150, 126.25, 78.75, 55, 200, 160, 80, 40]) < 1e-5)
        // Colour to one channel: Rec. 709 luma (skimage's rgb2gray).
        let red = PNGImage(width: 1, height: 1, channels: 3, pixels: [255, 0, 0])
        #expect(abs(try pre.tensor(from: red, shape: [1, 1, 1, 1])[0] - 0.2125 * 255) < 1e-3)
        // Gray to three channels repeats it.
        let g3 = try pre.tensor(from: gray, shape: [1, 3, 2, 2])
        #expect(Array(g3.array[0..<4]) == Array(g3.array[4..<8]) && Array(g3.array[4..<8]) == Array(g3.array[8..<12]))
        // Alpha is dropped.
        let rgba = PNGImage(width: 1, height: 1, channels: 4, pixels: [10, 20, 30, 0])
        #expect(relativeError(try pre.tensor(from: rgba, shape: [1, 3, 1, 1]).array, [30, 20, 10]) < 1e-6)

        // centerCrop: a 4x2 image into 2x2 needs no scaling (short side 2) and keeps columns 1-2.
        let wide = PNGImage(width: 4, height: 2, channels: 1, pixels: [1, 2, 3, 4, 5, 6, 7, 8])
        var cropper = pre; cropper.centerCrop = true
        #expect(relativeError(try cropper.tensor(from: wide, shape: [1, 1, 2, 2]).array, [2, 3, 6, 7]) < 1e-6)
        // Without it the image is squeezed 2:1 horizontally. Halving widens the triangle to
        // 2 px (as PIL's BILINEAR): output 0 is centred at x = 1 and weighs columns 0, 1, 2
        // by 0.75, 0.75, 0.25 (over 1.75): row [1 2 3 4] gives 3 / 1.75 and 5.75 / 1.75.
        let squeezed: [Float] = [3 / 1.75, 5.75 / 1.75, 3 / 1.75 + 4, 5.75 / 1.75 + 4]
        #expect(relativeError(try pre.tensor(from: wide, shape: [1, 1, 2, 2]).array, squeezed) < 1e-5)
        // centerCrop with scaling: 8x4 -> 2x2 halves first (short side 4 -> 2), then crops.
        let big = PNGImage(width: 8, height: 4, channels: 1, pixels: [UInt8](repeating: 9, count: 32))
        #expect(relativeError(try cropper.tensor(from: big, shape: [1, 1, 2, 2]).array, [9, 9, 9, 9]) < 1e-6)
    }

    @Test func meanImagesAreCroppedOrResized() throws {
        // Mean (3, 4, 4): m[c][y][x] = 100c + 4y + x; the 2x2 input uses its centre (rows, cols 1-2).
        let m = Tensor(shape: [3, 4, 4], values: (0..<48).map { Float(($0 / 16) * 100 + $0 % 16) })
        let pre = Preprocessor(channelSwap: [2, 1, 0], rawScale: 255, scale: 1, mean: m, meanValues: nil, centerCrop: false)
        let t = try pre.tensor(from: Self.tiny, shape: [1, 3, 2, 2])
        let bgr: [Float] = [30, 60, 90, 120, 20, 50, 80, 110, 10, 40, 70, 100]
        let crop: [Float] = [5, 6, 9, 10]
        let expected: [Float] = (0..<12).map { i -> Float in
            let meanValue: Float = Float(i / 4) * 100 + crop[i % 4]
            return bgr[i] - meanValue
        }
        #expect(relativeError(t.array, expected) < 1e-5)

        // (1, C, H, W), (C, 1, 1) and (C) forms.
        let same = Tensor(shape: [1, 3, 2, 2], values: (0..<12).map { Float($0) })
        var p2 = pre; p2.mean = same
        #expect(relativeError(try p2.tensor(from: Self.tiny, shape: [1, 3, 2, 2]).array, (0..<12).map { bgr[$0] - Float($0) }) < 1e-5)
        for perChannel in [Tensor(shape: [3], values: [104, 117, 123]), Tensor(shape: [3, 1, 1], values: [104, 117, 123])] {
            p2.mean = perChannel
            let r = try p2.tensor(from: Self.tiny, shape: [1, 3, 2, 2]).array
            #expect(relativeError(r, (0..<12).map { bgr[$0] - [104, 117, 123][$0 / 4] }) < 1e-5)
        }
        // A mean image smaller than the input is resized: a flat 3x2x2 mean of 7 stays 7 at 4x4.
        let small = Tensor(shape: [3, 2, 2], repeating: 7)
        p2.mean = small
        let up = try p2.tensor(from: PNGImage(width: 4, height: 4, channels: 3, pixels: [UInt8](repeating: 7, count: 48)),
                               shape: [1, 3, 4, 4])
        #expect(up.array.allSatisfy { abs($0) < 1e-4 })
    }

    @Test func impossibleSettingsAreErrors() throws {
        let pre = Preprocessor(channelSwap: [2, 1, 0], rawScale: 255, scale: 1, mean: nil, meanValues: nil, centerCrop: false)
        for shape: Shape in [[1, 5, 2, 2], [1, 2, 2, 2], [2, 2], [1, 3, 0, 2], [0, 3, 2, 2], [1, 1, 3, 2, 2]] {
            Self.expectIOError(file: "preprocessing") { _ = try pre.tensor(from: Self.tiny, shape: shape) }
        }
        for swap in [[0, 1], [0, 1, 3], [-1, 0, 1]] {
            var p = pre; p.channelSwap = swap
            Self.expectIOError(file: "preprocessing") { _ = try p.tensor(from: Self.tiny, shape: [1, 3, 2, 2]) }
        }
        var both = pre
        both.mean = Tensor(shape: [3], values: [1, 2, 3]); both.meanValues = [1, 2, 3]
        Self.expectIOError(file: "preprocessing") { _ = try both.tensor(from: Self.tiny, shape: [1, 3, 2, 2]) }
        var wrongC = pre; wrongC.mean = Tensor(shape: [1, 2, 2], repeating: 0)
        Self.expectIOError(file: "preprocessing") { _ = try wrongC.tensor(from: Self.tiny, shape: [1, 3, 2, 2]) }
        var wrongValues = pre; wrongValues.meanValues = [1, 2]
        Self.expectIOError(file: "preprocessing") { _ = try wrongValues.tensor(from: Self.tiny, shape: [1, 3, 2, 2]) }
        let broken = PNGImage(width: 3, height: 3, channels: 3, pixels: [1])
        Self.expectIOError(file: "preprocessing") { _ = try pre.tensor(from: broken, shape: nil) }
    }

    // MARK: - Back to pictures

    @Test func inverseMappingRoundTrips() throws {
        let img = try PNGImage.read(Self.chelsea).cropped(x: 100, y: 50, width: 40, height: 30)
        let mean: [Float] = [104, 117, 123]
        let pre = Preprocessor(channelSwap: [2, 1, 0], rawScale: 255, scale: 0.017, mean: nil,
                               meanValues: mean, centerCrop: false)
        let t = try pre.tensor(from: img, shape: nil)
        let back = Preprocessor.image(from: t.data, channels: 3, height: 30, width: 40, channelSwap: [2, 1, 0],
                                      rawScale: 255, mean: mean, scale: 0.017)
        #expect(back == img)

        // A mean image given per element (CHW) works the same way.
        let perElement = (0..<(3 * 30 * 40)).map { Float($0 % 251) }
        var p2 = pre; p2.meanValues = nil; p2.mean = Tensor(shape: [3, 30, 40], values: perElement)
        let t2 = try p2.tensor(from: img, shape: nil)
        #expect(Preprocessor.image(from: t2.data, channels: 3, height: 30, width: 40, channelSwap: [2, 1, 0],
                                   rawScale: 255, mean: perElement, scale: 0.017) == img)

        // One channel gives a gray image; out-of-range values clip.
        let g: [Float] = [-0.5, 0, 0.5, 2]
        let gi = g.withUnsafeBufferPointer {
            Preprocessor.image(from: $0.baseAddress!, channels: 1, height: 2, width: 2, channelSwap: [0],
                               rawScale: 1, mean: nil, scale: 1)
        }
        #expect(gi == PNGImage(width: 2, height: 2, channels: 1, pixels: [0, 0, 128, 255]))
    }

    @Test func lowHighMappingClips() throws {
        // 3 channels x 1 x 2 pixels in CHW, range [-1, 1].
        let v: [Float] = [-1, 1, 0, 3, -5, 0.5]
        let img = v.withUnsafeBufferPointer {
            Preprocessor.image(fromCHW: $0.baseAddress!, channels: 3, height: 1, width: 2, low: -1, high: 1)
        }
        #expect(img == PNGImage(width: 2, height: 1, channels: 3, pixels: [0, 128, 0, 255, 255, 191]))
    }

    // MARK: - Mean files

    @Test func meanFilesReadNPYAndRefuseBinaryproto() throws {
        let p = try Self.tempPath("mean.npy")
        try NPY.write(Tensor(shape: [1, 3, 4, 5], repeating: 2), to: p)
        let m = try MeanFile.read(p)
        #expect(m.shape == [3, 4, 5] && m.array.allSatisfy { $0 == 2 })
        let v = try Self.tempPath("values.npy")
        try NPY.write(Tensor(shape: [3], values: [104, 117, 123]), to: v)
        #expect(try MeanFile.read(v).array == [104, 117, 123])
        let bad = try Self.tempPath("bad.npy")
        try NPY.write(Tensor(shape: [2, 3], repeating: 0), to: bad)
        Self.expectIOError(file: bad) { _ = try MeanFile.read(bad) }
        let proto = try Self.tempPath("mean.binaryproto")
        try Data([0x0A, 0x00]).write(to: URL(fileURLWithPath: proto))
        let message = Self.expectIOError(file: proto) { _ = try MeanFile.read(proto) }
        #expect(message.contains(".npy") && message.contains("inverse-set") && message.contains("numpy"))
        Self.expectIOError(file: "/nonexistent/mean.npy") { _ = try MeanFile.read("/nonexistent/mean.npy") }
    }

    // MARK: - Contact sheets

    @Test func contactSheetLayout() throws {
        let white = PNGImage(width: 3, height: 3, channels: 3, pixels: [UInt8](repeating: 255, count: 27))
        let gray = PNGImage(width: 2, height: 2, channels: 1, pixels: [77, 77, 77, 77])
        let tiles = [gray, white, white, white, white]
        // 5 tiles in 3 columns: 2 rows; 2 + 3 * (10 + 2) by 2 + 2 * (10 + 2).
        let sheet = ContactSheet.make(tiles: tiles, columns: 3, rowLabels: nil, tileSize: 10)
        #expect(sheet.width == 38 && sheet.height == 26 && sheet.channels == 3)
        #expect(sheet.pixels.count == 38 * 26 * 3)
        // The gray tile is converted to RGB at (2, 2).
        let centre = ((2 + 5) * 38 + 2 + 5) * 3
        #expect(Array(sheet.pixels[centre..<(centre + 3)]) == [77, 77, 77])

        // With labels: one row per label, label column as wide as the longest label.
        let labels = ["a", "fc8:980 [40,50]"]
        let labelled = ContactSheet.make(tiles: tiles, columns: 3, rowLabels: labels, tileSize: 10)
        let labelWidth = 15 * 6 - 1
        #expect(labelled.width == 2 + labelWidth + 2 + 36 && labelled.height == 26)
        for row in 0..<2 {
            var dark = 0
            for y in (2 + row * 12)..<(2 + row * 12 + 10) {
                for x in 2..<(2 + labelWidth) where labelled.pixels[(y * labelled.width + x) * 3] < 128 { dark += 1 }
            }
            #expect(dark > 5, "row \(row) label has \(dark) dark pixels")
        }
        // Three labels, five tiles: the last row is empty background.
        let three = ContactSheet.make(tiles: tiles, columns: 3, rowLabels: ["x", "y", "z"], tileSize: 10, padding: 0)
        #expect(three.height == 30)
        // Large tiles use a 2x font: a 64-px row label is 2x as wide.
        let big = ContactSheet.make(tiles: [white], columns: 1, rowLabels: ["ab"], tileSize: 64, padding: 1)
        #expect(big.width == 1 + (2 * 6 - 1) * 2 + 1 + 64 + 1)
    }

    @Test func everyGlyphIsDistinctAndVisible() throws {
        // Render each printable character alone as a label and compare the label areas.
        var seen: [[UInt8]: Character] = [:]
        for code in 33...126 {
            let c = Character(UnicodeScalar(UInt8(code)))
            let s = ContactSheet.make(tiles: [], columns: 1, rowLabels: [String(c)], tileSize: 10, padding: 0)
            #expect(s.width == 5 + 10)   // 5-px glyph column + one tile
            var bits: [UInt8] = []
            for y in 0..<10 { for x in 0..<5 { bits.append(s.pixels[(y * s.width + x) * 3] < 128 ? 1 : 0) } }
            #expect(bits.contains(1), "'\(c)' draws nothing")
            if let other = seen[bits] { Issue.record("'\(c)' looks like '\(other)'") }
            seen[bits] = c
        }
    }

    /// A sheet of the shared photographs with labels; written to
    /// $IMAGEIO_SHEET_OUT when set, for looking at it.
    @Test func contactSheetOfPhotographs() throws {
        var paths = ((try? FileManager.default.contentsOfDirectory(atPath: Self.sharedImages)) ?? [])
            .filter { $0.lowercased().hasSuffix(".png") }.sorted().map { Self.sharedImages + "/" + $0 }
        if paths.isEmpty { paths = [Self.chelsea] }
        let images = try paths.map { try PNGImage.read($0) }
        var tiles: [PNGImage] = []
        for img in images {
            tiles += [img, img.cropped(x: img.width / 4, y: img.height / 4, width: img.width / 2, height: img.height / 2),
                      PNGImage(width: img.width, height: img.height, channels: 1,
                               pixels: stride(from: 0, to: img.pixels.count, by: img.channels).map { img.pixels[$0 + 1] })]
        }
        let labels = ["fc8:980 [40,50]", "conv5:12 [-3.5,0.25]", "prob:281 (tabby) [0.9,1]"].prefix(images.count)
        let sheet = ContactSheet.make(tiles: tiles, columns: 3, rowLabels: Array(labels), tileSize: 96)
        #expect(sheet.height == 2 + labels.count * 98)
        let out = try ProcessInfo.processInfo.environment["IMAGEIO_SHEET_OUT"] ?? Self.tempPath("sheet.png")
        try sheet.write(to: out)
        #expect(try PNGImage.read(out) == sheet)
    }

    @Test func growableArraysAreExtendedInPlace() throws {
        let p = try Self.tempPath("codes.npy")
        let rows = (0..<7).map { r in (0..<3).map { Float(r * 10 + $0) } }
        try NPY.write(Tensor(shape: [2, 3], values: rows[0..<2].flatMap { $0 }), to: p, growable: true)
        // Two appends; the file reads back as all rows after each.
        for (before, after) in [(2, 5), (5, 7)] {
            let added = rows[before..<after].flatMap { $0 }
            #expect(try added.withUnsafeBufferPointer { try NPY.appendRows($0, columns: 3, rowsBefore: before, to: p) })
            let t = try NPY.read(p)
            #expect(t.shape == Shape([after, 3]))
            #expect(t.array == rows[0..<after].flatMap { $0 })
        }
        #expect(try FileManager.default.attributesOfItem(atPath: p)[.size] as? Int == NPY.growableHeaderBytes + 7 * 3 * 4)

        // A run killed after writing rows but before the header: the extra
        // rows are replaced and the file cut to the new length.
        let q = try Self.tempPath("killed.npy")
        var bytes = NPY.encode(Tensor(shape: [2, 3], values: rows[0..<2].flatMap { $0 }), growable: true)
        bytes += [UInt8](repeating: 0xFF, count: 5 * 3 * 4)   // five stray rows of NaN
        #expect(FileManager.default.createFile(atPath: q, contents: Data(bytes)))
        #expect(try NPY.read(q).shape == Shape([2, 3]))        // the header still counts two
        let one = rows[2]
        #expect(try one.withUnsafeBufferPointer { try NPY.appendRows($0, columns: 3, rowsBefore: 2, to: q) })
        #expect(try NPY.read(q).array == rows[0..<3].flatMap { $0 })
        #expect(try FileManager.default.attributesOfItem(atPath: q)[.size] as? Int == NPY.growableHeaderBytes + 3 * 3 * 4)

        // Not extendable (a 1-d array, another width, another row count):
        // false, and the file is left as it was.
        let r = try Self.tempPath("flat.npy")
        try NPY.write(Tensor(shape: [6], values: rows[0..<2].flatMap { $0 }), to: r)
        let before = try Data(contentsOf: URL(fileURLWithPath: r))
        for (cols, n) in [(3, 2), (6, 1)] {
            #expect(try !one.withUnsafeBufferPointer { try NPY.appendRows($0, columns: cols, rowsBefore: n, to: r) })
        }
        #expect(try !one.withUnsafeBufferPointer { try NPY.appendRows($0, columns: 1, rowsBefore: 21, to: p) })
        #expect(try !one.withUnsafeBufferPointer { try NPY.appendRows($0, columns: 3, rowsBefore: 4, to: p) })
        #expect(try Data(contentsOf: URL(fileURLWithPath: r)) == before)
        #expect(try NPY.read(p).shape == Shape([7, 3]))
    }
}
