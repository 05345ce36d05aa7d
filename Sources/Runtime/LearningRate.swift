import Foundation
import GraphIR

/// Caffe's learning-rate policies (`SGDSolver::GetLearningRate`), as a value.
///
/// With `base` = base_lr, `it` = the iteration about to be applied (0-based):
///
///     fixed      base
///     step       base * gamma ^ floor(it / stepsize)
///     exp        base * gamma ^ it
///     inv        base * (1 + gamma * it) ^ (-power)
///     multistep  base * gamma ^ s, where s counts the stepvalues passed
///     poly       base * (1 - it / max_iter) ^ power
///     sigmoid    base * 1 / (1 + exp(-gamma * (it - stepsize)))
///
/// `step` and `multistep` keep Caffe's `current_step` (stored in the
/// solverstate). As in Caffe, multistep advances it by at most one step per
/// call (`if`, not `while`), so it catches up one step per iteration after a
/// resume from a state that lacks it. Integer powers (step, exp, multistep)
/// are taken in double precision, as C++ promotes `pow(float, int)`; inv,
/// poly and sigmoid use the float overloads, as Caffe does.
public struct LearningRatePolicy: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case fixed, step, exp, inv, multistep, poly, sigmoid
    }

    public var kind: Kind
    public var baseLR: Float
    public var gamma: Float
    public var power: Float
    public var stepsize: Int
    public var stepvalues: [Int]
    public var maxIter: Int

    public init(kind: Kind, baseLR: Float, gamma: Float = 0, power: Float = 0, stepsize: Int = 0,
                stepvalues: [Int] = [], maxIter: Int = 0) {
        self.kind = kind; self.baseLR = baseLR; self.gamma = gamma; self.power = power
        self.stepsize = stepsize; self.stepvalues = stepvalues; self.maxIter = maxIter
    }

    /// The rate for iteration `iter`; updates `currentStep` for step and multistep.
    public func rate(iter: Int, currentStep: inout Int) -> Float {
        let base = Double(baseLR), g = Double(gamma)
        switch kind {
        case .fixed:
            return baseLR
        case .step:
            currentStep = stepsize > 0 ? iter / stepsize : 0
            return Float(base * Foundation.pow(g, Double(currentStep)))
        case .exp:
            return Float(base * Foundation.pow(g, Double(iter)))
        case .inv:
            // Caffe: pow(Dtype(1) + gamma * iter, -power), float overload.
            let b = Float(1) + gamma * Float(iter)
            return baseLR * Foundation.powf(b, -power)
        case .multistep:
            if currentStep < stepvalues.count && iter >= stepvalues[currentStep] {
                currentStep += 1
            }
            return Float(base * Foundation.pow(g, Double(currentStep)))
        case .poly:
            // Caffe: pow(Dtype(1.) - Dtype(iter) / Dtype(max_iter), power) in float.
            let frac = Float(1) - Float(iter) / Float(maxIter)
            return baseLR * Foundation.powf(frac, power)
        case .sigmoid:
            let e = Foundation.expf(-gamma * (Float(iter) - Float(stepsize)))
            return baseLR * (Float(1) / (Float(1) + e))
        }
    }

    /// Reads `lr_policy` and the fields it uses from a SolverParameter tree,
    /// checking what Caffe would crash on (a step policy without stepsize).
    public init(solver p: ParamMessage) throws {
        func read<T>(_ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as ParamError { throw SolverError.parameter(e) }
        }
        let name = try read { try p.string("lr_policy", default: "") }
        guard !name.isEmpty else {
            throw SolverError.invalid(field: "lr_policy", location: p.location(of: "lr_policy"),
                "is not set; choose one of \(Kind.allCases.map(\.rawValue).joined(separator: ", ")) (Caffe has no default)")
        }
        guard let kind = Kind(rawValue: name) else {
            throw SolverError.invalid(field: "lr_policy", location: p.location(of: "lr_policy"),
                "'\(name)' is not a learning rate policy; known: \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.kind = kind
        baseLR = try read { try p.float("base_lr", default: 0) }
        gamma = try read { try p.float("gamma", default: 0) }
        power = try read { try p.float("power", default: 0) }
        stepsize = try read { try p.int("stepsize", default: 0) }
        stepvalues = try read { try p.ints("stepvalue") }
        maxIter = try read { try p.int("max_iter", default: 0) }
        switch kind {
        case .step where stepsize <= 0:
            throw SolverError.invalid(field: "stepsize", location: p.location(of: "stepsize"),
                                      "must be > 0 for lr_policy \"step\" (the rate drops by gamma every stepsize iterations)")
        case .multistep where stepvalues.isEmpty:
            throw SolverError.invalid(field: "stepvalue", location: p.location(of: "lr_policy"),
                                      "lr_policy \"multistep\" needs at least one stepvalue")
        case .multistep where zip(stepvalues, stepvalues.dropFirst()).contains { $0 > $1 }:
            throw SolverError.invalid(field: "stepvalue", location: p.location(of: "stepvalue"),
                                      "must be in increasing order, got \(stepvalues)")
        case .poly where maxIter <= 0:
            throw SolverError.invalid(field: "max_iter", location: p.location(of: "max_iter"),
                                      "must be > 0 for lr_policy \"poly\" (the rate falls to 0 at max_iter)")
        default: break
        }
    }
}

/// A solver file that cannot be used: the field, where it is, what is wrong.
public enum SolverError: Error, CustomStringConvertible, Sendable {
    case invalid(field: String, location: SourceLocation?, String)
    case parameter(ParamError)
    case state(file: String, String)
    case training(String)

    public var description: String {
        switch self {
        case let .invalid(field, loc, message):
            return "\(loc.map { "\($0): " } ?? "")solver field '\(field)' \(message)"
        case let .parameter(e):
            return "solver: \(e.description)"
        case let .state(file, message):
            return "\(file): \(message)"
        case let .training(message):
            return message
        }
    }
}
