import GraphIR

/// Training or inference; decides e.g. whether Dropout drops.
public enum Phase: String, Sendable { case train = "TRAIN", test = "TEST" }

/// What a layer factory gets: the graph node (name, type, parameter tree,
/// loaded weights) and the shapes its inputs have at set-up time.
public struct LayerContext: Sendable {
    public let node: Node
    public let inputShapes: [Shape]
    public let phase: Phase

    public init(node: Node, inputShapes: [Shape], phase: Phase = .test) {
        self.node = node; self.inputShapes = inputShapes; self.phase = phase
    }

    public var name: String { node.name }
    public var type: String { node.type }
    /// The whole LayerParameter tree; `param("convolution_param")` for one part.
    public var params: ParamMessage { node.params }
    public func param(_ name: String) -> ParamMessage { node.params.message(name) }

    /// An error about this layer, with its name, type and source position.
    public func error(_ message: String) -> RuntimeError {
        .layer(name: node.name, type: node.type, message: message, location: node.location)
    }

    /// Runs `body`, turning parameter errors into layer errors.
    public func reading<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as ParamError {
            // The location goes in the error's own slot, not twice in the text.
            throw RuntimeError.layer(name: node.name, type: node.type, message: "field '\(e.field)': \(e.message)",
                                     location: e.location ?? node.location)
        }
    }

    /// Checks the number of inputs (Caffe's ExactNumBottomBlobs & co).
    public func expectInputs(_ range: ClosedRange<Int>) throws {
        guard range.contains(inputShapes.count) else {
            let want = range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound)...\(range.upperBound)"
            throw error("takes \(want) input blob(s) but has \(inputShapes.count)")
        }
    }
    public func expectInputs(_ n: Int) throws { try expectInputs(n...n) }
    public func expectOutputs(_ range: ClosedRange<Int>) throws {
        guard range.contains(node.outputs.count) else {
            throw error("produces \(range) output blob(s) but has \(node.outputs.count) tops")
        }
    }
    public func expectOutputs(_ n: Int) throws { try expectOutputs(n...n) }
    public var outputCount: Int { node.outputs.count }
}

/// Which of its forward values a layer's backward reads, so the executor can
/// free the others early.
public struct BackwardUses: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let inputs = BackwardUses(rawValue: 1)
    public static let outputs = BackwardUses(rawValue: 2)
    public static let all: BackwardUses = [.inputs, .outputs]
}

/// How convolution-like layers compute (ExecutionContext.convolution).
public enum ConvolutionAlgorithm: String, Sendable, CaseIterable {
    /// Winograd where the layer's shape makes it pay, else the direct GEMM.
    case automatic
    /// Always im2col + GEMM (col2im): Caffe's own arithmetic.
    case direct
    /// Winograd wherever the kernel allows it, however small the layer.
    case winograd
}

/// Per-call state the executor lends to layers: scratch memory, the phase,
/// the random generator (Dropout in training), the convolution algorithm and
/// the compute thread count. No global state.
public final class ExecutionContext: @unchecked Sendable {
    public var phase: Phase
    public var rng: SplitMix64
    public var convolution: ConvolutionAlgorithm = .automatic
    /// Threads the layers' kernels and GEMMs split their work into (at least
    /// 1; `--threads`, else `defaultComputeThreads`): pass it on to `gemm`.
    /// Some kernels' sums depend on it (per-thread partial sums), so a run is
    /// reproduced with the same count.
    public let threads: Int
    private var scratch: [Storage] = []

    public init(phase: Phase = .test, seed: UInt64 = 0, threads: Int = defaultComputeThreads) {
        self.phase = phase
        self.rng = SplitMix64(seed: seed)
        self.threads = max(1, threads)
    }

    /// A scratch buffer of at least `count` floats, valid until the layer
    /// returns. Buffers needed at the same time must be different ones.
    public func scratch(_ count: Int, _ buffer: ScratchBuffer) -> UnsafeMutablePointer<Float> {
        scratch(count, slot: buffer.index)
    }

