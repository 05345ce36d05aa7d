import Foundation
import GraphIR
import Runtime

/// A float64 re-computation of a built net, for judging float32 results
/// (ours and real Caffe's) against the exact value on deep nets, where
/// float32 rounding alone moves a gradient by 1e-3 relative.
///
/// Plain loops in double precision, one short forward and backward rule per
/// layer type, reading the same parameters and weights as the net (its
/// shapes too, so Reshape and Flatten are copies). Input gradients only (no
/// parameter gradients). Layer types without a rule here throw
/// `Float64Reference.Unsupported`, and the caller skips the float64 check.
///
///     let ref = try Float64Reference(net)
///     let values = try ref.forward(["data": x])               // every value, in double
///     let grads = try ref.backward(values, seeds: [fc8: dfc8]) // dJ/d(value) for the inputs
public struct Float64Reference {
    public struct Unsupported: Error, CustomStringConvertible {
        public let type: String
        public var description: String { "no float64 reference for layer type '\(type)'" }
    }

    public static let supportedTypes: Set<String> = [
        "Input", "Convolution", "Deconvolution", "InnerProduct", "ReLU", "PReLU", "Sigmoid", "TanH", "AbsVal", "ELU",
        "Power", "Pooling", "LRN", "Softmax", "Log", "Dropout", "Split", "Flatten", "Reshape", "Eltwise", "Concat",
        "BatchNorm", "Scale", "Bias",
    ]

    let net: Net
    let params: [[[Double]]]

    public init(_ net: Net) throws {
        for n in net.graph.nodes where !Self.supportedTypes.contains(n.type) { throw Unsupported(type: n.type) }
        self.net = net
        params = net.layers.map { $0.parameters.map { $0.array.map(Double.init) } }
    }

    /// Every value of the net after a forward pass from `feeds` (by input blob name).
    public func forward(_ feeds: [String: Tensor]) throws -> [[Double]] {
        let g = net.graph
        var v = [[Double]](repeating: [], count: g.values.count)
        for input in g.inputs {
            guard let t = feeds[g.values[input.index].blob] else { throw Unsupported(type: "missing feed") }
            v[input.index] = t.array.map(Double.init)
        }
        for (i, node) in g.nodes.enumerated() where node.type != "Input" {
            let xs = node.inputs.map { v[$0.index] }
            let outs = try forwardNode(i, xs)
            for (o, y) in zip(node.outputs, outs) { v[o.index] = y }
        }
        return v
    }

    /// dJ/d(value) for every value, from seeds dJ/d(seed value); fan-out sums.
    public func backward(_ values: [[Double]], seeds: [ValueID: [Double]]) throws -> [[Double]] {
        let g = net.graph
        var d = values.map { [Double](repeating: 0, count: $0.count) }
        for (v, s) in seeds { for k in s.indices { d[v.index][k] += s[k] } }
        for i in stride(from: g.nodes.count - 1, through: 0, by: -1) {
            let node = g.nodes[i]
            guard node.type != "Input" else { continue }
            let dys = node.outputs.map { d[$0.index] }
            guard dys.contains(where: { $0.contains { $0 != 0 } }) else { continue }
            let dxs = try backwardNode(i, node.inputs.map { values[$0.index] }, node.outputs.map { values[$0.index] }, dys)
            for (k, v) in node.inputs.enumerated() where k < dxs.count {
                if k < node.propagateDown.count && !node.propagateDown[k] { continue }
                for e in dxs[k].indices { d[v.index][e] += dxs[k][e] }
            }
        }
        return d
    }

    // MARK: - Shapes and parameters

    private func inShape(_ i: Int, _ k: Int = 0) -> Shape { net.shapes[net.graph.nodes[i].inputs[k].index] }
    private func outShape(_ i: Int, _ k: Int = 0) -> Shape { net.shapes[net.graph.nodes[i].outputs[k].index] }
    private func p(_ i: Int, _ name: String) -> ParamMessage { net.graph.nodes[i].params.message(name) }

