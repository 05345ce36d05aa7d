/// Caffe's `SolverState` message: where training stopped and the solver's
/// history blobs (momentum, or Adam's two moments: the N first moments, then
/// the N second moments, in learnable-parameter order). A `.solverstate`
/// file is this message in protobuf binary; `learned_net` names the
/// `.caffemodel` written with it.
///
/// A plain value: the importer reads and writes the file
/// (`CaffeModel.readSolverState`, `writeSolverState`), the runtime's
/// `Solver` makes and restores it.
public struct SolverState: Sendable {
    public var iter: Int
    public var currentStep: Int
    public var learnedNet: String
    public var history: [WeightBlob]

    public init(iter: Int, currentStep: Int, learnedNet: String, history: [WeightBlob]) {
        self.iter = iter; self.currentStep = currentStep; self.learnedNet = learnedNet; self.history = history
    }
}
