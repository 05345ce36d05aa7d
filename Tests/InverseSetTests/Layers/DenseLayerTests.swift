import Foundation
import Testing
import CaffeImport
import GraphIR
import Layers
import Runtime
import TestSupport

/// Dense layers (Convolution, Deconvolution, InnerProduct, Pooling, LRN):
/// finite-difference gradient checks, forward and backward against plain
/// nested-loop references (including the batched-GEMM path with a partial
/// last batch), Caffe's shape rules and parameter validation, and the
/// real-Caffe fixtures of the group.
struct DenseLayerTests {
    // MARK: - Helpers

    /// Distinct values (a shuffled ramp with step 0.05), so max pooling has
    /// no near-ties for the finite differences to cross.
    func distinctTensor(_ shape: Shape, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        var v = (0..<shape.count).map { Float($0) * 0.05 - Float(shape.count) * 0.025 }
        v.shuffle(using: &rng)
        return Tensor(shape: shape, values: v)
    }

    /// One layer forward and backward with dJ/dy = `dy` (random when nil):
    /// output, input gradients, parameters and parameter gradients.
    struct Run {
        var out: Tensor, dy: Tensor, dx: [Tensor], params: [Tensor], pgrads: [Tensor]
    }
    func run(_ text: String, _ inputs: [Tensor], seed: UInt64 = 1, dySeed: UInt64 = 77,
             convolution: ConvolutionAlgorithm = .automatic) throws -> Run {
        let net = try singleLayerNet(text, inputShapes: inputs.map(\.shape), seed: seed)
        net.context.convolution = convolution
        var feeds: [String: Tensor] = [:]
        for (n, t) in zip(net.inputNames, inputs) { feeds[n] = t }
        try net.forward(feeds)
        let outID = try net.resolve("out")
        let out = net.tensor(outID)!.copy()
        let dy = randomTensor(out.shape, seed: dySeed)
        net.zeroParamGrads()
        let grads = try net.backward(seeds: [outID: dy], gradientsFor: net.graph.inputs, paramGrads: true)
        return Run(out: out, dy: dy, dx: net.graph.inputs.map { grads[$0]! },
                   params: net.layers.last!.parameters, pgrads: net.paramGrads.last ?? [])
    }

    /// Each case, with each convolution algorithm, against the nested-loop
    /// reference `naive`: y, dx, dW and db within 1e-5.
    func expectMatchesNaive(_ type: String, _ cases: [(Shape, ConvCfg)], seed: UInt64,
                            _ naive: (Tensor, Tensor, Tensor?, ConvCfg, Tensor?) -> (y: [Float], dx: [Float], dw: [Float], db: [Float]),
                            sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        for (i, (shape, cfg)) in cases.enumerated() {
            let x = randomTensor(shape, seed: seed + UInt64(i))
            for algorithm in ConvolutionAlgorithm.allCases {
                let r = try run("type: \"\(type)\" " + cfg.text, [x], seed: UInt64(i + 1), convolution: algorithm)
                let ref = naive(x, r.params[0], cfg.bias ? r.params[1] : nil, cfg, r.dy)
                let what = "\(type) \(i) \(algorithm)"
                expectClose(r.out, ref.y, "\(what) forward", tol: 1e-5, sourceLocation: sourceLocation)
                expectClose(r.dx[0], ref.dx, "\(what) dx", tol: 1e-5, sourceLocation: sourceLocation)
                expectClose(r.pgrads[0], ref.dw, "\(what) dW", tol: 1e-5, sourceLocation: sourceLocation)
                if cfg.bias { expectClose(r.pgrads[1], ref.db, "\(what) db", tol: 1e-5, sourceLocation: sourceLocation) }
            }
        }
    }

    // MARK: - Naive references

    struct ConvCfg {
        var cout: Int, group = 1, kh: Int, kw: Int, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, bias = true
        var text: String {
            "convolution_param { num_output: \(cout) group: \(group) kernel_h: \(kh) kernel_w: \(kw) stride_h: \(sh) stride_w: \(sw) pad_h: \(ph) pad_w: \(pw) dilation: \(dh) dilation: \(dw) bias_term: \(bias) }"
        }
    }