    /// (outer, channels along `axis`, inner) of a shape.
    private func split(_ s: Shape, axis: Int) -> (Int, Int, Int) {
        let a = s.canonicalAxis(axis) ?? 1
        return (s.count(from: 0, to: a), s[a], s.count(from: a + 1))
    }

    /// 2-d window geometry of Convolution/Deconvolution (kernel, stride, pad, dilation, group).
    private struct ConvGeometry { var kh, kw, sh, sw, ph, pw, dh, dw, group: Int }
    private func convGeometry(_ i: Int) throws -> ConvGeometry {
        let c = p(i, "convolution_param")
        func pair(_ rep: String, _ h: String, _ w: String, _ def: Int) throws -> (Int, Int) {
            if c.has(h) || c.has(w) { return (try c.int(h, default: def), try c.int(w, default: def)) }
            let v = try c.ints(rep)
            return v.isEmpty ? (def, def) : (v[0], v.count > 1 ? v[1] : v[0])
        }
        let k = try pair("kernel_size", "kernel_h", "kernel_w", 1)
        let s = try pair("stride", "stride_h", "stride_w", 1)
        let pd = try pair("pad", "pad_h", "pad_w", 0)
        let dl = try c.ints("dilation")
        return ConvGeometry(kh: k.0, kw: k.1, sh: s.0, sw: s.1, ph: pd.0, pw: pd.1,
                            dh: dl.first ?? 1, dw: dl.count > 1 ? dl[1] : (dl.first ?? 1), group: try c.int("group", default: 1))
    }

    /// Calls body(bigIndex, smallIndex, weightIndex) for every tap of a
    /// correlation between a "big" side (a convolution's input, a
    /// deconvolution's output) of shape (N, Cb, Hb, Wb) and a "small" side
    /// (N, Cs, Hs, Ws), weights (Cs, Cb/group, kh, kw).
    private func forEachTap(big: Shape, small: Shape, _ gm: ConvGeometry, _ body: (Int, Int, Int) -> Void) {
        let (n, cb, hb, wb) = (big[0], big[1], big[2], big[3])
        let (cs, hs, ws) = (small[1], small[2], small[3])
        let cbg = cb / gm.group, csg = cs / gm.group
        for b in 0..<n { for gr in 0..<gm.group { for o in 0..<csg { for c in 0..<cbg {
            let oc = gr * csg + o, ic = gr * cbg + c
            for ky in 0..<gm.kh { for kx in 0..<gm.kw {
                let wi = ((oc * cbg + c) * gm.kh + ky) * gm.kw + kx
                for oy in 0..<hs {
                    let iy = oy * gm.sh - gm.ph + ky * gm.dh
                    guard iy >= 0 && iy < hb else { continue }
                    for ox in 0..<ws {
                        let ix = ox * gm.sw - gm.pw + kx * gm.dw
                        guard ix >= 0 && ix < wb else { continue }
                        body(((b * cb + ic) * hb + iy) * wb + ix, ((b * cs + oc) * hs + oy) * ws + ox, wi)
                    }
                }
            } }
        } } } }
    }

    /// Pooling windows: calls body(outputIndex, [input indices], divisor) per output.
    private func forEachWindow(_ i: Int, _ body: (Int, [Int], Double) -> Void) throws {
        let pp = p(i, "pooling_param")
        let s = inShape(i), o = outShape(i)
        let (h, w, oh, ow) = (s[2], s[3], o[2], o[3])
        let global = try pp.bool("global_pooling", default: false)
        func pair(_ rep: String, _ a: String, _ b: String, _ def: Int) throws -> (Int, Int) {
            if pp.has(a) { return (try pp.int(a, default: def), try pp.int(b, default: def)) }
            let v = try pp.int(rep, default: def)
            return (v, v)
        }
        let k = global ? (h, w) : try pair("kernel_size", "kernel_h", "kernel_w", 1)
        let st = global ? (1, 1) : try pair("stride", "stride_h", "stride_w", 1)
        let pd = global ? (0, 0) : try pair("pad", "pad_h", "pad_w", 0)
        for pl in 0..<(s[0] * s[1]) { for py in 0..<oh { for px in 0..<ow {
            let hs = py * st.0 - pd.0, ws = px * st.1 - pd.1
            let he = min(hs + k.0, h + pd.0), we = min(ws + k.1, w + pd.1)
            var idx: [Int] = []
            for y in max(hs, 0)..<max(max(hs, 0), min(he, h)) {
                for x in max(ws, 0)..<max(max(ws, 0), min(we, w)) { idx.append((pl * h + y) * w + x) }
            }
            body((pl * oh + py) * ow + px, idx, Double((he - hs) * (we - ws)))
        } } }
    }

