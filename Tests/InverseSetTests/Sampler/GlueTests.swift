import GraphIR
import Runtime
import Sampler
import Testing

/// The glue (clip -> crop -> channel swap -> scale and offset) against its
/// definition written per element, forward and backward, with every step on.
struct GlueTests {
    let n = 2, c = 3, h = 5, w = 6
    let crop = (y: 1, x: 2, height: 3, width: 4)
    let swap = [2, 0, 0]   // channel 0 feeds two outputs: its gradients add up

    func glue() -> Glue {
        var rng = SplitMix64(seed: 11)
        var g = Glue()
        g.clipLow = (0..<(c * h * w)).map { _ in -0.5 + 0.2 * rng.gaussian() }
        g.clipHigh = (0..<(c * h * w)).map { _ in 0.5 + 0.2 * rng.gaussian() }
        g.crop = crop
        g.channelSwap = swap
        g.scale = 1.5
        g.offset = [0.25, -1, 2]
        return g
    }

    func input() -> Tensor {
        var rng = SplitMix64(seed: 12)
        return Tensor(shape: [n, c, h, w], values: (0..<(n * c * h * w)).map { _ in rng.gaussian() })
    }

    @Test func forwardIsClipCropSwapScaleOffset() throws {
        let glue = glue(), g = input()
        let x = Tensor(shape: try glue.outputShape(g.shape))
        #expect(x.shape == [n, c, crop.height, crop.width])
        glue.forward(g, x)
        let low = try #require(glue.clipLow), high = try #require(glue.clipHigh)
        for s in 0..<n { for oc in 0..<c { for y in 0..<crop.height { for xx in 0..<crop.width {
            let inSample = (swap[oc] * h + y + crop.y) * w + xx + crop.x
            let v = min(max(g.array[s * c * h * w + inSample], low[inSample]), high[inSample])
            let want = v * 1.5 + [0.25, -1, 2][oc]
            #expect(x.array[((s * c + oc) * crop.height + y) * crop.width + xx] == want, "sample \(s) channel \(oc) (\(y), \(xx))")
        } } } }
    }

    @Test func backwardPassesGradientInsideTheClipOnly() throws {
        let glue = glue(), g = input()
        var rng = SplitMix64(seed: 13)
        let outShape = try glue.outputShape(g.shape)
        let dx = Tensor(shape: outShape, values: (0..<outShape.count).map { _ in rng.gaussian() })
        let dg = Tensor(shape: g.shape, values: [Float](repeating: 9, count: g.count))   // overwritten
        glue.backward(g, dx, dg)
        let low = try #require(glue.clipLow), high = try #require(glue.clipHigh)
        var want = [Float](repeating: 0, count: g.count)
        for s in 0..<n { for oc in 0..<c { for y in 0..<crop.height { for xx in 0..<crop.width {
            let inSample = (swap[oc] * h + y + crop.y) * w + xx + crop.x
            let v = g.array[s * c * h * w + inSample]
            guard v >= low[inSample], v <= high[inSample] else { continue }
            want[s * c * h * w + inSample] += dx.array[((s * c + oc) * crop.height + y) * crop.width + xx] * 1.5
        } } } }
        #expect(dg.array == want)
        // Some elements are clipped and some pass, so both branches ran.
        #expect(want.contains(0) && want.contains { $0 != 0 })
    }
}
