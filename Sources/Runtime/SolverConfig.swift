import GraphIR

/// The settings of a Caffe SolverParameter that the training loop uses,
/// read and checked once. Which nets to train is the caller's business
/// (file paths belong to the tool); this is the arithmetic and the schedule.
public struct SolverConfig: Sendable {
    /// Caffe's solver types (`type: "Adam"` or the legacy `solver_type: ADAM`).
    public enum Method: String, Sendable, CaseIterable {
        case sgd = "SGD", nesterov = "Nesterov", adaGrad = "AdaGrad", rmsProp = "RMSProp"
        case adaDelta = "AdaDelta", adam = "Adam"

        /// History blobs per learnable blob: AdaDelta and Adam keep a second
        /// moment after the first (Caffe appends them to `history_`).
        public var historyPerBlob: Int { self == .adaDelta || self == .adam ? 2 : 1 }
    }
    public enum Regularization: String, Sendable { case l2 = "L2", l1 = "L1" }

    public var method: Method
    public var learningRate: LearningRatePolicy
    public var momentum: Float
    public var momentum2: Float
    public var delta: Float
    public var rmsDecay: Float
    public var weightDecay: Float
    public var regularization: Regularization
    /// Global L2 norm limit of all learnable gradients; < 0 disables.
    public var clipGradients: Float
    public var iterSize: Int
    public var maxIter: Int
    public var display: Int
    public var averageLoss: Int
    public var testIter: [Int]
    public var testInterval: Int
    public var testInitialization: Bool
    public var testComputeLoss: Bool
    public var snapshot: Int
    public var snapshotPrefix: String
    public var snapshotAfterTrain: Bool
    /// < 0: a fresh seed per run (Caffe's default -1).
    public var randomSeed: Int64

    /// Reads a SolverParameter tree (`CaffeModel.readPrototxt(path, schema:
    /// CaffeSchemaRegistry.shared.solverParameter)`); fields that are unset
    /// take Caffe's defaults.
    public init(_ p: ParamMessage) throws {
        func read<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as ParamError { throw SolverError.parameter(e) }
        }
        func bad(_ field: String, _ message: String) -> SolverError {
            .invalid(field: field, location: p.location(of: field), message)
        }

        // Solver type: the string field, or the legacy enum (Caffe's UpgradeSolverType).
        var typeName = try read { try p.string("type", default: "SGD") }
        if p.has("solver_type") {
            if p.has("type") {
                throw bad("solver_type", "and 'type' are both set; give only one (solver_type is the legacy form)")
            }
            let legacy = try read { try p.enumName("solver_type", default: "SGD") }
            let names = ["SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad", "RMSPROP": "RMSProp",
                         "ADADELTA": "AdaDelta", "ADAM": "Adam", "0": "SGD", "1": "Nesterov", "2": "AdaGrad",
                         "3": "RMSProp", "4": "AdaDelta", "5": "Adam"]
            guard let n = names[legacy.uppercased()] else {
                throw bad("solver_type", "'\(legacy)' is not a solver type; known: SGD, NESTEROV, ADAGRAD, RMSPROP, ADADELTA, ADAM")
            }
            typeName = n
        }
        guard let m = Method.allCases.first(where: { $0.rawValue.lowercased() == typeName.lowercased() }) else {
            throw bad("type", "'\(typeName)' is not a solver type; known: \(Method.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        method = m
        learningRate = try LearningRatePolicy(solver: p)
        momentum = try read { try p.float("momentum", default: 0) }
        momentum2 = try read { try p.float("momentum2", default: 0.999) }
        delta = try read { try p.float("delta", default: 1e-8) }
        rmsDecay = try read { try p.float("rms_decay", default: 0.99) }
        weightDecay = try read { try p.float("weight_decay", default: 0) }
        let reg = try read { try p.string("regularization_type", default: "L2") }
        guard let r = Regularization(rawValue: reg) else {
            throw bad("regularization_type", "'\(reg)' is unknown; use \"L2\" or \"L1\"")
        }
        regularization = r
        clipGradients = try read { try p.float("clip_gradients", default: -1) }
        iterSize = try read { try p.int("iter_size", default: 1) }
        maxIter = try read { try p.int("max_iter", default: 0) }
        display = try read { try p.int("display", default: 0) }
        averageLoss = try read { try p.int("average_loss", default: 1) }
        testIter = try read { try p.ints("test_iter") }
        testInterval = try read { try p.int("test_interval", default: 0) }
        testInitialization = try read { try p.bool("test_initialization", default: true) }
        testComputeLoss = try read { try p.bool("test_compute_loss", default: false) }
        snapshot = try read { try p.int("snapshot", default: 0) }
        snapshotPrefix = try read { try p.string("snapshot_prefix", default: "") }
        snapshotAfterTrain = try read { try p.bool("snapshot_after_train", default: true) }
        randomSeed = Int64(try read { try p.int("random_seed", default: -1) })

        if p.has("snapshot_format"), try read({ try p.enumName("snapshot_format") }) == "HDF5" {
            throw bad("snapshot_format", "HDF5 is not supported; remove it to write binary protos (.caffemodel, .solverstate)")
        }
        guard iterSize >= 1 else { throw bad("iter_size", "must be >= 1, got \(iterSize)") }
        guard averageLoss >= 1 else { throw bad("average_loss", "must be >= 1, got \(averageLoss)") }
        guard maxIter >= 0 else { throw bad("max_iter", "must be >= 0, got \(maxIter)") }
        guard display >= 0, snapshot >= 0, testInterval >= 0 else {
            let f = display < 0 ? "display" : snapshot < 0 ? "snapshot" : "test_interval"
            throw bad(f, "must be >= 0")
        }
        if let neg = testIter.first(where: { $0 < 0 }) { throw bad("test_iter", "must be >= 0, got \(neg)") }
        if snapshot > 0 && !p.has("snapshot_prefix") {
            throw bad("snapshot", "is set but snapshot_prefix is not; add snapshot_prefix: \"path/name\" (files become name_iter_N.caffemodel)")
        }
        // Caffe's constructor checks of the adaptive solvers.
        if (method == .adaGrad || method == .rmsProp) && momentum != 0 {
            throw bad("momentum", "cannot be used with \(method.rawValue); remove it (got \(momentum))")
        }
        if method == .rmsProp && !(rmsDecay >= 0 && rmsDecay < 1) {
            throw bad("rms_decay", "must be in [0, 1), got \(rmsDecay)")
        }
        if !testIter.isEmpty && testInterval <= 0 {
            throw bad("test_interval", "must be > 0 when test_iter is given (got \(testInterval))")
        }
    }
}
