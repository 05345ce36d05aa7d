import Dispatch
import GraphIR

/// Which gradients a backward pass must produce, fixed before the forward
/// pass so the executor knows which activations to keep.
///
///     let plan = try net.plan(seeds: [fc8], gradientsFor: [data])
///     try net.forward(["data": x], plan: plan)
///     let g = try net.backward(seeds: [fc8: dfc8], plan: plan)[data]
public struct BackwardPlan: Sendable {
    /// Values that will receive a seed gradient (dJ/dvalue).
    public let seeds: Set<ValueID>
    /// Values whose gradient the caller wants back.
    public let wanted: Set<ValueID>
    public let paramGrads: Bool
    /// Values whose forward tensor the caller reads after the pass.
    public let keep: Set<ValueID>
    /// Nodes whose backward runs, in graph order.
    let backwardNodes: [Bool]
    /// Per value: does its gradient need computing?
    let needsGrad: [Bool]
    /// Per value: last timeline step that reads its forward tensor.
    let lastUse: [Int]
    /// Per value: timeline step after which its gradient can be dropped.
    let gradLastUse: [Int]
}

/// An executable network: layers from the registry, values as tensors,
/// forward and reverse-mode backward with gradient accumulation at fan-out.
///
/// Caffe semantics: a blob name means its latest in-place version; a blob read
/// by several layers receives the sum of their gradients; parameter gradients
/// accumulate until `zeroParamGrads()`.
public final class Net {
    public let graph: Graph
    public let phase: Phase
    public private(set) var layers: [any Layer] = []
    /// Current shape of every value.
    public private(set) var shapes: [Shape]
    /// Parameter gradient tensors per node (allocated on first use).
    public private(set) var paramGrads: [[Tensor]]
    /// Per node, per parameter blob: the `param { }` spec in force (defaults
    /// where the prototxt gives none). Running statistics (BatchNorm's) always
    /// have lr_mult 0, as in Caffe. A blob with lr_mult 0 gets no gradient.
    public private(set) var paramSpecs: [[ParamSpec]] = []
    public let context: ExecutionContext

    /// When true, forward and backward add each layer's wall time (ms) to
    /// `forwardTimes` / `backwardTimes` (for `bench --layers`).
    public var profiling = false
    public var forwardTimes: [Double] = []
    public var backwardTimes: [Double] = []
    /// Forward passes run so far.
    public private(set) var forwardPasses = 0
    /// Layers whose parameters came from their fillers (no weights in the
    /// graph): random weights, which a tool should say.
    public private(set) var filledLayers: [String] = []

    private var tensors: [Tensor?]
    private var isInputNode: [Bool]
    private var consumers: [[Int]]
    private var pool = StoragePool()
    private var defaultPlan: BackwardPlan?

