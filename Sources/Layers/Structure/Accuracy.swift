import GraphIR
import Runtime

/// Accuracy: the fraction of predictions whose true class (input 1, labels
/// as floats) is among the `top_k` highest scores (input 0)
/// (`accuracy_param`: top_k default 1, axis default 1, ignore_label
/// optional). Forward only, as in Caffe.
///
/// Viewing the scores as (outer, C, inner) around `axis`, a prediction
/// (o, i) with label l counts as correct when fewer than top_k classes c
/// other than l have x[o, c, i] >= x[o, l, i] (ties count against it, as in
/// Caffe). Ignored labels are skipped.
///   y0 = correct / counted (0 when nothing is counted), shape []
///   y1[c] = correct with label c / counted with label c (optional, shape [C])
final class AccuracyLayer: LayerBase, BuiltinLayer {
    static let typeNames = ["Accuracy"]
    let topK: Int
    let axisParam: Int
    let ignoreLabel: Int?
    let tops: Int
    private var geometry = AxisGeometry()

    init(_ ctx: LayerContext) throws {
        try ctx.expectInputs(2)
        try ctx.expectOutputs(1...2)
        let p = ctx.param("accuracy_param")
        (topK, axisParam, ignoreLabel) = try ctx.reading {
            (try p.int("top_k", default: 1), try p.int("axis", default: 1),
             p.has("ignore_label") ? try p.int("ignore_label", default: 0) : nil)
        }
        guard topK >= 1 else { throw ctx.error("accuracy_param.top_k must be at least 1; got \(topK)") }
        tops = ctx.outputCount
        super.init(base: ctx)
    }

    func reshape(_ inputs: [Shape]) throws -> [Shape] {
        let x = inputs[0], labels = inputs[1]
        guard labels.count > 0, topK <= x.count / labels.count else {
            throw error("accuracy_param.top_k (\(topK)) is larger than the number of classes (\(labels.count > 0 ? x.count / labels.count : 0)) of scores \(x) with labels \(labels)")
        }
        let axis = try structureAxis(axisParam, of: x, field: "accuracy_param.axis", error: { self.error($0) })
        let g = AxisGeometry(x, axis: axis)
        guard g.outer * g.inner == labels.count else {
            throw error("needs one label per prediction: scores \(x) with axis \(axis) make \(g.outer * g.inner) predictions, but the labels \(labels) hold \(labels.count)")
        }
        geometry = g
        return tops == 2 ? [Shape([]), Shape([g.channels])] : [Shape([])]
    }

    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws {
        let g = geometry, c = g.channels, inner = g.inner
        let x = inputs[0].data, labels = inputs[1].data
        let perClass = outputs.count > 1 ? outputs[1].data : nil
        let classCounts = ctx.scratch(c)
        for k in 0..<c { classCounts[k] = 0; perClass?[k] = 0 }
        var correct = 0, counted = 0
        for o in 0..<g.outer {
            for i in 0..<inner {
                let raw = labels[o * inner + i]
                guard let l = labelValue(raw) else {
                    throw error("label \(raw) at position \(o * inner + i) is not an integer class index")
                }
                if let ig = ignoreLabel, l == ig { continue }
                guard l >= 0, l < c else {
                    throw error("label \(l) at position \(o * inner + i) is outside the \(c) classes (0 ..< \(c))")
                }
                classCounts[l] += 1
                let base = x + o * c * inner + i
                let truth = base[l * inner]
                var better = -1   // the true class itself is counted once
                var k = 0
                while k < c && better < topK {
                    if base[k * inner] >= truth { better += 1 }
                    k += 1
                }
                if better < topK {
                    correct += 1
                    perClass?[l] += 1
                }
                counted += 1
            }
        }
        outputs[0][0] = counted == 0 ? 0 : Float(correct) / Float(counted)
        if let perClass {
            for k in 0..<c { perClass[k] = classCounts[k] == 0 ? 0 : perClass[k] / classCounts[k] }
        }
    }

    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws {
        throw error("has no backward pass (Caffe defines none)")
    }
    var hasBackward: Bool { false }
}