    // MARK: - Forward rules

    private func forwardNode(_ i: Int, _ xs: [[Double]]) throws -> [[Double]] {
        let node = net.graph.nodes[i], type = node.type
        let x = xs.first ?? []
        let w = params[i]
        switch type {
        case "Convolution", "Deconvolution":
            let gm = try convGeometry(i)
            var y = [Double](repeating: 0, count: outShape(i).count)
            if type == "Convolution" {
                forEachTap(big: inShape(i), small: outShape(i), gm) { bi, si, wi in y[si] += w[0][wi] * x[bi] }
            } else {
                forEachTap(big: outShape(i), small: inShape(i), gm) { bi, si, wi in y[bi] += w[0][wi] * x[si] }
            }
            if w.count > 1 {
                let o = outShape(i), plane = o[2] * o[3]
                for k in y.indices { y[k] += w[1][(k / plane) % o[1]] }
            }
            return [y]
        case "InnerProduct":
            let ip = p(i, "inner_product_param")
            let (m, kk, n, t) = try ipDims(i)
            let bias = try ip.bool("bias_term", default: true) && w.count > 1
            var y = [Double](repeating: 0, count: m * n)
            for r in 0..<m { for c in 0..<n {
                var s = bias ? w[1][c] : 0
                for j in 0..<kk { s += x[r * kk + j] * (t ? w[0][j * n + c] : w[0][c * kk + j]) }
                y[r * n + c] = s
            } }
            return [y]
        case "ReLU":
            let slope = try p(i, "relu_param").double("negative_slope", default: 0)
            return [x.map { $0 > 0 ? $0 : $0 * slope }]
        case "PReLU":
            let (_, c, inner) = split(inShape(i), axis: 1)
            return [x.indices.map { k in x[k] > 0 ? x[k] : x[k] * w[0][w[0].count == 1 ? 0 : (k / inner) % c] }]
        case "Sigmoid": return [x.map { 1 / (1 + exp(-$0)) }]
        case "TanH": return [x.map { tanh($0) }]
        case "AbsVal": return [x.map { abs($0) }]
        case "ELU":
            let a = try p(i, "elu_param").double("alpha", default: 1)
            return [x.map { $0 > 0 ? $0 : a * (exp($0) - 1) }]
        case "Power":
            let pw = p(i, "power_param")
            let (e, sc, sh) = (try pw.double("power", default: 1), try pw.double("scale", default: 1), try pw.double("shift", default: 0))
            return [x.map { pow(sh + sc * $0, e) }]
        case "Pooling":
            let method = try p(i, "pooling_param").enumName("pool", default: "MAX")
            guard method == "MAX" || method == "AVE" else { throw Unsupported(type: "Pooling (\(method))") }
            var y = [Double](repeating: 0, count: outShape(i).count)
            try forEachWindow(i) { o, idx, div in
                y[o] = method == "MAX" ? (idx.map { x[$0] }.max() ?? -.infinity) : idx.reduce(0) { $0 + x[$1] } / div
            }
            return [y]
        case "LRN":
            return [try lrn(i, x).1]
        case "Softmax":
            let (outer, c, inner) = split(inShape(i), axis: try p(i, "softmax_param").int("axis", default: 1))
            var y = x
            for o in 0..<outer { for j in 0..<inner {
                let idx = (0..<c).map { (o * c + $0) * inner + j }
                let m = idx.map { x[$0] }.max() ?? 0
                let s = idx.reduce(0) { $0 + exp(x[$1] - m) }
                for k in idx { y[k] = exp(x[k] - m) / s }
            } }
            return [y]
        case "Log":
            let lp = p(i, "log_param")
            let (b, sc, sh) = (try lp.double("base", default: -1), try lp.double("scale", default: 1), try lp.double("shift", default: 0))
            let ln = b == -1 ? 1 : Foundation.log(b)
            return [x.map { Foundation.log(sh + sc * $0) / ln }]
        case "Dropout", "Flatten", "Reshape": return [x]
        case "Split": return node.outputs.map { _ in x }
        case "Eltwise":
            let ep = p(i, "eltwise_param")
            let op = try ep.enumName("operation", default: "SUM"), coeff = try ep.floats("coeff")
            var y = x.indices.map { _ in op == "PROD" ? 1.0 : (op == "MAX" ? -Double.infinity : 0) }
            for (k, a) in xs.enumerated() {
                let cf = k < coeff.count ? Double(coeff[k]) : 1
                for e in y.indices { y[e] = op == "PROD" ? y[e] * a[e] : op == "MAX" ? max(y[e], a[e]) : y[e] + cf * a[e] }
            }
            return [y]
        case "Concat":
            let axis = try concatAxis(i)
            let (outer, _, inner) = split(outShape(i), axis: axis)
            var y: [Double] = []
            for o in 0..<outer {
                for (k, a) in xs.enumerated() {
                    let c = split(inShape(i, k), axis: axis).1
                    y += a[(o * c * inner)..<((o + 1) * c * inner)]
                }
            }
            return [y]
        case "BatchNorm":
            let (mean, variance) = batchNormStats(i)
            let eps = try p(i, "batch_norm_param").double("eps", default: 1e-5)
            let (_, c, inner) = split(inShape(i), axis: 1)
            return [x.indices.map { k in let ch = (k / inner) % c; return (x[k] - mean[ch]) / (variance[ch] + eps).squareRoot() }]
        case "Scale", "Bias":
            let (_, c, inner) = split(inShape(i), axis: 1)
            guard !w.isEmpty, w[0].count == c else { throw Unsupported(type: type + " (not per channel)") }
            return [x.indices.map { k in
                let ch = (k / inner) % c
                return type == "Bias" ? x[k] + w[0][ch] : x[k] * w[0][ch] + (w.count > 1 ? w[1][ch] : 0)
            }]
        default:
            throw Unsupported(type: type)
        }
    }