    /// Builds the net for the declared input shapes (or `inputShapes`, by blob
    /// name), loading weights from the graph or, where the graph has none,
    /// from the layers' fillers seeded by `seed`. With `lazyParameters`, layers
    /// without weights get no parameter tensors (enough for shape inference
    /// and `inspect`, not for running).
    ///
    /// `defaultWeightFiller` replaces Caffe's default (constant 0) for the
    /// first parameter blob (the weights) of layers that declare no filler
    /// type, as deploy prototxts never do; nil keeps Caffe's rule.
    ///
    /// The net keeps the graph without its weight blobs (the parameters hold
    /// them); a caller that passes its last reference to the graph lets each
    /// blob be freed as soon as it is copied, so loading needs little more
    /// memory than the weights themselves.
    ///
    /// Weights that do not belong are refused: when weights files were
    /// attached (`graph.weightSources` is not empty), every layer with
    /// parameters must have received them (or share them by `param` name with
    /// a layer that did); otherwise this throws `RuntimeError.missingWeights`
    /// naming the layers, unless `allowMissingWeights` (fine-tuning, net
    /// surgery), in which case they are filled and listed in `filledLayers`.
    ///
    /// `threads`: how many threads its forward and backward passes use
    /// (`context.threads`).
    public init(graph: consuming Graph, registry: LayerRegistry, phase: Phase = .test,
                inputShapes: [String: Shape] = [:], seed: UInt64 = 0, lazyParameters: Bool = false,
                defaultWeightFiller: ParamMessage? = nil, allowMissingWeights: Bool = false,
                threads: Int = defaultComputeThreads) throws {
        var source = graph
        var stripped = source
        for i in stripped.nodes.indices { stripped.nodes[i].weights = [] }
        let graph = stripped
        self.graph = graph
        self.phase = phase
        self.context = ExecutionContext(phase: phase, seed: seed, threads: threads)
        self.shapes = Array(repeating: Shape([]), count: graph.values.count)
        self.tensors = Array(repeating: nil, count: graph.values.count)
        self.paramGrads = Array(repeating: [], count: graph.nodes.count)
        self.consumers = graph.consumers()
        let inputSet = Set(graph.inputs)
        self.isInputNode = graph.nodes.map { n in !n.outputs.isEmpty && n.outputs.allSatisfy(inputSet.contains) }

        for input in graph.inputs {
            let blob = graph.values[input.index].blob
            guard let s = inputShapes[blob] ?? graph.inputShapes[input] else {
                throw RuntimeError.input("net input '\(blob)' has no shape: declare it in the prototxt (input_shape or an Input layer) or pass one")
            }
            guard s.checkedCount != nil else {
                throw RuntimeError.input("net input '\(blob)' has an impossible shape \(s.dims)")
            }
            shapes[input.index] = s
        }
        var shared: [String: (Tensor, String)] = [:]
        var fillRNG = SplitMix64(seed: seed)
        let refuseMissing = !graph.weightSources.isEmpty && !allowMissingWeights
        var missing: [String] = []
        var parameterBytes = 0   // each shape passed checkShapes (< 2^40 elements), so the sum cannot overflow
        for i in source.nodes.indices {
            let node = source.nodes[i]
            source.nodes[i].weights = []   // `node` holds the blobs until they are copied
            let ins = node.inputs.map { shapes[$0.index] }
            let layer = try registry.make(LayerContext(node: node, inputShapes: ins, phase: phase))
            let outs: [Shape]
            if isInputNode[i] {
                outs = node.outputs.map { shapes[$0.index] }
            } else {
                outs = try layer.reshape(ins)
                guard outs.count == node.outputs.count else {
                    throw RuntimeError.layer(name: node.name, type: node.type,
                                             message: "computes \(outs.count) outputs but the prototxt names \(node.outputs.count) tops",
                                             location: node.location)
                }
            }
            try Net.checkShapes(outs + layer.parameterShapes, node: node)
            for (v, s) in zip(node.outputs, outs) { shapes[v.index] = s }
            let shapesWanted = layer.parameterShapes
            if node.weights.isEmpty && !shapesWanted.isEmpty {
                // Parameters shared by name with an earlier layer come from that layer.
                let allShared = shapesWanted.indices.allSatisfy { j in
                    j < node.paramSpecs.count && (node.paramSpecs[j].name.map { shared[$0] != nil } ?? false)
                }
                if !allShared {
                    if refuseMissing { missing.append(node.name) } else if !lazyParameters { filledLayers.append(node.name) }
                }
            }
            if !missing.isEmpty {
                // Refused in the end: no filling for the rest, only the list of layers.
                paramSpecs.append([])
                layers.append(layer)
                continue
            }
            if !(lazyParameters && node.weights.isEmpty) {
                for shape in shapesWanted { parameterBytes += shape.count * MemoryLayout<Float>.size }
                if let excess = MemoryBudget.excess(parameterBytes, for: "the parameters up to layer '\(node.name.clippedForDisplay())' (\(node.type))") {
                    throw RuntimeError.overBudget(excess)
                }
                layer.parameters = try Net.makeParameters(node: node, layer: layer, shared: &shared, rng: &fillRNG,
                                                          defaultWeightFiller: defaultWeightFiller)
            }
            paramSpecs.append(try Net.effectiveParamSpecs(node: node, layer: layer))
            layers.append(layer)
        }
        if !missing.isEmpty {
            throw RuntimeError.missingWeights(files: graph.weightSources.map(\.file), layers: missing,
                                              unmatched: graph.weightSources.flatMap(\.unmatchedLayers))
        }
        if !lazyParameters { try checkActivationBudget() }
    }

