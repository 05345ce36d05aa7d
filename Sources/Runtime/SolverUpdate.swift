import Foundation

/// The arithmetic of Caffe's `SGDSolver::ApplyUpdate` and its subclasses,
/// element by element on raw buffers, in the order and precision (float)
/// Caffe uses, so that losses track real Caffe over many iterations.
///
/// Notation for one learnable blob: `w` its data, `g` its gradient (diff),
/// `h` (and `h2`) its history blobs, `lr` = rate * lr_mult, `mu` = momentum.
/// Each rule leaves the step in `g`; `apply` then does w -= g (Net::Update).
enum SolverUpdate {
    /// g *= 1 / iter_size: gradients were summed over iter_size passes.
    static func normalize(_ g: UnsafeMutablePointer<Float>, _ n: Int, iterSize: Int) {
        guard iterSize > 1 else { return }
        let s = Float(1) / Float(iterSize)
        for i in 0..<n { g[i] *= s }
    }

    /// Weight decay with local_decay = weight_decay * decay_mult:
    /// L2: g += local_decay * w;  L1: g += local_decay * sign(w) (sign(0) = 0).
    static func regularize(_ g: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, _ n: Int,
                           decay: Float, type: SolverConfig.Regularization) {
        guard decay != 0 else { return }
        switch type {
        case .l2:
            for i in 0..<n { g[i] += decay * w[i] }
        case .l1:
            for i in 0..<n {
                let s: Float = w[i] > 0 ? 1 : (w[i] < 0 ? -1 : 0)
                g[i] += decay * s
            }
        }
    }

    /// Sum of squares of a gradient (Caffe's Blob::sumsq_diff), for clipping.
    static func sumOfSquares(_ g: UnsafePointer<Float>, _ n: Int) -> Double {
        var s = 0.0
        for i in 0..<n { s += Double(g[i]) * Double(g[i]) }
        return s
    }

    static func scale(_ g: UnsafeMutablePointer<Float>, _ n: Int, by s: Float) {
        for i in 0..<n { g[i] *= s }
    }

    /// SGD with momentum: h = lr * g + mu * h;  g = h.
    static func sgd(_ g: UnsafeMutablePointer<Float>, _ h: UnsafeMutablePointer<Float>, _ n: Int,
                    lr: Float, momentum mu: Float) {
        for i in 0..<n {
            let v = lr * g[i] + mu * h[i]
            h[i] = v
            g[i] = v
        }
    }

    /// Nesterov: h' = lr * g + mu * h;  g = (1 + mu) * h' - mu * h
    /// (step back along the old momentum, then over-step along the new one).
    static func nesterov(_ g: UnsafeMutablePointer<Float>, _ h: UnsafeMutablePointer<Float>, _ n: Int,
                         lr: Float, momentum mu: Float) {
        let onePlus = Float(1) + mu
        for i in 0..<n {
            let old = h[i]
            let v = lr * g[i] + mu * old
            h[i] = v
            g[i] = onePlus * v - mu * old
        }
    }

    /// AdaGrad: h += g^2;  g = lr * g / (sqrt(h) + delta).
    static func adaGrad(_ g: UnsafeMutablePointer<Float>, _ h: UnsafeMutablePointer<Float>, _ n: Int,
                        lr: Float, delta: Float) {
        for i in 0..<n {
            let sq = g[i] * g[i]
            h[i] = sq + h[i]
            let u = g[i] / (h[i].squareRoot() + delta)
            g[i] = lr * u
        }
    }

    /// RMSProp: h = (1 - rho) * g^2 + rho * h;  g = lr * g / (sqrt(h) + delta).
    static func rmsProp(_ g: UnsafeMutablePointer<Float>, _ h: UnsafeMutablePointer<Float>, _ n: Int,
                        lr: Float, rmsDecay rho: Float, delta: Float) {
        let oneMinus = Float(1) - rho
        for i in 0..<n {
            let sq = g[i] * g[i]
            h[i] = oneMinus * sq + rho * h[i]
            let u = g[i] / (h[i].squareRoot() + delta)
            g[i] = lr * u
        }
    }

    /// AdaDelta (h = E[g^2], h2 = E[dx^2], decay mu):
    /// h = (1 - mu) * g^2 + mu * h;  dx = g * sqrt((h2 + delta) / (h + delta));
    /// h2 = (1 - mu) * dx^2 + mu * h2;  g = lr * dx.
    static func adaDelta(_ g: UnsafeMutablePointer<Float>, _ h: UnsafeMutablePointer<Float>,
                         _ h2: UnsafeMutablePointer<Float>, _ n: Int, lr: Float, momentum mu: Float, delta: Float) {
        let oneMinus = Float(1) - mu
        for i in 0..<n {
            let sq = g[i] * g[i]
            h[i] = oneMinus * sq + mu * h[i]
            let ratio = (delta + h2[i]) / (delta + h[i])
            let dx = g[i] * ratio.squareRoot()
            h2[i] = oneMinus * (dx * dx) + mu * h2[i]
            g[i] = lr * dx
        }
    }

    /// The bias correction of Adam at step t = iter + 1:
    /// sqrt(1 - beta2^t) / (1 - beta1^t), in double as Caffe's pow(float, int).
    static func adamCorrection(iter: Int, beta1: Float, beta2: Float) -> Float {
        let t = Double(iter + 1)
        return Float((1 - Foundation.pow(Double(beta2), t)).squareRoot() / (1 - Foundation.pow(Double(beta1), t)))
    }

    /// Adam (m = h, v = h2): m = (1 - b1) * g + b1 * m;  v = (1 - b2) * g^2 + b2 * v;
    /// g = (lr * correction) * m / (sqrt(v) + eps), eps = delta.
    static func adam(_ g: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                     _ v: UnsafeMutablePointer<Float>, _ n: Int, lr: Float, beta1: Float, beta2: Float,
                     eps: Float, correction: Float) {
        let step = lr * correction
        let a1 = Float(1) - beta1, a2 = Float(1) - beta2
        for i in 0..<n {
            let gi = g[i]
            m[i] = a1 * gi + beta1 * m[i]
            v[i] = a2 * (gi * gi) + beta2 * v[i]
            let u = m[i] / (v[i].squareRoot() + eps)
            g[i] = step * u
        }
    }

    /// w -= g (Caffe's Blob::Update).
    static func apply(_ w: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ n: Int) {
        for i in 0..<n { w[i] -= g[i] }
    }
}
