/// A grid of image tiles on one RGB picture, with optional text labels at the
/// left of each row (drawn with `BitmapFont`).
///
///     ContactSheet.make(tiles: images, columns: 8, rowLabels: ["fc8:980 [40,50]", ...], tileSize: 96)
///
/// Layout (p = padding, L = label column width, T = tileSize):
///
///     p | L | p | T | p | T | p ... | T | p        one row: p + T tall
///
/// Without labels the grid has ceil(tiles / columns) rows; with labels it has
/// one row per label and tiles fill the rows in order (row r shows tiles
/// r*columns ..< (r+1)*columns; missing tiles leave background, extra ones
/// are left out). With `tileLabels` (one per tile) each tile gets a one-line
/// caption under it, cut to the tile's width.
public struct ContactSheet {
    public static func make(tiles: [PNGImage], columns: Int, rowLabels: [String]?, tileSize: Int,
                            padding: Int = 2, background: UInt8 = 255, tileLabels: [String]? = nil) -> PNGImage {
        let cols = max(1, columns), t = max(1, tileSize), pad = max(0, padding)
        let rows = rowLabels?.count ?? (tiles.count + cols - 1) / cols
        // Caption strip under each tile: one line of the 5x7 font.
        let caption = tileLabels == nil ? 0 : BitmapFont.lineHeight + 1
        let rowHeight = t + caption

        // Labels: glyphs doubled once tiles are big enough to make 5x7 look tiny.
        let fontScale = t >= 40 ? 2 : 1
        let lines = (rowLabels ?? []).map { wrap($0, tileSize: t, fontScale: fontScale) }
        let labelWidth = lines.map { ls in ls.map { BitmapFont.width(of: $0, scale: fontScale) }.max() ?? 0 }.max() ?? 0
        let gridX = pad + (labelWidth > 0 ? labelWidth + pad : 0)

        let width = gridX + cols * (t + pad)
        let height = pad + rows * (rowHeight + pad)
        var px = [UInt8](repeating: background, count: width * height * 3)

        for (i, tile) in tiles.prefix(rows * cols).enumerated() {
            let img = tile.rgb(background: background).resized(width: t, height: t)
            guard img.width == t, img.height == t else { continue }
            let x0 = gridX + (i % cols) * (t + pad), y0 = pad + (i / cols) * (rowHeight + pad)
            for y in 0..<t {
                let src = y * t * 3, dst = ((y0 + y) * width + x0) * 3
                px.replaceSubrange(dst..<(dst + t * 3), with: img.pixels[src..<(src + t * 3)])
            }
        }
        let ink: UInt8 = background > 127 ? 0 : 255
        if let tileLabels {
            let fits = max(1, (t + BitmapFont.advance - BitmapFont.glyphWidth) / BitmapFont.advance)
            for (i, label) in tileLabels.prefix(min(tiles.count, rows * cols)).enumerated() {
                let x0 = gridX + (i % cols) * (t + pad), y0 = pad + (i / cols) * (rowHeight + pad) + t + 1
                BitmapFont.draw(String(label.prefix(fits)), x: x0, y: y0, scale: 1, level: ink,
                                into: &px, width: width, height: height, channels: 3)
            }
        }

        // Labels in ink that contrasts with the background.
        let lineHeight = BitmapFont.lineHeight * fontScale
        for (r, ls) in lines.enumerated() where !ls.isEmpty {
            let textHeight = ls.count * lineHeight - (BitmapFont.lineHeight - BitmapFont.glyphHeight) * fontScale
            var y = pad + r * (rowHeight + pad) + max(0, (t - textHeight) / 2)
            for line in ls {
                BitmapFont.draw(line, x: pad, y: y, scale: fontScale, level: ink,
                                into: &px, width: width, height: height, channels: 3)
                y += lineHeight
            }
        }
        return PNGImage(width: width, height: height, channels: 3, pixels: px)
    }

    /// Splits a label into lines that fit the label column (at most
    /// max(16 characters, 3 tiles) wide) and the row's height, breaking at
    /// spaces where possible; text that still does not fit ends in "..".
    static func wrap(_ label: String, tileSize t: Int, fontScale s: Int) -> [String] {
        let text = label.trimmingWhitespace()
        guard !text.isEmpty else { return [] }
        let perLine = max(16, (3 * t) / (BitmapFont.advance * s))
        let maxLines = max(1, (t + (BitmapFont.lineHeight - BitmapFont.glyphHeight) * s) / (BitmapFont.lineHeight * s))
        var lines: [String] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            if rest.count <= perLine { lines.append(String(rest)); break }
            let head = rest.prefix(perLine + 1)
            let cut = head.lastIndex(of: " ").map { rest.distance(from: rest.startIndex, to: $0) } ?? perLine
            let n = cut > 0 ? cut : perLine
            lines.append(String(rest.prefix(n)).trimmingWhitespace())
            rest = rest.dropFirst(n).drop { $0 == " " }
        }
        if lines.count > maxLines {
            lines = Array(lines.prefix(maxLines))
            let last = lines[maxLines - 1]
            lines[maxLines - 1] = String(last.prefix(max(0, perLine - 2))) + ".."
        }
        return lines
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
