import GraphIR

extension Net {
    /// Makes every layer of this net that has a namesake with parameters in
    /// `source` use the source's parameter tensors (Caffe's
    /// `ShareTrainedLayersWith`): a test net then always sees the weights the
    /// solver is training, with no copy. Layers `source` does not have keep
    /// their own parameters.
    public func shareParameters(from source: Net) throws {
        for (i, node) in graph.nodes.enumerated() {
            guard let k = source.graph.nodeIndex(named: node.name) else { continue }
            let from = source.layers[k].parameters
            guard !from.isEmpty else { continue }
            let layer = layers[i]
            guard layer.parameterShapes.count == from.count else {
                throw RuntimeError.layer(name: node.name, type: node.type,
                    message: "cannot share parameters with the training net's layer of the same name: it has \(layer.parameterShapes.count) parameter blobs, that one \(from.count)",
                    location: node.location)
            }
            for (j, t) in from.enumerated() where t.shape != layer.parameterShapes[j] {
                throw RuntimeError.layer(name: node.name, type: node.type,
                    message: "cannot share parameter \(j) with the training net's layer of the same name: shape \(layer.parameterShapes[j]) here, \(t.shape) there",
                    location: node.location)
            }
            layer.parameters = from
        }
    }

    /// Copies the weights of `graph`'s layers into this net's parameter
    /// tensors by layer name, in place (Caffe's `CopyTrainedLayersFrom`), so
    /// nets sharing those tensors see the new values. Layers this net does
    /// not have are ignored, as in Caffe.
    public func copyTrainedLayers(from graph: Graph) throws {
        for src in graph.nodes where !src.weights.isEmpty {
            guard let i = self.graph.nodeIndex(named: src.name) else { continue }
            let layer = layers[i], node = self.graph.nodes[i]
            guard layer.parameters.count == src.weights.count else {
                throw RuntimeError.weightCount(layer: node.name, expected: layer.parameters.count, found: src.weights.count)
            }
            for (j, w) in src.weights.enumerated() {
                let t = layer.parameters[j]
                let want = t.shape
                guard w.shape == want || (w.shape.rank <= 4 && want.rank <= 4 && w.shape.count == want.count
                                          && (0..<4).allSatisfy { w.shape.legacy($0) == want.legacy($0) }) else {
                    throw RuntimeError.weightShape(layer: node.name, index: j, expected: want, found: w.shape)
                }
                w.data.withUnsafeBufferPointer { b in
                    if let base = b.baseAddress { t.data.update(from: base, count: want.count) }
                }
            }
        }
    }

    /// The loss terms of this net: every output whose loss weight is not
    /// zero, with that weight. A layer's `loss_weight` list gives one weight
    /// per top; without one, a loss layer (`isLoss`) weighs its first top 1
    /// and any other top 0, and other layers weigh nothing (Caffe's rule).
    public func lossTerms() throws -> [(value: ValueID, weight: Float)] {
        var terms: [(ValueID, Float)] = []
        for (i, node) in graph.nodes.enumerated() {
            var weights = node.lossWeights
            if weights.isEmpty {
                guard layers[i].isLoss, !node.outputs.isEmpty else { continue }
                weights = [1] + Array(repeating: 0, count: node.outputs.count - 1)
            }
            guard weights.count == node.outputs.count else {
                throw RuntimeError.layer(name: node.name, type: node.type,
                    message: "gives \(weights.count) loss_weight values for \(node.outputs.count) tops; give none, or one per top",
                    location: node.location)
            }
            for (v, w) in zip(node.outputs, weights) where w != 0 { terms.append((v, w)) }
        }
        return terms
    }
}
