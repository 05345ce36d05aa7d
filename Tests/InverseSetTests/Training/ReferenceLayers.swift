import Foundation
import GraphIR
import Layers
import Runtime

/// Plain-loop versions of the four layers of the solver parity net
/// (Convolution without pad/stride/groups, MAX Pooling without pad,
/// InnerProduct, SoftmaxWithLoss with VALID normalisation), written from
/// Caffe's definitions (InnerProduct is `PlainLinearLayer` of
/// TrainingSupport.swift, which the solver tests' TestLinear also is). The parity tests run once with these, so that a
/// solver difference is told apart from a layer difference, and once with
/// the built-in layers.
enum ReferenceLayers {
    static func registry() throws -> LayerRegistry {
        let r = try builtinRegistry()
        try r.register("Convolution", origin: "test", replacing: true) { try RefConvolution($0) }
        try r.register("Pooling", origin: "test", replacing: true) { try RefMaxPooling($0) }
        try r.register("InnerProduct", origin: "test", replacing: true) { try PlainLinearLayer($0, param: "inner_product_param") }
        try r.register("SoftmaxWithLoss", origin: "test", replacing: true) { try RefSoftmaxWithLoss($0) }
        return r
    }
}

/// y[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] x[n,c,i+u,j+v] (valid, stride 1).
final class RefConvolution: LayerBase, Layer {
    let out: Int, k: Int, c: Int
    init(_ ctx: LayerContext) throws {
        let p = ctx.param("convolution_param")
        out = try p.int("num_output")
        k = try p.ints("kernel_size").first ?? 1
        c = ctx.inputShapes[0][1]
        super.init(base: ctx)
    }
    var parameterShapes: [Shape] { [[out, c, k, k], [out]] }
    func reshape(_ s: [Shape]) throws -> [Shape] { [[s[0][0], out, s[0][2] - k + 1, s[0][3] - k + 1]] }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0], y = outputs[0], w = parameters[0], b = parameters[1]
        let (n, h, wd) = (x.shape[0], x.shape[2], x.shape[3]), (oh, ow) = (y.shape[2], y.shape[3])
        for s in 0..<n { for o in 0..<out { for i in 0..<oh { for j in 0..<ow {
            var acc = b[o]
            for ch in 0..<c { for u in 0..<k { for v in 0..<k {
                acc += w[((o * c + ch) * k + u) * k + v] * x[((s * c + ch) * h + i + u) * wd + j + v]
            } } }
            y[((s * out + o) * oh + i) * ow + j] = acc
        } } } }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        let x = pass.inputs[0], dy = pass.outputGrads[0], w = parameters[0]
        let (n, h, wd) = (x.shape[0], x.shape[2], x.shape[3]), (oh, ow) = (dy.shape[2], dy.shape[3])
        pass.inputGrads[0]?.zero()
        for s in 0..<n { for o in 0..<out { for i in 0..<oh { for j in 0..<ow {
            let g = dy[((s * out + o) * oh + i) * ow + j]
            pass.paramGrads[1].map { $0[o] += g }
            for ch in 0..<c { for u in 0..<k { for v in 0..<k {
                let wi = ((o * c + ch) * k + u) * k + v, xi = ((s * c + ch) * h + i + u) * wd + j + v
                if let dw = pass.paramGrads[0] { dw[wi] += g * x[xi] }
                if let dx = pass.inputGrads[0] { dx[xi] += g * w[wi] }
            } } }
        } } } }
    }
}

/// MAX pooling, square window, no padding; the gradient goes to the first
/// maximum of each window in scan order (Caffe's mask).
final class RefMaxPooling: LayerBase, Layer {
    let k: Int, stride: Int
    init(_ ctx: LayerContext) throws {
        let p = ctx.param("pooling_param")
        k = try p.int("kernel_size", default: 2)
        stride = try p.int("stride", default: 1)
        super.init(base: ctx)
    }
    func reshape(_ s: [Shape]) throws -> [Shape] {
        let oh = Int((Double(s[0][2] - k) / Double(stride)).rounded(.up)) + 1
        let ow = Int((Double(s[0][3] - k) / Double(stride)).rounded(.up)) + 1
        return [[s[0][0], s[0][1], oh, ow]]
    }
    func argmax(_ x: Tensor, _ plane: Int, _ h: Int, _ w: Int, _ i: Int, _ j: Int) -> Int {
        var best = -1
        for u in (i * stride)..<min(i * stride + k, h) { for v in (j * stride)..<min(j * stride + k, w) {
            let idx = plane * h * w + u * w + v
            if best < 0 || x[idx] > x[best] { best = idx }
        } }
        return best
    }
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0], y = outputs[0]
        let (planes, h, w, oh, ow) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3], y.shape[2], y.shape[3])
        for p in 0..<planes { for i in 0..<oh { for j in 0..<ow { y[(p * oh + i) * ow + j] = x[argmax(x, p, h, w, i, j)] } } }
    }
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dx = pass.inputGrads[0] else { return }
        let x = pass.inputs[0], dy = pass.outputGrads[0]
        let (planes, h, w, oh, ow) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3], dy.shape[2], dy.shape[3])
        dx.zero()
        for p in 0..<planes { for i in 0..<oh { for j in 0..<ow { dx[argmax(x, p, h, w, i, j)] += dy[(p * oh + i) * ow + j] } } }
    }
}

/// loss = -(1/N) sum_n log softmax(x_n)[label_n]; d/dx = (softmax - onehot) / N.
final class RefSoftmaxWithLoss: LayerBase, Layer {
    init(_ ctx: LayerContext) throws { super.init(base: ctx) }
    var isLoss: Bool { true }
    func reshape(_ s: [Shape]) throws -> [Shape] { [Shape([])] }
    func probabilities(_ x: Tensor, _ n: Int, _ k: Int) -> [Double] {
        var p = [Double](repeating: 0, count: k)
        let m = (0..<k).map { Double(x[n * k + $0]) }.max() ?? 0
        for j in 0..<k { p[j] = Foundation.exp(Double(x[n * k + j]) - m) }
        let s = p.reduce(0, +)
        return p.map { $0 / s }
    }
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let x = inputs[0], label = inputs[1], (n, k) = (x.shape[0], x.shape[1])
        var loss = 0.0
        for s in 0..<n { loss -= Foundation.log(max(probabilities(x, s, k)[Int(label[s])], 1.1754944e-38)) }
        outputs[0][0] = Float(loss / Double(n))
    }
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        guard let dx = pass.inputGrads[0] else { return }
        let x = pass.inputs[0], label = pass.inputs[1], (n, k) = (x.shape[0], x.shape[1])
        let scale = Double(pass.outputGrads[0][0]) / Double(n)
        for s in 0..<n {
            let p = probabilities(x, s, k)
            for j in 0..<k { dx[s * k + j] = Float((p[j] - (j == Int(label[s]) ? 1 : 0)) * scale) }
        }
    }
}