    /// Throws before a forward pass could allocate more than the memory budget:
    /// the activations of every value at the current shapes (an upper bound,
    /// since the memory plan reuses buffers) must fit. Shape inference alone
    /// (`lazyParameters`, `inspect`) allocates nothing and is not limited.
    func checkActivationBudget() throws {
        var total = 0, largest = 0, largestValue = 0
        for (i, s) in shapes.enumerated() {
            let bytes = s.count * MemoryLayout<Float>.size   // < 2^42 each (checkShapes)
            total += bytes
            if bytes > largest { largest = bytes; largestValue = i }
        }
        guard let excess = MemoryBudget.excess(total, for: "a forward pass at these shapes") else { return }
        let v = graph.values[largestValue]
        let node = graph.nodes[v.producer]
        throw RuntimeError.overBudget(excess + "; the largest blob is '\(v.blob.clippedForDisplay())' of shape \(shapes[largestValue]) "
            + "(\(MemoryBudget.describe(largest))), written by layer '\(node.name.clippedForDisplay())' (\(node.type)); use a smaller input or batch")
    }

    /// The `param { }` specs of a layer's parameter blobs, with Caffe's rule
    /// that running statistics (`Layer.statisticParameters`: BatchNorm's mean,
    /// variance and count) are not learnable: lr_mult forced to 0, a non-zero
    /// one is an error.
    static func effectiveParamSpecs(node: Node, layer: any Layer) throws -> [ParamSpec] {
        let count = layer.parameterShapes.count
        var specs = (0..<count).map { $0 < node.paramSpecs.count ? node.paramSpecs[$0] : ParamSpec() }
        for j in layer.statisticParameters.sorted() where j < count {
            if j < node.paramSpecs.count && node.paramSpecs[j].lrMult != 0 {
                throw RuntimeError.layer(name: node.name, type: node.type,
                    message: "param \(j) sets lr_mult \(node.paramSpecs[j].lrMult), but this blob holds running statistics, not learnable weights; remove the lr_mult or set it to 0"
                        + (node.type == "BatchNorm" ? " (put a Scale layer after BatchNorm for a learned scale and shift)" : ""),
                    location: node.location)
            }
            specs[j].lrMult = 0
            specs[j].decayMult = 0
        }
        return specs
    }

    /// Rejects negative or absurdly large shapes (from malformed files)
    /// before any buffer is sized from them.
    static func checkShapes(_ shapes: [Shape], node: Node) throws {
        for s in shapes where s.checkedCount == nil {
            throw RuntimeError.layer(name: node.name, type: node.type,
                                     message: "computes the impossible shape \(s.dims); check its parameters and input shapes",
                                     location: node.location)
        }
    }