    /// Concat's axis (`concat_dim` is the legacy name).
    private func concatAxis(_ i: Int) throws -> Int {
        let cp = p(i, "concat_param")
        return cp.has("concat_dim") ? try cp.int("concat_dim", default: 1) : try cp.int("axis", default: 1)
    }

    /// (M, K, N, transpose) of an InnerProduct: x as M x K, W as N x K (K x N transposed).
    private func ipDims(_ i: Int) throws -> (Int, Int, Int, Bool) {
        let ip = p(i, "inner_product_param")
        let s = inShape(i)
        let axis = s.canonicalAxis(try ip.int("axis", default: 1)) ?? 1
        return (s.count(from: 0, to: axis), s.count(from: axis), try ip.int("num_output", default: 0),
                try ip.bool("transpose", default: false))
    }

    private func batchNormStats(_ i: Int) -> ([Double], [Double]) {
        let w = params[i]
        let factor = w[2][0] == 0 ? 0 : 1 / w[2][0]
        return (w[0].map { $0 * factor }, w[1].map { $0 * factor })
    }

    /// Cross-channel LRN: scale = k + alpha/size * sum of x^2 over the window; y = x * scale^-beta.
    private func lrn(_ i: Int, _ x: [Double]) throws -> ([Double], [Double]) {
        let lp = p(i, "lrn_param")
        guard try lp.enumName("norm_region", default: "ACROSS_CHANNELS") == "ACROSS_CHANNELS" else { throw Unsupported(type: "LRN (WITHIN_CHANNEL)") }
        let size = try lp.int("local_size", default: 5)
        let (alpha, beta, k) = (try lp.double("alpha", default: 1), try lp.double("beta", default: 0.75), try lp.double("k", default: 1))
        let (outer, c, inner) = split(inShape(i), axis: 1)
        let pre = (size - 1) / 2
        var scale = x
        for o in 0..<outer { for ch in 0..<c { for j in 0..<inner {
            var s = 0.0
            for q in max(0, ch - pre)...min(c - 1, ch - pre + size - 1) { let v = x[(o * c + q) * inner + j]; s += v * v }
            scale[(o * c + ch) * inner + j] = k + alpha / Double(size) * s
        } } }
        return (scale, x.indices.map { x[$0] * pow(scale[$0], -beta) })
    }

