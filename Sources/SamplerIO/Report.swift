import Foundation
import ImageIO
import Sampler

/// sheet.png and report.html of a sample folder.
public enum Report {
    /// What the report says about the run beside the folder's own records.
    public struct Context {
        public var neurons: [String]
        /// `labels[k]`: the class name of neuron k, or "".
        public var labels: [String]
        /// Class names of the classifier's units (for top classes and nearest images).
        public var classNames: [String]
        public var notes: [String]
        public var facts: [[String: Double]]
        public init(neurons: [String], labels: [String], classNames: [String], notes: [String], facts: [[String: Double]]) {
            self.neurons = neurons; self.labels = labels; self.classNames = classNames; self.notes = notes; self.facts = facts
        }
    }

    public static func write(folder: SampleFolder, context: Context, evaluation: FolderEvaluation?) throws {
        let dir = folder.dir
        let records = folder.manifest.samples
        let bandSets = folder.manifest.bands
        // Sheet: one labelled row per band when there are several, else a square grid.
        var tiles: [PNGImage] = []
        var rowLabels: [String]? = nil
        var columns: Int
        if bandSets.count > 1 {
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
        try html(folder: folder, context: context, evaluation: evaluation)
            .write(toFile: dir + "/report.html", atomically: true, encoding: .utf8)
    }

    static func short(_ v: Float) -> String {
        v == v.rounded() && abs(v) < 1e7 ? String(Int(v)) : String(format: "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// An inline SVG histogram of values with the band shaded, counts on the y axis.
    static func histogram(_ values: [Float], band: Band, title: String) -> String {
        let w = 360.0, h = 140.0, bins = 30, left = 34.0
        let lo = Double(min(values.min() ?? band.low, band.low)), hi = Double(max(values.max() ?? band.high, band.high))
        let span = max(hi - lo, 1e-6)
        let x0 = lo - 0.05 * span, x1 = hi + 0.05 * span
        var counts = [Int](repeating: 0, count: bins)
        for v in values { counts[min(bins - 1, max(0, Int((Double(v) - x0) / (x1 - x0) * Double(bins))))] += 1 }
        let maxC = Double(max(counts.max() ?? 1, 1))
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (w - left - 10) }
        var svg = "<svg width=\"\(Int(w))\" height=\"\(Int(h) + 34)\" xmlns=\"http://www.w3.org/2000/svg\">"
        svg += "<rect x=\"\(px(Double(band.low)))\" y=\"10\" width=\"\(px(Double(band.high)) - px(Double(band.low)))\" height=\"\(h - 10)\" fill=\"#cfe8cf\"/>"
        let bw = (w - left - 10) / Double(bins)
        for (i, c) in counts.enumerated() where c > 0 {
            let bh = Double(c) / maxC * (h - 20)
            svg += "<rect x=\"\(left + Double(i) * bw)\" y=\"\(h - bh)\" width=\"\(bw - 1)\" height=\"\(bh)\" fill=\"#3b6ea5\"><title>\(c)</title></rect>"
        }
        svg += "<line x1=\"\(left)\" y1=\"\(h)\" x2=\"\(w - 10)\" y2=\"\(h)\" stroke=\"black\"/>"
        svg += "<line x1=\"\(left)\" y1=\"10\" x2=\"\(left)\" y2=\"\(h)\" stroke=\"black\"/>"
        svg += "<text x=\"2\" y=\"\(h - 20 * 0 - (h - 20) + 4)\" font-size=\"10\">\(Int(maxC))</text>"
        svg += "<text x=\"2\" y=\"\(h)\" font-size=\"10\">0</text>"
        svg += "<text x=\"\(left)\" y=\"\(h + 14)\" font-size=\"11\">\(short(Float(x0)))</text>"
        svg += "<text x=\"\(w - 60)\" y=\"\(h + 14)\" font-size=\"11\">\(short(Float(x1)))</text>"
        svg += "<text x=\"\(left)\" y=\"\(h + 30)\" font-size=\"11\">\(escape(title)) band \(escape(band.description)), samples per bin</text></svg>"
        return svg
    }

    static func title(method: String, neurons: String) -> String {
        switch method {
        case "am": return "Activation maximisation of \(neurons)"
        case "ppgn": return "PPGN samples of \(neurons)"
        default: return "Inverse set of \(neurons)"
        }
    }

    static func percent(_ v: Double?) -> String { v.map { String(format: "%.1f%%", 100 * $0) } ?? "–" }
    static func number(_ v: Double?, _ f: String = "%.3f") -> String { v.map { String(format: f, $0) } ?? "–" }

    /// The evaluation table: samples against the control, per figure.
    static func qualityTable(_ q: SampleQuality, _ c: SampleQuality) -> String {
        var out = "<table class=\"fig\"><tr><th>figure</th><th>samples</th><th>control G(code(x))</th></tr>"
        func row(_ name: String, _ a: String, _ b: String) { out += "<tr><td>\(name)</td><td>\(a)</td><td>\(b)</td></tr>" }
        row("count", String(q.sampleCount), String(c.sampleCount))
        row("precision (k = 3)", number(q.precision), number(c.precision))
        row("recall", number(q.recall), number(c.recall))
        row("precision, balls capped at p95", number(q.cappedPrecision), number(c.cappedPrecision))
        row("recall, balls capped at p95", number(q.cappedRecall), number(c.cappedRecall))
        row("density", number(q.density), number(c.density))
        row("coverage", number(q.coverage), number(c.coverage))
        row("near-duplicates (< 0.25 d)", percent(q.nearDuplicates), percent(c.nearDuplicates))
        row("distinct (pairwise > 0.5 d)", q.distinct.map { "\($0) (\(percent(q.distinctFraction)))" } ?? "–",
            c.distinct.map { "\($0) (\(percent(c.distinctFraction)))" } ?? "–")
        row("mean ‖E‖ / real", number(q.normRatio), number(c.normRatio))
        row("in band", percent(q.inBand), percent(c.inBand))
        for (k, t) in q.thirds.enumerated() {
            let ct = k < c.thirds.count ? c.thirds[k] : []
            row("thirds of band \(k + 1) (low / mid / high)", t.map { percent($0) }.joined(separator: " / "),
                ct.map { percent($0) }.joined(separator: " / "))
        }
        return out + "</table>"
    }

    static func html(folder: SampleFolder, context: Context, evaluation: FolderEvaluation?) -> String {
        let m = folder.manifest
        let s = m.summary ?? [:]
        let named = context.neurons.enumerated().map { k, n in
            k < context.labels.count && !context.labels[k].isEmpty ? "\(n) (\(context.labels[k]))" : n
        }.joined(separator: " ∩ ")
        var out = "<!doctype html><html><head><meta charset=\"utf-8\"><title>\(escape(title(method: m.settings.method, neurons: named)))</title>"
        out += "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}td,th{padding:3px 9px;text-align:left}"
        out += ".fig td:nth-child(n+2){text-align:right}.grid{display:flex;flex-wrap:wrap;gap:6px}"
        out += ".cell{font-size:11px;text-align:center;border:1px solid #ddd;padding:3px}.cell img{width:56px;height:56px;image-rendering:pixelated}"
        out += "code{background:#f3f3f3;padding:1px 4px}</style></head><body>"
        out += "<h1>\(escape(title(method: m.settings.method, neurons: named)))</h1>"
        let st = m.settings
        out += "<p>method <b>\(escape(st.method))</b>\(st.variant.map { ", variant <b>\(escape($0))</b>" } ?? ""), n = \(m.n) per band, K = \(st.k), seed \(st.seed), pipeline <code>\(escape(st.pipeline))</code>; \(escape(m.tool))</p>"
        out += "<p>\(folder.totalSteps) gradient steps and \(String(format: "%.1f", folder.totalSeconds)) s over \(m.segments.count) segment(s):</p><ul>"
        for seg in m.segments {
            out += "<li><code>\(escape(seg.command.joined(separator: " ")))</code> — started \(escape(seg.started)), \(seg.steps) steps, \(String(format: "%.1f", seg.seconds)) s, \(seg.accepted) samples</li>"
        }
        out += "</ul>"
        for note in context.notes { out += "<p style=\"color:#a00\"><b>Note:</b> \(escape(note))</p>" }
        out += "<h2>Samples</h2><img src=\"sheet.png\" style=\"max-width:100%\">"
        out += "<h2>Figures</h2><table>"
        func row(_ k: String, _ v: String) { out += "<tr><th>\(k)</th><td>\(v)</td></tr>" }
        row("samples accepted", String(Int(s["accepted"] ?? 0)))
        row("fraction inside the band", percent(s["in_band"]))
        row("mean pairwise E distance (the paper's diversity)", number(s["diversity"]))
        row("gradient steps (all segments)", String(folder.totalSteps))
        row("wall time (all segments)", String(format: "%.1f s", folder.totalSeconds))
        row("classifier passes per step", number(s["trunk_passes_per_step"], "%.2f"))
        for (b, f) in context.facts.enumerated() where !f.isEmpty {
            let text = f.keys.sorted().map { "\($0) \(String(format: "%.4g", f[$0]!))" }.joined(separator: ", ")
            row("sampler, band \(b + 1)", escape(text))
        }
        out += "</table>"
        if let ev = evaluation {
            out += "<h2>Against the real inverse set</h2>"
            out += "<p>Real images: the \(ev.evaluationImages) images of <code>\(escape(ev.dataset))</code>\(ev.split.map { " (split \(escape($0)))" } ?? "") whose activations lie in the band, embedded by E. The control is G's reconstruction of each of them: the best this generator can show. d = the real set's median nearest-neighbour distance; k-NN balls with k = 3 (docs/evaluation.md).</p>"
            for bf in ev.bands {
                let name = bf.bands.map(\.description).joined(separator: " ")
                out += "<h3>Band \(bf.band + 1): \(escape(name)) — \(bf.realImages.count) real images, d = \(number(bf.samples.d))</h3>"
                out += qualityTable(bf.samples, bf.control)
                if !bf.realImages.isEmpty {
                    out += "<p>Real images in the band (first 24):</p><div class=\"grid\">"
                    for i in bf.realImages.prefix(24) { out += "<div class=\"cell\"><img src=\"real/\(i).png\"></div>" }
                    out += "</div>"
                }
                out += "<p>Each sample (first 60) with its activation, the classifier's top class and its nearest real image in E:</p><div class=\"grid\">"
                for (j, idx) in bf.sampleIndices.prefix(60).enumerated() {
                    let r = m.samples[idx]
                    let top = bf.topClass.map { t in t[j] < context.classNames.count ? context.classNames[t[j]] : String(t[j]) } ?? ""
                    let near = bf.nearest[j]
                    let nearLabel = near.label.map { $0 < context.classNames.count ? context.classNames[$0] : String($0) } ?? ""
                    out += "<div class=\"cell\"><img src=\"\(r.file)\"><img src=\"real/\(near.image).png\"><br>"
                    out += "\(r.activations.map { short($0) }.joined(separator: ", ")) \(escape(top))<br>nearest: \(escape(nearLabel)) \(String(format: "%.2f", near.distance))</div>"
                }
                out += "</div>"
            }
        }
        out += "<h2>Activations</h2>"
        for (b, bands) in m.bands.enumerated() {
            let recs = m.samples.filter { $0.band == b }
            for (k, neuron) in context.neurons.enumerated() where k < bands.count {
                var title = neuron
                if k < context.labels.count, !context.labels[k].isEmpty { title += " (\(context.labels[k]))" }
                out += histogram(recs.map { $0.activations[k] }, band: bands[k], title: title)
            }
        }
        out += "</body></html>\n"
        return out
    }
}