    /// Convolution by its definition; with `dy`, also dx, dW, db.
    func naiveConv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ c: ConvCfg, dy: Tensor? = nil)
        -> (y: [Float], dx: [Float], dw: [Float], db: [Float]) {
        let (n, ci, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * c.ph - (c.dh * (c.kh - 1) + 1)) / c.sh + 1
        let ow = (wd + 2 * c.pw - (c.dw * (c.kw - 1) + 1)) / c.sw + 1
        let cg = ci / c.group, og = c.cout / c.group
        var y = [Float](repeating: 0, count: n * c.cout * oh * ow)
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: c.cout)
        for img in 0..<n {
            for co in 0..<c.cout {
                let g = co / og
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let oi = ((img * c.cout + co) * oh + oy) * ow + ox
                        var s: Double = b.map { Double($0[co]) } ?? 0
                        let d = Double(dy?[oi] ?? 0)
                        db[co] += d
                        for cl in 0..<cg {
                            for ky in 0..<c.kh {
                                for kx in 0..<c.kw {
                                    let iy = oy * c.sh - c.ph + ky * c.dh, ix = ox * c.sw - c.pw + kx * c.dw
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    let xi = ((img * ci + g * cg + cl) * h + iy) * wd + ix
                                    let wi = ((co * cg + cl) * c.kh + ky) * c.kw + kx
                                    s += Double(x[xi]) * Double(w[wi])
                                    if dy != nil { dx[xi] += d * Double(w[wi]); dw[wi] += d * Double(x[xi]) }
                                }
                            }
                        }
                        y[oi] = Float(s)
                    }
                }
            }
        }
        return (y, dx.map(Float.init), dw.map(Float.init), db.map(Float.init))
    }

    /// Deconvolution by its definition (each input pixel scatters W into the
    /// output); with `dy`, also dx, dW, db.
    func naiveDeconv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ c: ConvCfg, dy: Tensor? = nil)
        -> (y: [Float], dx: [Float], dw: [Float], db: [Float]) {
        let (n, ci, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = c.sh * (h - 1) + c.dh * (c.kh - 1) + 1 - 2 * c.ph
        let ow = c.sw * (wd - 1) + c.dw * (c.kw - 1) + 1 - 2 * c.pw
        let cg = ci / c.group, og = c.cout / c.group
        var y = [Double](repeating: 0, count: n * c.cout * oh * ow)
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: c.cout)
        for img in 0..<n {
            for cin in 0..<ci {
                let g = cin / cg
                for iy in 0..<h {
                    for ix in 0..<wd {
                        let xi = ((img * ci + cin) * h + iy) * wd + ix
                        for col in 0..<og {
                            let co = g * og + col
                            for ky in 0..<c.kh {
                                for kx in 0..<c.kw {
                                    let oy = iy * c.sh - c.ph + ky * c.dh, ox = ix * c.sw - c.pw + kx * c.dw
                                    guard oy >= 0, oy < oh, ox >= 0, ox < ow else { continue }
                                    let oi = ((img * c.cout + co) * oh + oy) * ow + ox
                                    let wi = ((cin * og + col) * c.kh + ky) * c.kw + kx
                                    y[oi] += Double(x[xi]) * Double(w[wi])
                                    if let dy {
                                        dx[xi] += Double(dy[oi]) * Double(w[wi]); dw[wi] += Double(dy[oi]) * Double(x[xi])
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for img in 0..<n {
            for co in 0..<c.cout {
                for p in 0..<(oh * ow) {
                    let oi = (img * c.cout + co) * oh * ow + p
                    if let b { y[oi] += Double(b[co]) }
                    if let dy { db[co] += Double(dy[oi]) }
                }
            }
        }
        return (y.map(Float.init), dx.map(Float.init), dw.map(Float.init), db.map(Float.init))
    }

    /// Pooling by Caffe's definition (kernel, stride, pad, ceil with the
    /// last-window rule); MAX or AVE.
    func naivePool(_ x: Tensor, max isMax: Bool, k: (Int, Int), s: (Int, Int), p: (Int, Int), ceil: Bool = true)
        -> (Shape, [Float], argmax: [Int]) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        func size(_ len: Int, _ k: Int, _ s: Int, _ p: Int) -> Int {
            let q = Double(len + 2 * p - k) / Double(s)
            var o = Int(ceil ? q.rounded(.up) : q.rounded(.down)) + 1
            if p > 0 && (o - 1) * s >= len + p { o -= 1 }
            return o
        }
        let oh = size(h, k.0, s.0, p.0), ow = size(w, k.1, s.1, p.1)
        var y: [Float] = [], args: [Int] = []
        for pl in 0..<(n * c) {
            for py in 0..<oh {
                for px in 0..<ow {
                    let hs = py * s.0 - p.0, ws = px * s.1 - p.1
                    let he = min(hs + k.0, h + p.0), we = min(ws + k.1, w + p.1)
                    var best = -Float.infinity, sum: Float = 0, arg = -1
                    for yy in max(hs, 0)..<min(he, h) {
                        for xx in max(ws, 0)..<min(we, w) {
                            let i = (pl * h + yy) * w + xx
                            if x[i] > best { best = x[i]; arg = i }
                            sum += x[i]
                        }
                    }
                    y.append(isMax ? best : sum / Float((he - hs) * (we - ws)))
                    args.append(arg)
                }
            }
        }
        return (Shape([n, c, oh, ow]), y, args)
    }

    /// LRN by its formula (no sliding sums).
    func naiveLRN(_ x: Tensor, size: Int, alpha: Float, beta: Float, k: Float, within: Bool) -> [Float] {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let r = (size - 1) / 2
        var y = [Float](repeating: 0, count: x.count)
        for img in 0..<n {
            for ch in 0..<c {
                for yy in 0..<h {
                    for xx in 0..<w {
                        let i = ((img * c + ch) * h + yy) * w + xx
                        var s: Double = 0
                        if within {
                            for dy in -r...r {
                                for dx in -r...r {
                                    let a = yy + dy, b = xx + dx
                                    guard a >= 0, a < h, b >= 0, b < w else { continue }
                                    let v = Double(x[((img * c + ch) * h + a) * w + b]); s += v * v
                                }
                            }
                            let scale = 1 + Double(alpha) * s / Double(size * size)
                            y[i] = Float(Double(x[i]) * pow(scale, -Double(beta)))
                        } else {
                            for cc in max(0, ch - r)...min(c - 1, ch + r) {
                                let v = Double(x[((img * c + cc) * h + yy) * w + xx]); s += v * v
                            }
                            let scale = Double(k) + Double(alpha) / Double(size) * s
                            y[i] = Float(Double(x[i]) * pow(scale, -Double(beta)))
                        }
                    }
                }
            }
        }
        return y
    }

    // MARK: - Real Caffe fixtures

    static let fixtureCases = [
        "conv_basic", "conv_stride_pad", "conv_group", "conv_rect_nobias", "conv_dilation", "conv_caffenet_conv1",
        "conv_winograd",
        "conv_winograd5", "conv_winograd_s2",
        "deconv_k4s2p1", "deconv_k3s1p1", "deconv_group_nobias", "deconv_winograd", "deconv_winograd_s2",
        "ip_basic", "ip_2d", "ip_transpose", "ip_axis2",
        "lrn_across", "lrn_caffenet", "lrn_within",
        "pool_max_k3s2_ceil", "pool_max_k2s2", "pool_max_pad", "pool_ave_pad", "pool_global_ave",
    ]

    /// Each fixture with each convolution algorithm: the direct GEMM and
    /// Winograd (wherever the kernel allows it) must both match Caffe.
    @Test("Dense layers match real Caffe", arguments: fixtureCases, [ConvolutionAlgorithm.automatic, .direct, .winograd])
    func denseFixture(_ name: String, _ convolution: ConvolutionAlgorithm) throws {
        try CaffeFixtureTests().check(name, convolution: convolution)
    }

    // MARK: - Convolution

    @Test func convolutionGradients() throws {
        try expectGradients("type: \"Convolution\" convolution_param { num_output: 3 kernel_size: 3 }", [[2, 2, 5, 4]])
        try expectGradients("type: \"Convolution\" convolution_param { num_output: 4 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 group: 2 }",
                            [[2, 4, 5, 5]], seed: 2)
        try expectGradients("type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 3 dilation: 2 pad: 2 stride: 2 bias_term: false }",
                            [[1, 3, 6, 7]], seed: 3)
        // 1x1 fast path, grouped.
        try expectGradients("type: \"Convolution\" convolution_param { num_output: 4 kernel_size: 1 group: 2 }", [[2, 4, 3, 3]], seed: 4)
        // Winograd paths (>= 16 channels, >= 8x8 outputs): 3x3 (F(4x4, 3x3)
        // here, F(2x2, 3x3) on 8x8 and smaller), 5x5 (F(4x4, 5x5)) and a
        // stride-2 4x4 kernel through phases (F(3x3, 2x2)). Their
        // transforms scale intermediates by up to 25 (alpha 6 and 8), and that
        // float32 rounding of the objective, divided by a 1e-2 step,
        // exceeds 1e-3 of the gradient. The layer is linear in x and in W,
        // so central differences carry no truncation error at any step: a
        // step of 1 divides the rounding noise by 100. (The comparisons
        // with the double-precision reference above hold y and dx to 1e-5.)
        try expectGradients("type: \"Convolution\" convolution_param { num_output: 16 kernel_size: 3 pad: 1 }", [[1, 16, 8, 9]],
                            seed: 5, convolution: .winograd, stepsize: 1)
        try expectGradients("type: \"Convolution\" convolution_param { num_output: 16 kernel_size: 3 pad: 1 }", [[2, 16, 8, 8]],
                            seed: 8, convolution: .winograd, stepsize: 1)
        try expectGradients("type: \"Convolution\" convolution_param { num_output: 16 kernel_size: 5 pad: 2 }", [[1, 16, 8, 8]],
                            seed: 6, convolution: .winograd, stepsize: 1)
        try expectGradients("type: \"Convolution\" convolution_param { num_output: 16 kernel_size: 4 stride: 2 pad: 1 }", [[1, 16, 16, 17]],
                            seed: 7, convolution: .winograd, stepsize: 1)
        // A kernel padded to a whole number of strides (11x11 stride 4 as 16
        // phases of 3x3, like CaffeNet's conv1).
        try expectGradients("type: \"Convolution\" convolution_param { num_output: 16 kernel_size: 11 stride: 4 pad: 1 }", [[1, 3, 41, 41]],
                            seed: 9, convolution: .winograd, stepsize: 1)
    }

    @Test func convolutionTwoInputsShareWeights() throws {
        let text = "type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 2 }"
        try expectGradients(text, [[2, 2, 4, 4], [2, 2, 4, 4]], outputs: 2)
        // Caffe requires every input to have the first one's shape.
        expectError("layer 'test' (Convolution)", "all inputs must have the same shape") {
            _ = try singleLayerNet(text, inputShapes: [Shape([1, 2, 4, 4]), Shape([2, 2, 4, 4])], outputs: 2)
        }
    }

    @Test func convolutionForwardBackwardMatchNaive() throws {
        let cases: [(Shape, ConvCfg)] = [
            ([1, 3, 7, 8], ConvCfg(cout: 4, kh: 3, kw: 3)),
            ([3, 4, 9, 10], ConvCfg(cout: 6, group: 2, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),
            ([2, 2, 11, 9], ConvCfg(cout: 3, kh: 3, kw: 2, sh: 2, sw: 3, ph: 2, pw: 0, dh: 2, dw: 1, bias: false)),
            ([2, 6, 5, 4], ConvCfg(cout: 6, group: 3, kh: 1, kw: 1)),            // 1x1 identity path
            ([2, 4, 6, 6], ConvCfg(cout: 2, kh: 1, kw: 1, sh: 2, sw: 2)),        // 1x1 strided: im2col path
            ([1, 3, 35, 35], ConvCfg(cout: 4, kh: 11, kw: 11, sh: 4, sw: 4)),
            // 13x13 outputs: four images per GEMM, then a partial batch of
            // two; columns large enough to be split between threads.
            ([6, 16, 13, 13], ConvCfg(cout: 6, group: 2, kh: 3, kw: 3, ph: 1, pw: 1)),
            // Wide images: one per GEMM, im2col/col2im split by rows.
            ([2, 4, 100, 90], ConvCfg(cout: 4, group: 2, kh: 3, kw: 3, ph: 1, pw: 1)),
            ([2, 3, 101, 101], ConvCfg(cout: 2, kh: 5, kw: 5, sh: 3, sw: 2, ph: 1, pw: 2, dh: 2, dw: 1)),
            // 3x3 stride 1 with enough channels: Winograd F(2x2, 3x3) for y
            // and dx (odd and even output sizes, pads 0-2, groups).
            ([2, 16, 10, 9], ConvCfg(cout: 20, kh: 3, kw: 3, ph: 1, pw: 1)),
            ([3, 32, 11, 12], ConvCfg(cout: 32, group: 2, kh: 3, kw: 3, bias: false)),
            ([1, 16, 8, 9], ConvCfg(cout: 16, kh: 3, kw: 3, ph: 2, pw: 0)),
            // Other kernels a whole number of strides: Winograd F(4x4, 5x5)
            // (CaffeNet's conv2), F(2x2, 4x4), and stride 2 and 3 through
            // input phases (F(3x3, 2x2)); dx through output phases.
            ([2, 32, 13, 12], ConvCfg(cout: 32, group: 2, kh: 5, kw: 5, ph: 2, pw: 2)),
            ([1, 16, 11, 10], ConvCfg(cout: 24, kh: 5, kw: 5, ph: 0, pw: 4, bias: false)),
            // Many 8x8 images: the automatic choice is F(2x2, 5x5), forced
            // Winograd takes F(4x4, 5x5) (fewer multiplies, fewer columns).
            ([8, 16, 8, 8], ConvCfg(cout: 16, kh: 5, kw: 5, ph: 2, pw: 2)),
            ([10, 16, 8, 8], ConvCfg(cout: 16, kh: 3, kw: 3, ph: 1, pw: 1)),   // likewise F(2x2, 3x3), F(4x4, 3x3)
            ([2, 16, 10, 11], ConvCfg(cout: 16, kh: 4, kw: 4, ph: 1, pw: 2)),
            ([2, 16, 20, 19], ConvCfg(cout: 20, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),
            ([1, 32, 27, 26], ConvCfg(cout: 32, group: 2, kh: 6, kw: 6, sh: 3, sw: 3, ph: 2, pw: 0)),
            // Rows wide enough for the eight-at-a-time split into column phases.
            ([1, 16, 9, 45], ConvCfg(cout: 16, kh: 3, kw: 3, ph: 1, pw: 1)),
            ([1, 16, 8, 44], ConvCfg(cout: 16, kh: 5, kw: 5, ph: 2, pw: 1, bias: false)),
            // Outputs large enough for the larger tiles: F(4x4, 3x3) (odd
            // sizes, groups) and F(4x4, 2x2) per phase (stride 2).
            ([2, 16, 24, 23], ConvCfg(cout: 16, kh: 3, kw: 3, ph: 1, pw: 1)),
            ([2, 32, 26, 27], ConvCfg(cout: 32, group: 2, kh: 3, kw: 3, ph: 0, pw: 2, bias: false)),
            ([3, 16, 48, 47], ConvCfg(cout: 16, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),
            // Rows wide enough to split stride phases by shuffles (F(4x4, 2x2)).
            ([1, 16, 20, 83], ConvCfg(cout: 16, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),
            // Four tiles per tile row (CaffeNet's 13x13 conv3-5): the input
            // transform takes two tile rows per vector, the output transform
            // eight tiles across rows; an even and an odd number of tile rows.
            ([3, 16, 13, 13], ConvCfg(cout: 16, group: 2, kh: 3, kw: 3, ph: 1, pw: 1)),
            ([2, 16, 9, 16], ConvCfg(cout: 24, kh: 3, kw: 3, ph: 1, pw: 1, bias: false)),
            ([2, 16, 10, 8], ConvCfg(cout: 16, kh: 3, kw: 3, ph: 2, pw: 1)),
            // Kernels padded with zero taps to a whole number of strides:
            // CaffeNet's conv1 (11x11 stride 4: 16 phases of 3x3, the 3
            // channels give 48 GEMM rows), 3x3 and 7x7 stride 2.
            ([2, 3, 67, 67], ConvCfg(cout: 16, kh: 11, kw: 11, sh: 4, sw: 4)),
            ([2, 16, 21, 20], ConvCfg(cout: 16, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1)),
            ([1, 8, 40, 41], ConvCfg(cout: 16, kh: 7, kw: 7, sh: 2, sw: 2, ph: 3, pw: 2, bias: false)),
        ]
        try expectMatchesNaive("Convolution", cases, seed: 100, naiveConv)
    }

    @Test func convolutionShapesAndErrors() throws {
        let net = try singleLayerNet("type: \"Convolution\" convolution_param { num_output: 5 kernel_size: 3 kernel_size: 2 stride: 2 stride: 1 pad: 1 }",
                                     inputShapes: [Shape([2, 3, 9, 8])])
        #expect(try net.shape("out") == Shape([2, 5, 5, 9]))
        #expect(net.layers.last!.parameterShapes == [Shape([5, 3, 3, 2]), Shape([5])])
        let wantMACs: Int = 2 * 5 * 5 * 9 * 3 * 3 * 2   // N Cout OH OW (C/G) kh kw
        #expect(net.macs.last == wantMACs)
        let bad: [(String, Shape)] = [
            ("convolution_param { kernel_size: 3 }", [1, 2, 5, 5]),                                  // num_output 0
            ("convolution_param { num_output: 2 kernel_size: 3 kernel_h: 3 kernel_w: 3 }", [1, 2, 5, 5]),
            ("convolution_param { num_output: 2 }", [1, 2, 5, 5]),                                   // no kernel
            ("convolution_param { num_output: 2 kernel_size: 3 group: 2 }", [1, 3, 5, 5]),           // channels % group
            ("convolution_param { num_output: 3 kernel_size: 3 group: 2 }", [1, 2, 5, 5]),           // outputs % group
            ("convolution_param { num_output: 2 kernel_size: 3 kernel_size: 3 kernel_size: 3 }", [1, 2, 5, 5]),
            ("convolution_param { num_output: 2 kernel_size: 3 stride_h: 2 }", [1, 2, 5, 5]),
            ("convolution_param { num_output: 2 kernel_size: 7 }", [1, 2, 5, 5]),                    // does not fit
            ("convolution_param { num_output: 2 kernel_size: 3 }", [2, 5, 5]),                       // 1 spatial axis
        ]
        for (p, s) in bad {
            expectError("layer 'test' (Convolution)") { _ = try singleLayerNet("type: \"Convolution\" " + p, inputShapes: [s]) }
        }
        // A new input with other channels no longer fits the weights.
        let n2 = try singleLayerNet("type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 3 }", inputShapes: [Shape([1, 2, 5, 5])])
        expectError("layer 'test' (Convolution)", "has 3 channels but the weights were made for 2") { try n2.reshape(["data": Shape([1, 3, 5, 5])]) }
        try n2.reshape(["data": Shape([4, 2, 8, 6])])
        #expect(try n2.shape("out") == Shape([4, 2, 6, 4]))
    }

    // MARK: - Deconvolution

    @Test func deconvolutionGradients() throws {
        try expectGradients("type: \"Deconvolution\" convolution_param { num_output: 3 kernel_size: 4 stride: 2 pad: 1 }", [[2, 2, 3, 3]])
        try expectGradients("type: \"Deconvolution\" convolution_param { num_output: 4 kernel_size: 3 stride: 2 group: 2 bias_term: false }",
                            [[1, 4, 3, 2]], seed: 2)
        try expectGradients("type: \"Deconvolution\" convolution_param { num_output: 2 kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0 dilation: 2 }",
                            [[2, 2, 3, 3]], seed: 3)
        try expectGradients("type: \"Deconvolution\" convolution_param { num_output: 2 kernel_size: 1 }", [[2, 3, 2, 3]], seed: 4)
        // Winograd for 3x3 (F(4x4, 3x3)); step 1 as for Convolution's.
        try expectGradients("type: \"Deconvolution\" convolution_param { num_output: 16 kernel_size: 3 pad: 1 }", [[1, 16, 8, 9]],
                            seed: 5, convolution: .winograd, stepsize: 1)
        // The fc6 generator's 4x4 stride 2 pad 1 through output phases
        // (linear in x and W: the step adds no truncation error, see above).
        try expectGradients("type: \"Deconvolution\" convolution_param { num_output: 16 kernel_size: 4 stride: 2 pad: 1 }", [[1, 16, 4, 5]],
                            seed: 6, convolution: .winograd, stepsize: 1)
    }

    @Test func deconvolutionForwardBackwardMatchNaive() throws {
        let cases: [(Shape, ConvCfg)] = [
            ([2, 4, 5, 5], ConvCfg(cout: 3, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),
            ([1, 4, 6, 6], ConvCfg(cout: 5, kh: 3, kw: 3, ph: 1, pw: 1)),
            ([3, 4, 4, 5], ConvCfg(cout: 4, group: 2, kh: 3, kw: 3, sh: 2, sw: 2, bias: false)),
            ([2, 3, 4, 3], ConvCfg(cout: 2, kh: 2, kw: 3, sh: 1, sw: 2, ph: 0, pw: 1, dh: 2, dw: 1)),
            ([2, 4, 3, 3], ConvCfg(cout: 6, group: 2, kh: 1, kw: 1)),            // 1x1 identity path
            // 13x13 inputs: four images per GEMM, then two; output columns
            // large enough to be split between threads.
            ([6, 8, 13, 13], ConvCfg(cout: 16, group: 2, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1)),
            // Wide images: one per GEMM, split by rows.
            ([2, 4, 60, 50], ConvCfg(cout: 4, group: 2, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),
            // 3x3 stride 1 with enough channels: Winograd F(2x2, 3x3) for y
            // and dx (pads 0-2, groups, odd sizes).
            ([2, 16, 9, 10], ConvCfg(cout: 20, kh: 3, kw: 3, ph: 1, pw: 1)),
            ([2, 32, 10, 9], ConvCfg(cout: 32, group: 2, kh: 3, kw: 3, bias: false)),
            ([1, 16, 12, 11], ConvCfg(cout: 16, kh: 3, kw: 3, ph: 2, pw: 0)),
            // Kernels a whole number of strides: the fc6 generator's 4x4
            // stride 2 pad 1 (output phases, F(3x3, 2x2)), other pads,
            // stride 3, groups, and 5x5 stride 1 (F(2x2, 5x5), F(4x4, 5x5)).
            ([2, 16, 8, 9], ConvCfg(cout: 16, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),
            ([3, 32, 5, 6], ConvCfg(cout: 32, group: 2, kh: 4, kw: 4, sh: 2, sw: 2, ph: 0, pw: 2, bias: false)),
            ([1, 16, 4, 5], ConvCfg(cout: 20, kh: 6, kw: 6, sh: 3, sw: 3, ph: 1, pw: 2)),
            ([2, 16, 9, 8], ConvCfg(cout: 16, kh: 5, kw: 5, ph: 2, pw: 1)),
            ([8, 16, 8, 8], ConvCfg(cout: 16, kh: 5, kw: 5, ph: 2, pw: 2, bias: false)),   // F(2x2, 5x5) and F(4x4, 5x5)
            ([10, 16, 8, 8], ConvCfg(cout: 16, kh: 3, kw: 3, ph: 1, pw: 1)),   // F(2x2, 3x3) and F(4x4, 3x3)
            // The larger tiles: F(4x4, 2x2) per output phase (the fc6
            // generator's deconv1-3 at batch 10) and F(4x4, 3x3).
            ([4, 16, 24, 23], ConvCfg(cout: 16, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),
            ([2, 16, 22, 24], ConvCfg(cout: 20, kh: 3, kw: 3, ph: 1, pw: 1)),
            // Four tiles per tile row (two rows per input vector): the
            // generator's deconv3 dx (16x16 phases, F(4x4, 2x2)) and 13x13.
            ([2, 16, 16, 16], ConvCfg(cout: 16, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),
            ([1, 16, 10, 41], ConvCfg(cout: 16, kh: 4, kw: 4, sh: 2, sw: 2, ph: 1, pw: 1)),   // dx: wide stride phases
            ([3, 16, 13, 13], ConvCfg(cout: 16, group: 2, kh: 3, kw: 3, ph: 1, pw: 1, bias: false)),
            // Kernels padded with zero taps to a whole number of strides.
            ([2, 16, 9, 10], ConvCfg(cout: 16, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1)),
            ([1, 16, 8, 8], ConvCfg(cout: 4, kh: 5, kw: 5, sh: 3, sw: 3, ph: 1, pw: 0)),
        ]
        try expectMatchesNaive("Deconvolution", cases, seed: 200, naiveDeconv)
    }

    @Test func deconvolutionShapes() throws {
        let net = try singleLayerNet("type: \"Deconvolution\" convolution_param { num_output: 6 kernel_size: 4 stride: 2 pad: 1 group: 3 }",
                                     inputShapes: [Shape([2, 3, 5, 7])])
        #expect(try net.shape("out") == Shape([2, 6, 10, 14]))
        #expect(net.layers.last!.parameterShapes == [Shape([3, 2, 4, 4]), Shape([6])])
        let wantMACs: Int = 2 * 3 * 5 * 7 * 2 * 16      // N C H W (Cout/G) kh kw
        #expect(net.macs.last == wantMACs)
        expectError("layer 'test' (Deconvolution)", "is empty; the padding 1x1 is too large") {
            _ = try singleLayerNet("type: \"Deconvolution\" convolution_param { num_output: 2 kernel_size: 1 pad: 1 }", inputShapes: [Shape([1, 2, 2, 2])])
        }
    }

    // MARK: - InnerProduct

    @Test func innerProductGradients() throws {
        try expectGradients("type: \"InnerProduct\" inner_product_param { num_output: 4 }", [[3, 2, 2, 3]])
        try expectGradients("type: \"InnerProduct\" inner_product_param { num_output: 3 transpose: true }", [[2, 5]], seed: 2)
        try expectGradients("type: \"InnerProduct\" inner_product_param { num_output: 3 axis: 2 bias_term: false }", [[2, 3, 2, 2]], seed: 3)
        try expectGradients("type: \"InnerProduct\" inner_product_param { num_output: 2 axis: -1 transpose: true }", [[2, 2, 3]], seed: 4)
    }

    @Test func innerProductMatchesNaive() throws {
        for (i, (shape, axis, nOut, transpose, bias)) in [
            (Shape([10, 4, 3, 3]), 1, 7, false, true), (Shape([3, 5]), 1, 4, true, true),
            (Shape([2, 3, 5, 2]), 2, 4, false, false), (Shape([1, 16]), 1, 9, true, false),
            // Small batches with many weights: the weight-streaming kernel
            // (odd N, K not a multiple of 8, 5-row blocks plus a remainder).
            (Shape([7, 1003]), 1, 67, false, true), (Shape([10, 3, 10, 20]), 1, 129, false, false),
            (Shape([2, 1000]), 1, 70, false, true),
            // Larger batches (OpenBLAS paths) and one sample.
            (Shape([32, 700]), 1, 100, false, true), (Shape([40, 700]), 1, 100, false, true),
            (Shape([1, 2000]), 1, 40, false, true),
        ].enumerated() {
            let x = randomTensor(shape, seed: UInt64(300 + i))
            let r = try run("type: \"InnerProduct\" inner_product_param { num_output: \(nOut) axis: \(axis) transpose: \(transpose) bias_term: \(bias) }", [x])
            let m = shape.count(from: 0, to: axis), k = shape.count(from: axis)
            let w = r.params[0]
            func wAt(_ o: Int, _ j: Int) -> Float { transpose ? w[j * nOut + o] : w[o * k + j] }
            var y = [Float](repeating: 0, count: m * nOut), dx = [Double](repeating: 0, count: m * k)
            var dw = [Double](repeating: 0, count: w.count), db = [Double](repeating: 0, count: nOut)
            for row in 0..<m {
                for o in 0..<nOut {
                    var s = Double(bias ? r.params[1][o] : 0)
                    let d = Double(r.dy[row * nOut + o])
                    db[o] += d
                    for j in 0..<k {
                        s += Double(x[row * k + j]) * Double(wAt(o, j))
                        dx[row * k + j] += d * Double(wAt(o, j))
                        dw[transpose ? j * nOut + o : o * k + j] += d * Double(x[row * k + j])
                    }
                    y[row * nOut + o] = Float(s)
                }
            }
            #expect(r.out.shape == Shape(Array(shape.dims[0..<axis]) + [nOut]))
            expectClose(r.out, y, "ip \(i) forward", tol: 1e-5)
            expectClose(r.dx[0], dx.map(Float.init), "ip \(i) dx", tol: 1e-5)
            expectClose(r.pgrads[0], dw.map(Float.init), "ip \(i) dW", tol: 1e-5)
            if bias { expectClose(r.pgrads[1], db.map(Float.init), "ip \(i) db", tol: 1e-5) }
        }
    }

    @Test func innerProductErrors() throws {
        expectError("layer 'test' (InnerProduct)", "num_output must be > 0") { _ = try singleLayerNet("type: \"InnerProduct\" inner_product_param { }", inputShapes: [Shape([2, 3])]) }
        expectError("layer 'test' (InnerProduct)", "axis 3 is out of range") { _ = try singleLayerNet("type: \"InnerProduct\" inner_product_param { num_output: 2 axis: 3 }", inputShapes: [Shape([2, 3])]) }
        let net = try singleLayerNet("type: \"InnerProduct\" inner_product_param { num_output: 2 }", inputShapes: [Shape([2, 3, 4])])
        expectError("layer 'test' (InnerProduct)", "to 16 features, but the weights were made for 12") { try net.reshape(["data": Shape([2, 4, 4])]) }
        try net.reshape(["data": Shape([5, 12])])
        #expect(try net.shape("out") == Shape([5, 2]))
    }

    // MARK: - Pooling

    @Test func poolingGradients() throws {
        let maxCases: [(String, Shape)] = [
            ("pool: MAX kernel_size: 3 stride: 2", [2, 2, 7, 6]),
            ("pool: MAX kernel_size: 3 stride: 2 pad: 1", [1, 2, 6, 7]),
            ("pool: MAX kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0", [1, 2, 5, 6]),
            ("pool: MAX kernel_size: 2 stride: 2 round_mode: FLOOR", [1, 2, 5, 5]),
        ]
        for (i, (p, s)) in maxCases.enumerated() {
            try expectGradients("type: \"Pooling\" pooling_param { \(p) }", [s], inputs: [distinctTensor(s, seed: UInt64(i + 1))])
        }
        try expectGradients("type: \"Pooling\" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }", [[2, 2, 7, 8]])
        try expectGradients("type: \"Pooling\" pooling_param { pool: AVE kernel_size: 3 stride: 2 }", [[1, 2, 8, 8]])
        try expectGradients("type: \"Pooling\" pooling_param { pool: AVE global_pooling: true }", [[2, 3, 3, 4]])
        try expectGradients("type: \"Pooling\" pooling_param { pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 2 pad_w: 1 }", [[1, 2, 6, 5]])
    }

    @Test func poolingForwardMatchesNaive() throws {
        let cases: [(Bool, Shape, (Int, Int), (Int, Int), (Int, Int), Bool)] = [
            (true, [2, 3, 8, 8], (3, 3), (2, 2), (0, 0), true),
            (true, [2, 3, 7, 6], (2, 2), (2, 2), (0, 0), true),
            (true, [1, 2, 6, 7], (3, 3), (2, 2), (1, 1), true),
            (true, [1, 2, 13, 11], (3, 2), (2, 3), (2, 1), true),
            (true, [1, 2, 7, 7], (2, 2), (2, 2), (0, 0), false),
            (false, [2, 3, 7, 8], (3, 3), (2, 2), (1, 1), true),
            (false, [1, 2, 9, 10], (4, 3), (3, 2), (2, 1), true),
            (false, [1, 2, 9, 9], (3, 3), (2, 2), (1, 1), false),
            (false, [2, 1, 55, 55], (3, 3), (2, 2), (0, 0), true),
            // Large enough to be split between threads.
            (true, [2, 16, 55, 55], (3, 3), (2, 2), (0, 0), true),
            (false, [2, 16, 55, 55], (3, 3), (2, 2), (1, 1), true),
            // Rows wide enough for eight outputs at a time, stride 1 and 2.
            (true, [1, 2, 5, 40], (3, 2), (1, 1), (1, 1), true),
            (true, [1, 3, 6, 41], (2, 3), (1, 2), (0, 1), false),
            // Many ties (values from {-1, 0, 1}): the first maximum wins.
            (true, [1, 2, 7, 45], (3, 3), (2, 2), (0, 0), true),
            (true, [1, 2, 6, 30], (2, 2), (1, 1), (0, 0), true),
        ]
        for (i, (isMax, s, k, st, p, ceil)) in cases.enumerated() {
            let x = randomTensor(s, seed: UInt64(400 + i))
            if i >= cases.count - 2 {
                for j in 0..<x.count { x[j] = x[j].rounded() > 0 ? 1 : (x[j].rounded() < 0 ? -1 : 0) }
            }
            let text = "type: \"Pooling\" pooling_param { pool: \(isMax ? "MAX" : "AVE") kernel_h: \(k.0) kernel_w: \(k.1) stride_h: \(st.0) stride_w: \(st.1) pad_h: \(p.0) pad_w: \(p.1) round_mode: \(ceil ? "CEIL" : "FLOOR") }"
            let r = try run(text, [x])
            let (shape, ref, args) = naivePool(x, max: isMax, k: k, s: st, p: p, ceil: ceil)
            #expect(r.out.shape == shape, "pool \(i) shape")
            expectClose(r.out, ref, "pool \(i) forward", tol: 1e-6)
            if isMax {
                // The gradient goes to the first maximum of each window.
                var dx = [Float](repeating: 0, count: x.count)
                for (o, a) in args.enumerated() where a >= 0 { dx[a] += r.dy[o] }
                expectClose(r.dx[0], dx, "pool \(i) backward", tol: 1e-6)
            }
        }
    }

    @Test func poolingShapesAndMask() throws {
        // Caffe's ceil rounding and last-window rule.
        for (p, s, want) in [
            ("pool: MAX kernel_size: 3 stride: 2", Shape([1, 1, 8, 8]), Shape([1, 1, 4, 4])),
            ("pool: MAX kernel_size: 3 stride: 2 round_mode: FLOOR", Shape([1, 1, 8, 8]), Shape([1, 1, 3, 3])),
            ("pool: MAX kernel_size: 2 stride: 2", Shape([1, 1, 7, 6]), Shape([1, 1, 4, 3])),
            ("pool: AVE kernel_size: 2 stride: 2 pad: 1", Shape([1, 1, 4, 4]), Shape([1, 1, 3, 3])),
            ("pool: AVE kernel_size: 3 stride: 3 pad: 1", Shape([1, 1, 6, 6]), Shape([1, 1, 3, 3])),
            ("pool: AVE kernel_size: 2 stride: 4 pad: 1", Shape([1, 1, 6, 6]), Shape([1, 1, 2, 2])),  // last window dropped
            ("pool: MAX global_pooling: true", Shape([2, 3, 5, 4]), Shape([2, 3, 1, 1])),
            ("pool: MAX kernel_size: 1 stride: 3", Shape([1, 1, 5, 5]), Shape([1, 1, 3, 3])),    // empty last windows
            ("pool: AVE kernel_size: 1 stride: 3", Shape([1, 1, 5, 5]), Shape([1, 1, 3, 3])),
        ] {
            let net = try singleLayerNet("type: \"Pooling\" pooling_param { \(p) }", inputShapes: [s])
            #expect(try net.shape("out") == want, "\(p) on \(s)")
            try net.forward(["data": randomTensor(s, seed: 3)])   // windows past the image must not trap
        }
        // The fork's ceil_mode: false (a field our schema does not have: built untyped).
        var pp = ParamMessage()
        pp.set("pool", .identifier("MAX")); pp.set("kernel_size", .int(3)); pp.set("stride", .int(2))
        pp.set("ceil_mode", .bool(false))
        var params = ParamMessage()
        params.set("pooling_param", .message(pp))
        let node = Node(name: "p", type: "Pooling", inputs: [ValueID(0)], outputs: [ValueID(1)], params: params)
        let layer = try builtinRegistry().make(LayerContext(node: node, inputShapes: [Shape([1, 1, 8, 8])]))
        #expect(try layer.reshape([[1, 1, 8, 8]]) == [Shape([1, 1, 3, 3])])

        // MAX with a second top: the arg-max mask as floats.
        let x = Tensor(shape: [1, 1, 2, 4], values: [1, 5, 2, 2, 3, 0, 9, 2])
        let outs = try forwardLayer("type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 stride: 2 }", inputs: [x], outputs: 2).outputs
        #expect(outs[0].array == [5, 9])
        #expect(outs[1].array == [1, 6])
        // Ties: the first maximum in row-major order takes the gradient.
        let t = Tensor(shape: [1, 1, 2, 2], values: [4, 4, 4, 4])
        let r = try run("type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 }", [t])
        #expect(r.dx[0].array == [r.dy[0], 0, 0, 0])
    }

    @Test func poolingErrors() throws {
        let bad = [
            "pool: MAX global_pooling: true kernel_size: 2",
            "pool: MAX",
            "pool: MAX kernel_size: 2 kernel_h: 2 kernel_w: 2",
            "pool: MAX kernel_h: 2",
            "pool: MAX kernel_size: 2 pad: 2",
            "pool: MAX kernel_size: 2 pad: 1 pad_h: 1 pad_w: 1",
            "pool: AVE global_pooling: true stride: 2",
            "pool: STOCHASTIC kernel_size: 2 pad: 1",
        ]
        for p in bad {
            expectError("layer 'test' (Pooling)") { _ = try singleLayerNet("type: \"Pooling\" pooling_param { \(p) }", inputShapes: [Shape([1, 1, 6, 6])]) }
        }
        expectError("layer 'test' (Pooling)", "input must have 4 axes") {
            _ = try singleLayerNet("type: \"Pooling\" pooling_param { pool: MAX kernel_size: 2 }", inputShapes: [Shape([2, 6, 6])])
        }
    }

    @Test func stochasticPooling() throws {
        // TEST phase: sum(x^2) / sum(x) over each window; no gradient.
        let x = Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        let y = try forwardLayer("type: \"Pooling\" pooling_param { pool: STOCHASTIC kernel_size: 2 }", inputs: [x]).outputs[0]
        #expect(abs(y[0] - 3) < 1e-5)
        let net = try singleLayerNet("type: \"Pooling\" pooling_param { pool: STOCHASTIC kernel_size: 2 }", inputShapes: [Shape([1, 1, 2, 2])])
        #expect(net.layers.last!.hasBackward == false)
        // TRAIN phase: picks one window element and routes the gradient there.
        let train = try singleLayerNet("type: \"Pooling\" pooling_param { pool: STOCHASTIC kernel_size: 2 }",
                                       inputShapes: [Shape([1, 1, 2, 2])], phase: .train)
        try train.forward(["data": x])
        let out = try train.resolve("out")
        let v = train.tensor(out)![0]
        #expect([1, 2, 3, 4].contains(v))
        let g = try train.backward(seeds: [out: Tensor(shape: [1, 1, 1, 1], values: [1])], gradientsFor: train.graph.inputs)
        #expect(g[train.graph.inputs[0]]!.array == x.array.map { $0 == v ? 1 : 0 })
    }

    // MARK: - LRN

    @Test func lrnGradients() throws {
        try expectGradients("type: \"LRN\" lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 }", [[2, 7, 3, 2]])
        try expectGradients("type: \"LRN\" lrn_param { local_size: 3 alpha: 1.5 beta: 0.6 k: 2 }", [[1, 2, 3, 3]], seed: 2)
        try expectGradients("type: \"LRN\" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL }", [[2, 2, 4, 5]])
        try expectGradients("type: \"LRN\" lrn_param { local_size: 5 alpha: 2 beta: 1 norm_region: WITHIN_CHANNEL }", [[1, 2, 3, 3]], seed: 3)
    }

    @Test func lrnMatchesNaive() throws {
        let cases: [(Shape, Int, Float, Float, Float, Bool)] = [
            ([2, 7, 4, 4], 5, 0.5, 0.75, 1, false),
            ([1, 8, 5, 5], 5, 1e-4, 0.75, 1, false),
            ([1, 3, 3, 2], 7, 0.8, 0.5, 2, false),     // window wider than the channels
            ([2, 4, 3, 3], 3, 1.2, 1.3, 1, false),
            ([2, 3, 5, 5], 3, 0.5, 0.75, 1, true),
            ([1, 2, 4, 6], 5, 2, 0.9, 1, true),
            // Large enough to be split between threads.
            ([2, 16, 48, 48], 5, 1e-2, 0.75, 1, false),
            ([2, 16, 48, 48], 3, 0.5, 0.75, 1, true),
        ]
        for (i, (s, size, alpha, beta, k, within)) in cases.enumerated() {
            let x = randomTensor(s, seed: UInt64(500 + i))
            let text = "type: \"LRN\" lrn_param { local_size: \(size) alpha: \(alpha) beta: \(beta) k: \(k) norm_region: \(within ? "WITHIN_CHANNEL" : "ACROSS_CHANNELS") }"
            let y = try forwardLayer(text, inputs: [x]).outputs[0]
            expectClose(y, naiveLRN(x, size: size, alpha: alpha, beta: beta, k: k, within: within), "lrn \(i)", tol: 1e-5)
        }
        expectError("layer 'test' (LRN)", "odd positive values for local_size (got 4)") { _ = try singleLayerNet("type: \"LRN\" lrn_param { local_size: 4 }", inputShapes: [Shape([1, 4, 2, 2])]) }
        expectError("layer 'test' (LRN)", "input must have 4 axes") { _ = try singleLayerNet("type: \"LRN\"", inputShapes: [Shape([1, 4, 2])]) }
    }

    // MARK: - Large shapes (threaded kernels)

    /// Directional derivative check on tensors too large for element-wise
    /// finite differences (so the kernels split work between threads):
    /// d/de J(x + e v) at 0 must equal <dJ/dx, v>, J = sum(w * out).
    func expectDirectional(_ text: String, _ x: Tensor, eps: Float = 1e-3, tol: Double = 1e-3,
                           sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let r = try run(text, [x])
        var rng = SplitMix64(seed: 31)
        let v = Tensor(shape: x.shape)
        for i in 0..<v.count { v[i] = rng.gaussian() }
        func objective(_ t: Float) throws -> Double {
            let xt = Tensor(shape: x.shape)
            for i in 0..<x.count { xt[i] = x[i] + t * v[i] }
            let y = try forwardLayer(text, inputs: [xt]).outputs[0]
            var j = 0.0
            for i in 0..<y.count { j += Double(y[i]) * Double(r.dy[i]) }
            return j
        }
        let numeric = (try objective(eps) - objective(-eps)) / (2 * Double(eps))
        var analytic = 0.0
        for i in 0..<x.count { analytic += Double(r.dx[0][i]) * Double(v[i]) }
        #expect(abs(numeric - analytic) <= tol * max(1, abs(analytic)),
                "\(text): directional derivative \(numeric), gradient gives \(analytic)", sourceLocation: sourceLocation)
    }

    @Test func largeShapeGradients() throws {
        let big: Shape = [2, 16, 48, 48]
        // (MAX pooling on large shapes: exact comparison in poolingForwardMatchesNaive.)
        try expectDirectional("type: \"Pooling\" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }", randomTensor(big, seed: 2))
        try expectDirectional("type: \"LRN\" lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 }", randomTensor(big, seed: 3))
        try expectDirectional("type: \"LRN\" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL }",
                              randomTensor(big, seed: 4))
        try expectDirectional("type: \"Deconvolution\" convolution_param { num_output: 8 kernel_size: 4 stride: 2 pad: 1 }",
                              randomTensor([2, 8, 40, 40], seed: 5))
    }

    // MARK: - What backward reads

    /// Each layer's `backwardUses` is honest: backward gives the same result
    /// when the forward tensors it does not declare are replaced by NaNs
    /// (the executor may free them before backward runs).
    @Test func backwardUsesAreHonest() throws {
        let cases: [(String, Shape)] = [
            ("type: \"Convolution\" convolution_param { num_output: 3 kernel_size: 3 pad: 1 group: 1 }", [2, 2, 5, 5]),
            ("type: \"Convolution\" convolution_param { num_output: 2 kernel_size: 1 }", [2, 2, 3, 3]),
            ("type: \"Deconvolution\" convolution_param { num_output: 2 kernel_size: 4 stride: 2 pad: 1 }", [2, 2, 3, 3]),
            ("type: \"InnerProduct\" inner_product_param { num_output: 3 }", [2, 2, 3]),
            ("type: \"Pooling\" pooling_param { pool: MAX kernel_size: 3 stride: 2 }", [2, 2, 7, 7]),
            ("type: \"Pooling\" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }", [2, 2, 7, 7]),
            ("type: \"LRN\" lrn_param { local_size: 3 alpha: 0.5 }", [2, 4, 3, 3]),
            ("type: \"LRN\" lrn_param { local_size: 3 alpha: 0.5 norm_region: WITHIN_CHANNEL }", [2, 2, 4, 4]),
        ]
        for (i, (text, shape)) in cases.enumerated() {
            let x = randomTensor(shape, seed: UInt64(600 + i))
            let net = try singleLayerNet(text, inputShapes: [shape])
            try net.forward(["data": x])
            let layer = net.layers.last!
            let y = try net.blob("out")!
            let dy = randomTensor(y.shape, seed: 9)
            func backward(hide: Bool) throws -> [Tensor] {
                func nanLike(_ t: Tensor) -> Tensor { Tensor(shape: t.shape, repeating: .nan) }
                let uses = layer.backwardUses
                let dx = Tensor(shape: shape, repeating: 0)
                let pg = layer.parameters.map { Tensor(shape: $0.shape, repeating: 0) }
                let pass = BackwardPass(inputs: [hide && !uses.contains(.inputs) ? nanLike(x) : x],
                                        outputs: [hide && !uses.contains(.outputs) ? nanLike(y) : y],
                                        outputGrads: [dy], inputGrads: [dx], paramGrads: pg)
                try layer.backward(pass, net.context)
                return [dx] + pg
            }
            let full = try backward(hide: false), hidden = try backward(hide: true)
            for (a, b) in zip(full, hidden) { #expect(a.array == b.array, "case \(i): \(text)") }
        }
    }
}
