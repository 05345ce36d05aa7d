import Foundation
import ImageIO
import Sampler

/// sheet.png and report.html of a sample folder.
enum Report {
    static func write(folder: SampleFolder, bandSets: [[Band]], neurons: [String], method: String,
                      notes: [String], labels: [String]) throws {
        // `labels[k]`: the class name of neuron k, or "" (see SampleCommand.neuronLabels).
        let dir = folder.dir
        let records = folder.manifest.samples
        // Sheet: one labelled row per band when there are several, else a square grid.
        var tiles: [PNGImage] = []
        var rowLabels: [String]? = nil
        var columns: Int
        if bandSets.count > 1 {
            // Up to 12 samples per row, no wider than the fullest band.
            let perBand = bandSets.indices.map { b in records.filter { $0.band == b }.count }
            columns = min(12, max(1, perBand.max() ?? 1))
            rowLabels = []
            for (b, bands) in bandSets.enumerated() {
                let row = records.filter { $0.band == b }.prefix(columns)
                for r in row { if let img = try? PNGImage.read(dir + "/" + r.file) { tiles.append(img) } }
                for _ in row.count..<columns { tiles.append(PNGImage(width: 1, height: 1, channels: 3, pixels: [255, 255, 255])) }
                rowLabels!.append(bands.map { "[\(short($0.low)),\(short($0.high))]" }.joined(separator: " "))
            }
        } else {
            for r in records { if let img = try? PNGImage.read(dir + "/" + r.file) { tiles.append(img) } }
            columns = max(1, Int(Double(tiles.count).squareRoot().rounded(.up)))
        }
        if !tiles.isEmpty {
            let size = max(64, min(128, tiles[0].width * (tiles[0].width < 64 ? 3 : 1)))
            let sheet = ContactSheet.make(tiles: tiles, columns: columns, rowLabels: rowLabels, tileSize: size)
            try sheet.write(to: dir + "/sheet.png")
        }
        try html(folder: folder, bandSets: bandSets, neurons: neurons, method: method, notes: notes, labels: labels)
            .write(toFile: dir + "/report.html", atomically: true, encoding: .utf8)
    }

    static func short(_ v: Float) -> String {
        v == v.rounded() ? String(Int(v)) : String(format: "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// An inline SVG histogram of values with the band shaded.
    static func histogram(_ values: [Float], band: Band, title: String) -> String {
        let w = 360.0, h = 140.0, bins = 30
        let lo = Double(min(values.min() ?? band.low, band.low)), hi = Double(max(values.max() ?? band.high, band.high))
        let span = max(hi - lo, 1e-6)
        let x0 = lo - 0.05 * span, x1 = hi + 0.05 * span
        var counts = [Int](repeating: 0, count: bins)
        for v in values { counts[min(bins - 1, max(0, Int((Double(v) - x0) / (x1 - x0) * Double(bins))))] += 1 }
        let maxC = Double(max(counts.max() ?? 1, 1))
        func px(_ x: Double) -> Double { 10 + (x - x0) / (x1 - x0) * (w - 20) }
        var svg = "<svg width=\"\(Int(w))\" height=\"\(Int(h) + 30)\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += "<rect x=\"\(px(Double(band.low)))\" y=\"10\" width=\"\(px(Double(band.high)) - px(Double(band.low)))\" height=\"\(h - 10)\" fill=\"#cfe8cf\"/>"
        let bw = (w - 20) / Double(bins)
        for (i, c) in counts.enumerated() where c > 0 {
            let bh = Double(c) / maxC * (h - 20)
            svg += "<rect x=\"\(10 + Double(i) * bw)\" y=\"\(h - bh)\" width=\"\(bw - 1)\" height=\"\(bh)\" fill=\"#3b6ea5\"/>"
        }
        svg += "<line x1=\"10\" y1=\"\(h)\" x2=\"\(w - 10)\" y2=\"\(h)\" stroke=\"black\"/>"
        svg += "<text x=\"10\" y=\"\(h + 16)\" font-size=\"11\">\(short(Float(x0)))</text>"
        svg += "<text x=\"\(w - 60)\" y=\"\(h + 16)\" font-size=\"11\">\(short(Float(x1)))</text>"
        svg += "<text x=\"\(w / 2 - 60)\" y=\"\(h + 28)\" font-size=\"11\">\(escape(title)) band \(escape(band.description))</text></svg>"
        return svg
    }

    static func html(folder: SampleFolder, bandSets: [[Band]], neurons: [String], method: String,
                     notes: [String], labels: [String]) -> String {
        let m = folder.manifest
        let s = m.summary ?? [:]
        var out = "<!doctype html><html><head><meta charset=\"utf-8\"><title>inverse-set report</title>"
        out += "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}td,th{padding:4px 10px;text-align:left}</style></head><body>"
        let named = neurons.enumerated().map { k, n in k < labels.count && !labels[k].isEmpty ? "\(n) (\(labels[k]))" : n }
        out += "<h1>Inverse set of \(escape(named.joined(separator: " ∩ ")))</h1>"
        out += "<p>method <b>\(escape(method))</b>, pipeline <code>\(escape(m.configuration["pipeline"] ?? ""))</code>, seed \(escape(m.configuration["seed"] ?? ""))</p>"
        for note in notes { out += "<p style=\"color:#a00\"><b>Note:</b> \(escape(note))</p>" }
        out += "<h2>Samples</h2><img src=\"sheet.png\" style=\"max-width:100%\">"
        out += "<h2>Metrics</h2><table>"
        func row(_ k: String, _ v: String) { out += "<tr><th>\(k)</th><td>\(v)</td></tr>" }
        row("samples accepted", String(Int(s["accepted"] ?? 0)))
        row("fraction inside the band", String(format: "%.1f%%", 100 * (s["in_band"] ?? 0)))
        row("mean pairwise E distance (diversity)", String(format: "%.3f", s["diversity"] ?? 0))
        row("gradient steps", String(Int(s["steps"] ?? 0)))
        row("wall time", String(format: "%.1f s", s["seconds"] ?? 0))
        row("classifier passes per step", String(format: "%.2f", s["trunk_passes_per_step"] ?? 0))
        out += "</table><h2>Activations</h2>"
        for (b, bands) in bandSets.enumerated() {
            let recs = m.samples.filter { $0.band == b }
            for (k, neuron) in neurons.enumerated() {
                var title = neuron
                if k < labels.count, !labels[k].isEmpty { title += " (\(labels[k]))" }
                out += histogram(recs.map { $0.activations[k] }, band: bands[k], title: title)
            }
        }
        out += "</body></html>\n"
        return out
    }
}

