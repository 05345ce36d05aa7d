import Foundation
import GraphIR

/// `.solverstate` files: Caffe's SolverState message in protobuf binary.
/// History blobs are BlobProtos, read by the same `weightBlob` as a
/// caffemodel's weights (so the legacy num/channels/height/width header
/// means what it means there: an unset dimension is 0, as in caffe.proto).
extension CaffeModel {
    /// The state in a decoded `caffe.SolverState` tree; `file` names it in errors.
    public static func solverState(_ m: ParamMessage, file: String) throws -> SolverState {
        let state: SolverState
        do {
            let history = try m.messages("history").enumerated().map { k, b in
                try weightBlob(b, what: "history blob \(k)", file: file)
            }
            state = SolverState(iter: try m.int("iter", default: 0), currentStep: try m.int("current_step", default: 0),
                                learnedNet: try m.string("learned_net", default: ""), history: history)
        } catch let e as ParamError {
            throw ImportError.file(file, "is not a solver state: \(e.description)")
        }
        guard state.iter >= 0, state.currentStep >= 0 else {
            throw ImportError.file(file, "has a negative iteration (\(state.iter)) or step (\(state.currentStep)); the file is damaged")
        }
        return state
    }

    /// The state as a `caffe.SolverState` tree (shapes as BlobShape).
    public static func solverStateMessage(_ state: SolverState) throws -> ParamMessage {
        guard let schema = CaffeSchemaRegistry.shared.schema("caffe.SolverState") else {
            throw ImportError.located("the caffe.SolverState schema is missing from this build")
        }
        var m = ParamMessage(schema: schema)
        m.append("iter", .int(Int64(state.iter)))
        if !state.learnedNet.isEmpty { m.append("learned_net", .string(state.learnedNet)) }
        let blobSchema = schema.field("history")?.messageSchema()
        let shapeSchema = blobSchema?.field("shape")?.messageSchema()
        for h in state.history {
            var shape = ParamMessage(schema: shapeSchema)
            for d in h.shape.dims { shape.append("dim", .int(Int64(d))) }
            var blob = ParamMessage(schema: blobSchema)
            blob.append("shape", .message(shape))
            blob.append("data", .floatArray(h.data))
            m.append("history", .message(blob))
        }
        m.append("current_step", .int(Int64(state.currentStep)))
        return m
    }

    /// Reads a `.solverstate` file.
    public static func readSolverState(_ path: String) throws -> SolverState {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImportError.file(path, "\(FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file") (the solver state to resume from)")
        }
        return try solverState(try decodeBinary([UInt8](data), type: "caffe.SolverState", file: path), file: path)
    }

    /// Writes a `.solverstate` file (atomically replaced).
    public static func writeSolverState(_ state: SolverState, to path: String) throws {
        try writeAtomically(try encodeBinary(solverStateMessage(state)), to: path)
    }

    /// The caffemodel a state's `learned_net` names: as given (relative to
    /// the current folder, as Caffe resolves it), else the file of that name
    /// next to the state; nil when the state names none.
    public static func learnedNetPath(of state: SolverState, statePath: String) throws -> String? {
        guard !state.learnedNet.isEmpty else { return nil }
        if FileManager.default.fileExists(atPath: state.learnedNet) { return state.learnedNet }
        let beside = URL(fileURLWithPath: statePath).deletingLastPathComponent()
            .appendingPathComponent(URL(fileURLWithPath: state.learnedNet).lastPathComponent).path
        guard FileManager.default.fileExists(atPath: beside) else {
            throw ImportError.file(statePath, "its weights '\(state.learnedNet)' (learned_net) are not found, neither from the current folder nor next to the state")
        }
        return beside
    }

    /// Replaces `path` by `bytes` through a temporary file beside it, so an
    /// interrupted write leaves the old file.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes)) else {
            throw ImportError.file(path, "cannot be written (check the folder exists and is writable)")
        }
        do {
            if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
            try FileManager.default.moveItem(atPath: tmp, toPath: path)
        } catch {
            throw ImportError.file(path, "cannot be written: \(error.localizedDescription)")
        }
    }
}