    /// Creates the parameter tensors of one layer: from the caffemodel's blobs
    /// (shape-checked, legacy 4-d shapes accepted), shared by `param` name, or
    /// filled from the layer's fillers.
    private static func makeParameters(node: Node, layer: any Layer, shared: inout [String: (Tensor, String)],
                                       rng: inout SplitMix64, defaultWeightFiller: ParamMessage?) throws -> [Tensor] {
        let wantShapes = layer.parameterShapes
        if !node.weights.isEmpty && node.weights.count != wantShapes.count {
            throw RuntimeError.weightCount(layer: node.name, expected: wantShapes.count, found: node.weights.count)
        }
        var result: [Tensor] = []
        for (j, want) in wantShapes.enumerated() {
            let spec = j < node.paramSpecs.count ? node.paramSpecs[j] : ParamSpec()
            if let name = spec.name, !name.isEmpty, let (owner, ownerLayer) = shared[name] {
                guard owner.count == want.count else {
                    throw RuntimeError.layer(name: node.name, type: node.type,
                        message: "shares parameter '\(name)' with layer '\(ownerLayer)', whose shape \(owner.shape) does not match \(want)",
                        location: node.location)
                }
                result.append(owner)
                continue
            }
            let t = Tensor(shape: want)
            if j < node.weights.count {
                let w = node.weights[j]
                guard w.shape == want || (w.shape.rank <= 4 && want.rank <= 4 && w.shape.count == want.count
                                          && (0..<4).allSatisfy { w.shape.legacy($0) == want.legacy($0) }) else {
                    throw RuntimeError.weightShape(layer: node.name, index: j, expected: want, found: w.shape)
                }
                w.data.withUnsafeBufferPointer { t.data.update(from: $0.baseAddress!, count: want.count) }
            } else {
                var filler = j < layer.parameterFillers.count ? layer.parameterFillers[j] : nil
                if j == 0, let d = defaultWeightFiller, !(filler?.has("type") ?? false) { filler = d }
                try Filler.fill(t, with: filler, rng: &rng, layer: node.name)
            }
            if let name = spec.name, !name.isEmpty { shared[name] = (t, node.name) }
            result.append(t)
        }
        return result
    }

    // MARK: - Names

    /// The latest value of a blob, or a layer's output (see `Graph.resolve`).
    public func resolve(_ name: String) throws -> ValueID { try graph.resolve(name) }

    /// The tensor of a value after the last forward pass (nil if the memory
    /// plan freed it).
    public func tensor(_ v: ValueID) -> Tensor? { tensors[v.index] }
    public func blob(_ name: String) throws -> Tensor? { tensor(try resolve(name)) }
    public func shape(_ name: String) throws -> Shape { shapes[try resolve(name).index] }

    public var inputNames: [String] { graph.inputs.map { graph.values[$0.index].blob } }

    // MARK: - Shapes

    /// Re-runs shape inference for new input shapes (e.g. another batch size).
    public func reshape(_ inputShapes: [String: Shape]) throws {
        var changed = false
        for input in graph.inputs {
            let blob = graph.values[input.index].blob
            if let s = inputShapes[blob], s != shapes[input.index] { shapes[input.index] = s; changed = true }
        }
        guard changed else { return }
        for (i, node) in graph.nodes.enumerated() where !isInputNode[i] {
            let outs = try layers[i].reshape(node.inputs.map { shapes[$0.index] })
            try Net.checkShapes(outs, node: node)
            for (v, s) in zip(node.outputs, outs) { shapes[v.index] = s }
        }
        try checkActivationBudget()
    }

    /// Multiply-adds of one forward pass per node at the current shapes.
    public var macs: [Int] { layers.map(\.macs) }

    // MARK: - Planning