    /// `scratch(_:_:)` by number (the form plugins use): `slot` distinguishes
    /// buffers needed at the same time.
    public func scratch(_ count: Int, slot: Int = 0) -> UnsafeMutablePointer<Float> {
        while scratch.count <= slot { scratch.append(Storage(capacity: 1)) }
        scratch[slot].reserve(count)
        return scratch[slot].pointer
    }
    /// Bytes held in scratch buffers (for memory reports).
    public var scratchBytes: Int { scratch.reduce(0) { $0 + $1.capacity * 4 } }
}

/// One of the execution context's scratch buffers, named by what it holds.
/// Names that share an index share memory: give buffers that a layer needs
/// at the same time different indices (`ScratchBuffer(0)`, `(1)`, ...), and
/// name them where they are used (`static let columns = ScratchBuffer(0)`).
public struct ScratchBuffer: Hashable, Sendable {
    public let index: Int
    public init(_ index: Int) {
        precondition(index >= 0, "scratch buffer indices start at 0")
        self.index = index
    }
}

/// The tensors of one backward call.
///
/// `outputGrads[i]` is dJ/d(output i). A non-nil `inputGrads[i]` must be
/// *overwritten* with dJ/d(input i); nil means nobody needs it. A non-nil
/// `paramGrads[j]` must be *accumulated into* (+=), as Caffe does, so shared
/// weights and `iter_size` add up.
public struct BackwardPass {
    public var inputs: [Tensor]
    public var outputs: [Tensor]
    public var outputGrads: [Tensor]
    public var inputGrads: [Tensor?]
    public var paramGrads: [Tensor?]
    public init(inputs: [Tensor], outputs: [Tensor], outputGrads: [Tensor], inputGrads: [Tensor?], paramGrads: [Tensor?]) {
        self.inputs = inputs; self.outputs = outputs; self.outputGrads = outputGrads
        self.inputGrads = inputGrads; self.paramGrads = paramGrads
    }
}

/// One layer instance of a net: shape inference, forward and backward.
///
/// A layer is created for concrete input shapes by its factory (which reads
/// and checks its parameters); `reshape` is called again whenever the input
/// shapes change (e.g. a new batch size). Parameter tensors are owned by the
/// net and assigned to `parameters` before the first forward.
public protocol Layer: AnyObject {
    /// Shapes of the learnable blobs, in Caffe's order (empty if none).
    var parameterShapes: [Shape] { get }
    /// Filler of each learnable blob (`weight_filler`, `bias_filler`), used
    /// when no caffemodel provides the values.
    var parameterFillers: [ParamMessage?] { get }
    /// The learnable tensors, assigned by the net.
    var parameters: [Tensor] { get set }
    /// Indices of parameter blobs that are running statistics the layer
    /// updates itself (BatchNorm's mean, variance and count), not learned:
    /// the net gives them no gradient (lr_mult and decay_mult 0, as Caffe
    /// forces) and refuses a `param { lr_mult }` other than 0 for them.
    var statisticParameters: Set<Int> { get }

    /// Output shapes for these input shapes. Throws when they do not fit.
    func reshape(_ inputs: [Shape]) throws -> [Shape]
    func forward(_ inputs: [Tensor], _ outputs: [Tensor], _ ctx: ExecutionContext) throws
    func backward(_ pass: BackwardPass, _ ctx: ExecutionContext) throws

    /// False for layers Caffe cannot differentiate (ArgMax, Threshold, ...).
    var hasBackward: Bool { get }
    /// What `backward` reads besides the output gradients.
    var backwardUses: BackwardUses { get }
    /// Multiply-adds of one forward pass at the current shapes.
    var macs: Int { get }
    /// True for layers whose output is a loss (default loss weight 1).
    var isLoss: Bool { get }
}

extension Layer {
    public var parameterShapes: [Shape] { [] }
    public var parameterFillers: [ParamMessage?] { parameterShapes.map { _ in nil } }
    public var statisticParameters: Set<Int> { [] }
    public var hasBackward: Bool { true }
    public var backwardUses: BackwardUses { .all }
    public var macs: Int { 0 }
    public var isLoss: Bool { false }
}

/// Base class for layers without parameters, so each layer only writes what
/// is its own. Layers with parameters may subclass it too.
open class LayerBase {
    public let name: String
    public let type: String
    public var parameters: [Tensor] = []
    public init(base ctx: LayerContext) { name = ctx.name; type = ctx.type }

    public func error(_ message: String) -> RuntimeError {
        .layer(name: name, type: type, message: message, location: nil)
    }
}
