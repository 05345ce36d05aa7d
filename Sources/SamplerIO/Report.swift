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
        /// The sheet's layout: tiles per row (nil: a square grid, or 12 per band row),
        /// tile size in pixels (nil: from the images), and whether each tile is
        /// captioned with its activations (and the top class, when known).
        public var columns: Int?
        public var tile: Int?
        public var tileLabels = false
        /// Top class name per sample index, for the captions when no evaluation gives them.
        public var topClasses: [Int: String] = [:]
        public init(neurons: [String], labels: [String], classNames: [String], notes: [String], facts: [[String: Double]]) {
            self.neurons = neurons; self.labels = labels; self.classNames = classNames; self.notes = notes; self.facts = facts
        }
    }

    public static func write(folder: SampleFolder, context: Context, evaluation: FolderEvaluation?) throws {
        let dir = folder.dir
        let records = folder.manifest.samples
        let bandSets = folder.manifest.bands
        // The top class of each evaluated sample, for the tile captions.
        var topClass = context.topClasses
        for bf in evaluation?.bands ?? [] {
            for (j, idx) in bf.sampleIndices.enumerated() {
                if let t = bf.topClass?[j] { topClass[idx] = t < context.classNames.count ? context.classNames[t] : String(t) }
            }
        }
        func caption(_ r: SampleFolder.Record) -> String {
            ([r.activations.map { short($0, digits: 3) }.joined(separator: ",")] + (topClass[r.index].map { [$0] } ?? [])).joined(separator: " ")
        }
        // Sheet: one labelled row per band when there are several, else a square grid.
        var tiles: [PNGImage] = [], captions: [String] = []
        var rowLabels: [String]? = nil
        var columns: Int
        let blank = PNGImage(width: 1, height: 1, channels: 3, pixels: [255, 255, 255])
        if bandSets.count > 1 {
            let perBand = bandSets.indices.map { b in records.filter { $0.band == b }.count }
            columns = max(1, context.columns ?? min(12, max(1, perBand.max() ?? 1)))
            rowLabels = []
            for (b, bands) in bandSets.enumerated() {
                let row = records.filter { $0.band == b }.prefix(columns)
                for r in row { tiles.append((try? PNGImage.read(dir + "/" + r.file)) ?? blank); captions.append(caption(r)) }
                for _ in row.count..<columns { tiles.append(blank); captions.append("") }
                var label = bands.map { "[\(short($0.low)),\(short($0.high))]" }.joined(separator: " ")
                if row.isEmpty { label += " none" }
                rowLabels!.append(label)
            }
        } else {
            for r in records { tiles.append((try? PNGImage.read(dir + "/" + r.file)) ?? blank); captions.append(caption(r)) }
            columns = max(1, context.columns ?? Int(Double(tiles.count).squareRoot().rounded(.up)))
        }
        let sheetPath = dir + "/sheet.png"
        if let first = tiles.first(where: { $0.width > 1 }) {
            let size = context.tile ?? max(64, min(128, first.width * (first.width < 64 ? 3 : 1)))
            let sheet = ContactSheet.make(tiles: tiles, columns: columns, rowLabels: rowLabels, tileSize: max(8, size),
                                          tileLabels: context.tileLabels ? captions : nil)
            try sheet.write(to: sheetPath)
        } else if FileManager.default.fileExists(atPath: sheetPath) {
            try? FileManager.default.removeItem(atPath: sheetPath)   // no sample: no stale sheet
        }
        try html(folder: folder, context: context, evaluation: evaluation)
            .write(toFile: dir + "/report.html", atomically: true, encoding: .utf8)
    }

    static func short(_ v: Float, digits: Int = 3) -> String {
        v == v.rounded() && abs(v) < 1e7 ? String(Int(v)) : String(format: "%.\(digits)g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// An inline SVG histogram of values with the band shaded, counts on the y axis.
    /// `closest`: for a band that got no sample, the closest activation reached (marked in red).
    static func histogram(_ values: [Float], band: Band, title: String, closest: Float? = nil) -> String {
        let w = 360.0, h = 140.0, bins = 30, left = 34.0
        let marks = values + (closest.map { [$0] } ?? [])
        let lo = Double(min(marks.min() ?? band.low, band.low)), hi = Double(max(marks.max() ?? band.high, band.high))
        let span = max(hi - lo, 1e-6)
        let x0 = lo - 0.05 * span, x1 = hi + 0.05 * span
        var counts = [Int](repeating: 0, count: bins)
        for v in values { counts[min(bins - 1, max(0, Int((Double(v) - x0) / (x1 - x0) * Double(bins))))] += 1 }
        let maxC = Double(max(counts.max() ?? 1, 1))
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (w - left - 10) }
        var svg = "<svg width=\"\(Int(w))\" height=\"\(Int(h) + 46)\" xmlns=\"http://www.w3.org/2000/svg\">"
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
        // Band edges on the x axis.
        for edge in [band.low, band.high] {
            let x = px(Double(edge))
            svg += "<line x1=\"\(x)\" y1=\"\(h)\" x2=\"\(x)\" y2=\"\(h + 4)\" stroke=\"#2a7a2a\"/>"
            svg += "<text x=\"\(x - 8)\" y=\"\(h + 25)\" font-size=\"10\" fill=\"#2a7a2a\">\(short(edge))</text>"
        }
        if let closest, closest.isFinite {
            let x = px(Double(closest))
            svg += "<line class=\"closest\" x1=\"\(x)\" y1=\"10\" x2=\"\(x)\" y2=\"\(h)\" stroke=\"#c00\" stroke-width=\"2\"><title>closest activation reached: \(closest)</title></line>"
            svg += "<text x=\"\(min(x + 3, w - 90))\" y=\"22\" font-size=\"10\" fill=\"#c00\">closest \(short(closest, digits: 4))</text>"
        }
        svg += "<text x=\"\(left)\" y=\"\(h + 40)\" font-size=\"11\">\(escape(title)) band \(escape(band.description)): samples per bin (y), activation (x)</text></svg>"
        return svg
    }

    static func title(method: String, variant: String? = nil, neurons: String) -> String {
        switch method {
        case "am": return "Activation maximisation of \(neurons)"
        case "ppgn": return "PPGN samples of \(neurons)"
        default: return variant == "paper" ? "Inverse set of \(neurons) (the paper's algorithm)" : "Inverse set of \(neurons)"
        }
    }

    /// Per band of a multi-band run: samples, fraction in the band, steps,
    /// diversity, and the closest activation of a band that got none.
    static func bandTable(_ folder: SampleFolder) -> String {
        let m = folder.manifest
        var out = "<table class=\"fig bands\"><tr><th>band</th><th>samples</th><th>in band</th><th>gradient steps</th><th>mean pairwise E distance</th><th>closest reached</th></tr>"
        for (b, bands) in m.bands.enumerated() {
            let rows = m.samples.indices.filter { m.samples[$0].band == b }
            let inBand = rows.filter { zip(m.samples[$0].activations, bands).allSatisfy { $1.contains($0) } }.count
            let diversity = rows.count > 1 ? number(Metrics.meanPairwiseDistance(rows.map { folder.embeddings[$0] })) : "–"
            let closest = (m.closest.flatMap { b < $0.count ? $0[b] : nil } ?? []).map { short($0, digits: 4) }.joined(separator: ", ")
            out += "<tr><td>\(b + 1): \(escape(bands.map(\.description).joined(separator: " ")))</td><td>\(rows.count)</td>"
            out += "<td>\(rows.isEmpty ? "–" : percent(Double(inBand) / Double(rows.count)))</td><td>\(b < m.steps.count ? String(m.steps[b]) : "–")</td>"
            out += "<td>\(diversity)</td><td>\(rows.isEmpty ? escape(closest) : "")</td></tr>"
        }
        return out + "</table>"
    }

    /// An argument as a POSIX shell would need it written.
    public static func shellQuoted(_ a: String) -> String {
        let plain = a.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=,@%+".contains($0) }
        return !a.isEmpty && plain ? a : "'" + a.replacingOccurrences(of: "'", with: "'\\''") + "'"
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
            // One row per constrained neuron (its own band's thirds).
            row((q.thirds.count > 1 ? "thirds of neuron \(k + 1)'s band" : "thirds of the band") + " (low / mid / high)", t.map { percent($0) }.joined(separator: " / "),
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
        let st = m.settings
        let heading = escape(title(method: st.method, variant: st.variant, neurons: named))
        var out = "<!doctype html><html><head><meta charset=\"utf-8\"><title>\(heading)</title>"
        out += "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}td,th{padding:3px 9px;text-align:left}"
        out += ".fig td:nth-child(n+2){text-align:right}.grid{display:flex;flex-wrap:wrap;gap:6px}"
        out += ".cell{font-size:11px;text-align:center;border:1px solid #ddd;padding:3px}.cell img{width:56px;height:56px;image-rendering:pixelated}"
        out += ".warning{color:#a00;border:2px solid #a00;padding:6px}code{background:#f3f3f3;padding:1px 4px}</style></head><body>"
        out += "<h1>\(heading)</h1>"
        let weights = m.weights ?? []
        for w in weights where w.random {
            let what = w.file.isEmpty ? "has no weights file: its weights were drawn from fillers" : "<code>\(escape(w.file))</code> holds random weights (written by <code>inverse-set init</code>, or filled with --allow-missing-weights)"
            out += "<p class=\"warning\"><b>Random weights:</b> the \(escape(w.net)) \(what). These samples say nothing about a trained network.</p>"
        }
        out += "<p>method <b>\(escape(st.method))</b>\(st.variant.map { ", variant <b>\(escape($0))</b>" } ?? ""), n = \(m.n) per band, K = \(st.k), seed \(st.seed), max steps \(st.maxSteps), pipeline <code>\(escape(st.pipeline))</code></p>"
        out += "<h2>How it was made</h2><p>\(folder.totalSteps) gradient steps and \(String(format: "%.1f", folder.totalSeconds)) s over \(m.segments.count) segment(s) (each invocation of the command):</p><ul>"
        for seg in m.segments {
            let build = [seg.tool, seg.commit.map { "commit \($0)" }].compactMap { $0 }.joined(separator: ", ")
            out += "<li><code>\(escape(seg.command.map(shellQuoted).joined(separator: " ")))</code> — started \(escape(seg.started)), \(seg.steps) steps, \(String(format: "%.1f", seg.seconds)) s, \(seg.accepted) samples\(build.isEmpty ? "" : "; " + escape(build))</li>"
        }
        out += "</ul>"
        if !weights.isEmpty {
            out += "<table class=\"weights\"><tr><th>net</th><th>weights file</th><th>sha256</th></tr>"
            for w in weights {
                out += "<tr><td>\(escape(w.net))</td><td><code>\(escape(w.file.isEmpty ? "(none: fillers)" : w.file))</code>\(w.random ? " <b style=\"color:#a00\">random</b>" : "")</td><td><code>\(escape(w.sha256))</code></td></tr>"
            }
            out += "</table>"
        }
        for note in context.notes { out += "<p style=\"color:#a00\"><b>Note:</b> \(escape(note))</p>" }
        out += "<h2>Samples</h2>"
        if FileManager.default.fileExists(atPath: folder.dir + "/sheet.png") {
            out += "<img src=\"sheet.png\" style=\"max-width:100%\">"
        } else {
            out += "<p class=\"warning\">No sample was accepted, so there is no sheet; the histograms below mark the closest activation reached.</p>"
        }
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
        if m.bands.count > 1 { out += bandTable(folder) }
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
                let closest = recs.isEmpty ? (m.closest.flatMap { b < $0.count ? $0[b] : nil }.flatMap { k < $0.count ? $0[k] : nil }) : nil
                out += histogram(recs.map { $0.activations[k] }, band: bands[k], title: "band \(b + 1), " + title, closest: closest)
            }
        }
        out += "</body></html>\n"
        return out
    }
}