    /// Plans a backward pass from gradients seeded on `seeds` to the values in
    /// `gradientsFor` (and to the parameters if `paramGrads`). Only layers on
    /// a path between them run backward; activations no later step reads are
    /// released during the forward pass.
    public func plan(seeds: [ValueID], gradientsFor wanted: [ValueID], paramGrads: Bool = false,
                     keep: [ValueID] = []) throws -> BackwardPlan {
        let nv = graph.values.count, nn = graph.nodes.count
        let wantedSet = Set(wanted)
        // Forward: which values depend on something we want a gradient for.
        var requires = [Bool](repeating: false, count: nv)
        for v in wanted { requires[v.index] = true }
        for (i, node) in graph.nodes.enumerated() {
            let fromParams = paramGrads && learnsParameters(i)
            if fromParams || node.inputs.contains(where: { requires[$0.index] }) {
                for v in node.outputs { requires[v.index] = true }
            }
        }
        // Backward: which values influence a seeded one.
        var influences = [Bool](repeating: false, count: nv)
        for s in seeds { influences[s.index] = true }
        var runs = [Bool](repeating: false, count: nn)
        for i in stride(from: nn - 1, through: 0, by: -1) {
            let node = graph.nodes[i]
            guard !isInputNode[i], node.outputs.contains(where: { influences[$0.index] }) else { continue }
            let needsInputs = node.inputs.enumerated().contains { k, v in
                requires[v.index] && (k >= node.propagateDown.count || node.propagateDown[k])
            }
            let needsParams = paramGrads && learnsParameters(i)
            guard needsInputs || needsParams else { continue }
            guard layers[i].hasBackward else {
                throw RuntimeError.layer(name: node.name, type: node.type,
                    message: "has no backward pass, but a gradient must flow through it; seed the gradient after this layer or drop it from the path",
                    location: node.location)
            }
            runs[i] = true
            for (k, v) in node.inputs.enumerated() where requires[v.index] && (k >= node.propagateDown.count || node.propagateDown[k]) {
                influences[v.index] = true
            }
        }
        var needsGrad = [Bool](repeating: false, count: nv)
        for v in 0..<nv { needsGrad[v] = influences[v] && requires[v] }
        for s in seeds { needsGrad[s.index] = true }

        // Liveness on the timeline: forward of node i is step i, its backward
        // is step 2n-1-i.
        let forever = Int.max
        var lastUse = [Int](repeating: -1, count: nv)
        var gradLastUse = [Int](repeating: -1, count: nv)
        for (i, node) in graph.nodes.enumerated() {
            for v in node.inputs { lastUse[v.index] = max(lastUse[v.index], i) }
            for v in node.outputs { lastUse[v.index] = max(lastUse[v.index], i) }
            if runs[i] {
                let b = 2 * nn - 1 - i
                let uses = layers[i].backwardUses
                if uses.contains(.inputs) { for v in node.inputs { lastUse[v.index] = max(lastUse[v.index], b) } }
                if uses.contains(.outputs) { for v in node.outputs { lastUse[v.index] = max(lastUse[v.index], b) } }
                for v in node.outputs { gradLastUse[v.index] = max(gradLastUse[v.index], b) }
            }
        }
        for v in keep { lastUse[v.index] = forever }
        for v in seeds { lastUse[v.index] = max(lastUse[v.index], 0) }
        for v in wanted { gradLastUse[v.index] = forever }
        for v in graph.inputs { lastUse[v.index] = forever }   // fed by the caller
        return BackwardPlan(seeds: Set(seeds), wanted: wantedSet, paramGrads: paramGrads, keep: Set(keep),
                            backwardNodes: runs, needsGrad: needsGrad, lastUse: lastUse, gradLastUse: gradLastUse)
    }

    /// Does node `i` have a parameter blob with a non-zero lr_mult?
    private func learnsParameters(_ i: Int) -> Bool {
        paramSpecs[i].contains { $0.lrMult != 0 }
    }

    // MARK: - Forward

    /// Runs the net forward. `feeds` maps input blob names to tensors (their
    /// shapes may differ from the declared ones: the net reshapes). Without a
    /// plan every value is kept, which is what tests and `run` want.
    public func forward(_ feeds: [String: Tensor], plan: BackwardPlan? = nil) throws {
        var newShapes: [String: Shape] = [:]
        for input in graph.inputs {
            let blob = graph.values[input.index].blob
            guard let t = feeds[blob] else {
                throw RuntimeError.input("net input '\(blob)' was not given (inputs: \(inputNames.joined(separator: ", ")))")
            }
            newShapes[blob] = t.shape
        }
        for name in feeds.keys where !inputNames.contains(name) {
            throw RuntimeError.input("'\(name)' is not an input of this net (inputs: \(inputNames.joined(separator: ", ")))")
        }
        try reshape(newShapes)
        forwardPasses += 1
        pool.releaseAll(from: &tensors, except: Set(graph.inputs.map(\.index)))
        for input in graph.inputs {
            tensors[input.index] = feeds[graph.values[input.index].blob]
        }
        let n = graph.nodes.count
        for (i, node) in graph.nodes.enumerated() where !isInputNode[i] {
            let ins = node.inputs.map { tensors[$0.index]! }
            let outs = node.outputs.map { v -> Tensor in
                let t = pool.take(shapes[v.index])
                tensors[v.index] = t
                return t
            }
            try timed(&forwardTimes, layer: i) { try layers[i].forward(ins, outs, context) }
            if let plan {
                for v in Set(node.inputs + node.outputs) where plan.lastUse[v.index] <= i && plan.lastUse[v.index] < n {
                    release(v)
                }
            }
        }
    }

