import GraphIR

/// Caffe's `SolverState` message: where training stopped and the solver's
/// history blobs (momentum, or Adam's two moments: the N first moments, then
/// the N second moments, in learnable-parameter order). A `.solverstate`
/// file is this message in protobuf binary; `learned_net` names the
/// `.caffemodel` written with it.
///
/// Runtime knows no file format: `message(schema:)` and `init(message:)`
/// convert to and from a `ParamMessage` of the `caffe.SolverState` schema,
/// which the importer encodes and decodes.
public struct SolverState: Sendable {
    public var iter: Int
    public var currentStep: Int
    public var learnedNet: String
    public var history: [WeightBlob]

    public init(iter: Int, currentStep: Int, learnedNet: String, history: [WeightBlob]) {
        self.iter = iter; self.currentStep = currentStep; self.learnedNet = learnedNet; self.history = history
    }

    /// The state as a tree of `schema` (caffe.SolverState); the nested
    /// BlobProto and BlobShape schemas come from its field descriptions.
    public func message(schema: ParamSchema) -> ParamMessage {
        var m = ParamMessage(schema: schema)
        m.append("iter", .int(Int64(iter)))
        if !learnedNet.isEmpty { m.append("learned_net", .string(learnedNet)) }
        let blobSchema = schema.field("history")?.messageSchema()
        let shapeSchema = blobSchema?.field("shape")?.messageSchema()
        for h in history {
            var shape = ParamMessage(schema: shapeSchema)
            for d in h.shape.dims { shape.append("dim", .int(Int64(d))) }
            var blob = ParamMessage(schema: blobSchema)
            blob.append("shape", .message(shape))
            blob.append("data", .floatArray(h.data))
            m.append("history", .message(blob))
        }
        m.append("current_step", .int(Int64(currentStep)))
        return m
    }

    /// Reads a decoded SolverState tree; `file` names it in errors.
    public init(message m: ParamMessage, file: String) throws {
        do {
            iter = try m.int("iter", default: 0)
            currentStep = try m.int("current_step", default: 0)
            learnedNet = try m.string("learned_net", default: "")
            history = try m.messages("history").enumerated().map { k, b in
                let shape: Shape
                if b.has("shape") {
                    shape = Shape(try b.message("shape").ints("dim"))
                } else if b.has("num") || b.has("channels") || b.has("height") || b.has("width") {
                    shape = Shape([try b.int("num", default: 1), try b.int("channels", default: 1),
                                   try b.int("height", default: 1), try b.int("width", default: 1)])
                } else {
                    shape = Shape([])
                }
                var data = try b.floats("data")
                if data.isEmpty { data = try b.floats("double_data") }
                guard let count = shape.checkedCount, count == data.count || (shape.dims.isEmpty && !data.isEmpty) else {
                    throw SolverError.state(file: file, "history blob \(k) has shape \(shape) but holds \(data.count) values; the file is damaged")
                }
                return WeightBlob(shape: shape.dims.isEmpty ? Shape([data.count]) : shape, data: data)
            }
        } catch let e as ParamError {
            throw SolverError.state(file: file, "is not a solver state: \(e.description)")
        }
        guard iter >= 0, currentStep >= 0 else {
            throw SolverError.state(file: file, "has a negative iteration (\(iter)) or step (\(currentStep)); the file is damaged")
        }
    }
}
