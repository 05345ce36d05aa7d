import Foundation
import Testing
import GraphIR
import Runtime

/// Every lr_policy against Caffe's formulas (SGDSolver::GetLearningRate).
struct LearningRateTests {
    func policy(_ text: String) throws -> LearningRatePolicy {
        try TrainingSupport.config("type: \"SGD\" " + (text.contains("max_iter") ? "" : "max_iter: 1000 ") + text).learningRate
    }

    /// Rates for iterations 0..<n with a running current_step, as the solver calls it.
    func rates(_ p: LearningRatePolicy, _ n: Int, from start: Int = 0, step: Int = 0) -> ([Float], Int) {
        var s = step
        return ((start..<(start + n)).map { p.rate(iter: $0, currentStep: &s) }, s)
    }

    func close(_ a: Float, _ b: Double, _ tol: Double = 1e-6) -> Bool {
        abs(Double(a) - b) <= tol * max(1e-12, abs(b))
    }

    @Test func fixed() throws {
        let p = try policy("base_lr: 0.01 lr_policy: \"fixed\"")
        #expect(rates(p, 50).0.allSatisfy { $0 == 0.01 })
    }

    @Test func step() throws {
        let p = try policy("base_lr: 0.1 lr_policy: \"step\" gamma: 0.5 stepsize: 7")
        var s = 0
        for it in 0..<60 {
            let r = p.rate(iter: it, currentStep: &s)
            let ref = 0.1 * pow(0.5, Double(it / 7))
            #expect(close(r, ref), "iter \(it): \(r) vs \(ref)")
            #expect(s == it / 7)
        }
    }

    @Test func exp() throws {
        let p = try policy("base_lr: 0.2 lr_policy: \"exp\" gamma: 0.97")
        for (it, r) in rates(p, 100).0.enumerated() {
            #expect(close(r, 0.2 * pow(Double(Float(0.97)), Double(it))), "iter \(it)")
        }
    }

    @Test func inv() throws {
        let p = try policy("base_lr: 0.01 lr_policy: \"inv\" gamma: 0.0001 power: 0.75")
        for (it, r) in rates(p, 300).0.enumerated() {
            #expect(close(r, 0.01 * pow(1 + 0.0001 * Double(it), -0.75), 2e-6), "iter \(it)")
        }
    }

    @Test func multistep() throws {
        let p = try policy("base_lr: 1 lr_policy: \"multistep\" gamma: 0.1 stepvalue: 3 stepvalue: 5 stepvalue: 9")
        let (r, s) = rates(p, 12)
        let steps = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3]
        for it in 0..<12 { #expect(close(r[it], pow(0.1, Double(steps[it])), 1e-6), "iter \(it): \(r[it])") }
        #expect(s == 3)
        // Caffe advances at most one step per call: resuming at iteration 10
        // with current_step 0 catches up one step per iteration.
        let (late, _) = rates(p, 3, from: 10, step: 0)
        #expect(close(late[0], 0.1, 1e-6) && close(late[1], 0.01, 1e-6) && close(late[2], 0.001, 1e-6), "\(late)")
    }

    @Test func poly() throws {
        let p = try policy("base_lr: 0.05 lr_policy: \"poly\" power: 2 max_iter: 40")
        for (it, r) in rates(p, 41).0.enumerated() {
            #expect(abs(Double(r) - 0.05 * pow(1 - Double(it) / 40, 2)) <= 1e-8, "iter \(it)")
        }
    }

    @Test func sigmoid() throws {
        let p = try policy("base_lr: 0.5 lr_policy: \"sigmoid\" gamma: -0.3 stepsize: 10")
        for (it, r) in rates(p, 40).0.enumerated() {
            #expect(close(r, 0.5 / (1 + Foundation.exp(0.3 * Double(it - 10))), 2e-6), "iter \(it)")
        }
    }

    @Test func badPolicies() throws {
        func message(_ text: String) -> String {
            do { _ = try TrainingSupport.config(text); return "" } catch { return "\(error)" }
        }
        #expect(message("base_lr: 0.1").contains("lr_policy"))
        #expect(message("base_lr: 0.1 lr_policy: \"cosine\"").contains("'cosine' is not a learning rate policy"))
        #expect(message("base_lr: 0.1 lr_policy: \"step\" gamma: 0.1").contains("stepsize"))
        #expect(message("base_lr: 0.1 lr_policy: \"multistep\" gamma: 0.1").contains("stepvalue"))
        #expect(message("base_lr: 0.1 lr_policy: \"multistep\" stepvalue: 5 stepvalue: 2").contains("increasing"))
        #expect(message("base_lr: 0.1 lr_policy: \"poly\" power: 1").contains("max_iter"))
    }
}