    // MARK: - Backward rules (input gradients)

    private func backwardNode(_ i: Int, _ xs: [[Double]], _ ys: [[Double]], _ dys: [[Double]]) throws -> [[Double]] {
        let node = net.graph.nodes[i], type = node.type
        let x = xs.first ?? [], y = ys.first ?? [], dy = dys.first ?? []
        let w = params[i]
        switch type {
        case "Convolution", "Deconvolution":
            let gm = try convGeometry(i)
            var dx = [Double](repeating: 0, count: x.count)
            if type == "Convolution" {
                forEachTap(big: inShape(i), small: outShape(i), gm) { bi, si, wi in dx[bi] += w[0][wi] * dy[si] }
            } else {
                forEachTap(big: outShape(i), small: inShape(i), gm) { bi, si, wi in dx[si] += w[0][wi] * dy[bi] }
            }
            return [dx]
        case "InnerProduct":
            let (m, kk, n, t) = try ipDims(i)
            var dx = [Double](repeating: 0, count: m * kk)
            for r in 0..<m { for j in 0..<kk {
                var s = 0.0
                for c in 0..<n { s += dy[r * n + c] * (t ? w[0][j * n + c] : w[0][c * kk + j]) }
                dx[r * kk + j] = s
            } }
            return [dx]
        case "ReLU":
            let slope = try p(i, "relu_param").double("negative_slope", default: 0)
            return [x.indices.map { dy[$0] * (x[$0] > 0 ? 1 : slope) }]
        case "PReLU":
            let (_, c, inner) = split(inShape(i), axis: 1)
            return [x.indices.map { k in dy[k] * (x[k] > 0 ? 1 : w[0][w[0].count == 1 ? 0 : (k / inner) % c]) }]
        case "Sigmoid": return [y.indices.map { dy[$0] * y[$0] * (1 - y[$0]) }]
        case "TanH": return [y.indices.map { dy[$0] * (1 - y[$0] * y[$0]) }]
        case "AbsVal": return [x.indices.map { dy[$0] * (x[$0] > 0 ? 1 : x[$0] < 0 ? -1 : 0) }]
        case "ELU":
            let a = try p(i, "elu_param").double("alpha", default: 1)
            return [x.indices.map { dy[$0] * (x[$0] > 0 ? 1 : y[$0] + a) }]
        case "Power":
            let pw = p(i, "power_param")
            let (e, sc, sh) = (try pw.double("power", default: 1), try pw.double("scale", default: 1), try pw.double("shift", default: 0))
            return [x.indices.map { dy[$0] * e * sc * pow(sh + sc * x[$0], e - 1) }]
        case "Pooling":
            let maxPool = try p(i, "pooling_param").enumName("pool", default: "MAX") == "MAX"
            var dx = [Double](repeating: 0, count: x.count)
            try forEachWindow(i) { o, idx, div in
                if maxPool {
                    var best = -Double.infinity, arg = -1
                    for k in idx where x[k] > best { best = x[k]; arg = k }   // first maximum, as Caffe
                    if arg >= 0 { dx[arg] += dy[o] }
                } else {
                    for k in idx { dx[k] += dy[o] / div }
                }
            }
            return [dx]
        case "LRN":
            let lp = p(i, "lrn_param")
            let size = try lp.int("local_size", default: 5)
            let (alpha, beta) = (try lp.double("alpha", default: 1), try lp.double("beta", default: 0.75))
            let (scale, _) = try lrn(i, x)
            let (outer, c, inner) = split(inShape(i), axis: 1)
            let pre = (size - 1) / 2
            var dx = x
            for o in 0..<outer { for ch in 0..<c { for j in 0..<inner {
                let k = (o * c + ch) * inner + j
                var s = 0.0
                // Channels q whose window holds ch: q - pre <= ch <= q - pre + size - 1.
                for q in max(0, ch + pre - size + 1)...min(c - 1, ch + pre) {
                    let kq = (o * c + q) * inner + j
                    s += dy[kq] * y[kq] / scale[kq]
                }
                dx[k] = dy[k] * pow(scale[k], -beta) - 2 * alpha * beta / Double(size) * x[k] * s
            } } }
            return [dx]
        case "Softmax":
            let (outer, c, inner) = split(inShape(i), axis: try p(i, "softmax_param").int("axis", default: 1))
            var dx = dy
            for o in 0..<outer { for j in 0..<inner {
                let idx = (0..<c).map { (o * c + $0) * inner + j }
                let dot = idx.reduce(0) { $0 + dy[$1] * y[$1] }
                for k in idx { dx[k] = y[k] * (dy[k] - dot) }
            } }
            return [dx]
        case "Log":
            let lp = p(i, "log_param")
            let (b, sc, sh) = (try lp.double("base", default: -1), try lp.double("scale", default: 1), try lp.double("shift", default: 0))
            let ln = b == -1 ? 1 : Foundation.log(b)
            return [x.indices.map { dy[$0] * sc / ((sh + sc * x[$0]) * ln) }]
        case "Dropout", "Flatten", "Reshape": return [dy]
        case "Split":
            return [x.indices.map { k in dys.reduce(0) { $0 + $1[k] } }]
        case "Eltwise":
            let ep = p(i, "eltwise_param")
            let op = try ep.enumName("operation", default: "SUM"), coeff = try ep.floats("coeff")
            return xs.enumerated().map { k, a in
                a.indices.map { e in
                    switch op {
                    case "PROD": return dy[e] * xs.enumerated().reduce(1.0) { $1.offset == k ? $0 : $0 * $1.element[e] }
                    case "MAX":
                        let first = xs.firstIndex { $0[e] == y[e] }
                        return first == k ? dy[e] : 0
                    default: return dy[e] * (k < coeff.count ? Double(coeff[k]) : 1)
                    }
                }
            }
        case "Concat":
            let axis = try concatAxis(i)
            let (outer, _, inner) = split(outShape(i), axis: axis)
            var dxs = xs.map { [Double](repeating: 0, count: $0.count) }
            var at = 0
            for o in 0..<outer {
                for k in xs.indices {
                    let c = split(inShape(i, k), axis: axis).1
                    for e in 0..<(c * inner) { dxs[k][o * c * inner + e] = dy[at + e] }
                    at += c * inner
                }
            }
            return dxs
        case "BatchNorm":
            let (_, variance) = batchNormStats(i)
            let eps = try p(i, "batch_norm_param").double("eps", default: 1e-5)
            let (_, c, inner) = split(inShape(i), axis: 1)
            return [x.indices.map { k in dy[k] / (variance[(k / inner) % c] + eps).squareRoot() }]
        case "Scale":
            let (_, c, inner) = split(inShape(i), axis: 1)
            return [x.indices.map { dy[$0] * w[0][($0 / inner) % c] }]
        case "Bias": return [dy]
        default:
            throw Unsupported(type: type)
        }
    }
}