    /// Runs one layer's step; when profiling, adds its wall time (ms) to
    /// `times[layer]` (one slot per node).
    private func timed(_ times: inout [Double], layer: Int, _ step: () throws -> Void) rethrows {
        guard profiling else { return try step() }
        if times.count != graph.nodes.count { times = Array(repeating: 0, count: graph.nodes.count) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        try step()
        times[layer] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
    }

    private func release(_ v: ValueID) {
        guard let t = tensors[v.index] else { return }
        tensors[v.index] = nil
        if !graph.inputs.contains(v) { pool.give(t) }
    }

    // MARK: - Backward

    /// Plans (if needed) and runs the backward pass from `seeds`, returning the
    /// gradients of `gradientsFor`. Parameter gradients accumulate in
    /// `paramGrads` when `paramGrads` is true.
    public func backward(seeds: [ValueID: Tensor], gradientsFor wanted: [ValueID],
                         paramGrads: Bool = false) throws -> [ValueID: Tensor] {
        let plan = try self.plan(seeds: Array(seeds.keys), gradientsFor: wanted, paramGrads: paramGrads,
                                 keep: Array(0..<graph.values.count).map(ValueID.init))
        return try backward(seeds: seeds, plan: plan)
    }

    /// Runs the backward pass of `plan` (the forward pass must have used it or
    /// kept every value).
    public func backward(seeds: [ValueID: Tensor], plan: BackwardPlan) throws -> [ValueID: Tensor] {
        let nn = graph.nodes.count
        var grads = [Tensor?](repeating: nil, count: graph.values.count)
        for (v, g) in seeds {
            guard g.count == shapes[v.index].count else {
                throw RuntimeError.input("gradient for '\(graph.values[v.index].blob)' has shape \(g.shape), the blob has \(shapes[v.index])")
            }
            let t = pool.take(shapes[v.index])
            t.copy(from: g)
            grads[v.index] = t
        }
        if plan.paramGrads { allocateParamGrads() }
        for i in stride(from: nn - 1, through: 0, by: -1) where plan.backwardNodes[i] {
            let node = graph.nodes[i]
            let outGrads = node.outputs.map { v -> Tensor in
                if let g = grads[v.index] { return g }
                let z = pool.take(shapes[v.index]); z.zero()
                grads[v.index] = z
                return z
            }
            // Inputs that already hold a gradient (a later reader of a blob
            // with fan-out) get a temporary, added afterwards.
            var inGrads: [Tensor?] = []
            var pending: [(ValueID, Tensor)] = []
            var seenThisNode = Set<ValueID>()
            for (k, v) in node.inputs.enumerated() {
                let allowed = k >= node.propagateDown.count || node.propagateDown[k]
                guard allowed && plan.needsGrad[v.index] else { inGrads.append(nil); continue }
                let t = pool.take(shapes[v.index])
                if grads[v.index] != nil || seenThisNode.contains(v) {
                    pending.append((v, t))
                } else {
                    grads[v.index] = t
                }
                seenThisNode.insert(v)
                inGrads.append(t)
            }
            let pg: [Tensor?] = layers[i].parameters.indices.map { j in
                plan.paramGrads && j < paramSpecs[i].count && paramSpecs[i][j].lrMult != 0 ? paramGrads[i][j] : nil
            }
            // Values the plan released because this layer's backward does not
            // read them (see `backwardUses`) get a NaN-filled stand-in of the
            // right shape, so a layer that reads one anyway shows up as NaN
            // gradients in the tests instead of reading freed memory.
            var standIns: [Tensor] = []
            func present(_ v: ValueID) -> Tensor {
                if let t = tensors[v.index] { return t }
                let t = pool.take(shapes[v.index])
                t.fill(.nan)
                standIns.append(t)
                return t
            }
            let pass = BackwardPass(inputs: node.inputs.map(present), outputs: node.outputs.map(present),
                                    outputGrads: outGrads, inputGrads: inGrads, paramGrads: pg)
            try timed(&backwardTimes, layer: i) { try layers[i].backward(pass, context) }
            for t in standIns { pool.give(t) }
            for (v, t) in pending { grads[v.index]!.add(t); pool.give(t) }
            // Free what no earlier step needs.
            let step = 2 * nn - 1 - i
            for v in node.outputs where plan.gradLastUse[v.index] <= step {
                if let g = grads[v.index] { pool.give(g); grads[v.index] = nil }
            }
            for v in Set(node.inputs + node.outputs) where plan.lastUse[v.index] <= step { release(v) }
        }
        var result: [ValueID: Tensor] = [:]
        for v in plan.wanted {
            if let g = grads[v.index] {
                result[v] = g.copy()
            } else {
                result[v] = Tensor(shape: shapes[v.index], repeating: 0)
            }
        }
        for case let g? in grads { pool.give(g) }
        return result
    }

    /// Allocates (once) and keeps parameter-gradient tensors; shared
    /// parameters share one gradient tensor.
    private func allocateParamGrads() {
        var byStorage: [ObjectIdentifier: Tensor] = [:]
        for i in layers.indices where paramGrads[i].count != layers[i].parameters.count {
            paramGrads[i] = layers[i].parameters.map { p in
                if let g = byStorage[ObjectIdentifier(p)] { return g }
                let g = Tensor(shape: p.shape, repeating: 0)
                byStorage[ObjectIdentifier(p)] = g
                return g
            }
        }
    }

    public func zeroParamGrads() { for gs in paramGrads { for g in gs { g.zero() } } }

    /// The current parameters as weight blobs per node (for writing a caffemodel).
    public func exportWeights() -> Graph {
        var g = graph
        for i in g.nodes.indices {
            g.nodes[i].weights = layers[i].parameters.map { WeightBlob(shape: $0.shape, data: $0.array) }
        }
        return g
    }

    /// Bytes held by activations, gradients and pooled buffers right now.
    public var activationBytes: Int { pool.totalBytes }
}

/// Recycles storages between values with disjoint lifetimes.
struct StoragePool {
    private var free: [Storage] = []
    private(set) var totalBytes = 0

    mutating func take(_ shape: Shape) -> Tensor {
        let n = shape.count
        // Best fit among free storages; else the largest, grown.
        var best: Int? = nil
        for (k, s) in free.enumerated() where s.capacity >= n {
            if best == nil || s.capacity < free[best!].capacity { best = k }
        }
        if let b = best { return Tensor(shape: shape, storage: free.remove(at: b)) }
        let s = Storage(capacity: n)
        totalBytes += s.capacity * 4
        return Tensor(shape: shape, storage: s)
    }

    mutating func give(_ t: Tensor) {
        if !free.contains(where: { $0 === t.storage }) { free.append(t.storage) }
    }

    mutating func releaseAll(from tensors: inout [Tensor?], except callerOwned: Set<Int>) {
        for i in tensors.indices {
            if let t = tensors[i] { tensors[i] = nil; if !callerOwned.contains(i) { give(t) } }
        }
    }
}
