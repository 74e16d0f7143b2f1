import Foundation

/// Adam with decoupled weight decay (Loshchilov & Hutter):
/// m ← β₁m + (1-β₁)g, v ← β₂v + (1-β₂)g², p ← p(1 - ηλ) - η·m̂/(√v̂ + ε),
/// with bias corrections m̂ = m/(1-β₁ᵗ), v̂ = v/(1-β₂ᵗ).
public final class AdamW: Optimizer {
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let eps: Float
    public let weightDecay: Float
    public private(set) var stepCount = 0
    private var m: [String: Tensor] = [:]
    private var v: [String: Tensor] = [:]

    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    public var state: [String: Tensor] {
        var s: [String: Tensor] = [:]
        for (k, t) in m { s["m.\(k)"] = t }
        for (k, t) in v { s["v.\(k)"] = t }
        return s
    }
    public func loadState(_ state: [String: Tensor], stepCount: Int) throws {
        m = [:]
        v = [:]
        for (k, t) in state {
            if k.hasPrefix("m.") { m[String(k.dropFirst(2))] = t }
            else if k.hasPrefix("v.") { v[String(k.dropFirst(2))] = t }
            else { throw TensorError.unknownParameter("AdamW state key \(k)") }
        }
        self.stepCount = stepCount
    }

    public func update(model: Module, gradients: [String: Tensor]) throws {
        let params = model.trainableParameters()
        let t = Double(stepCount + 1)
        let b1 = Double(beta1), b2 = Double(beta2), lr = Double(learningRate)
        // Fold both bias corrections into one step size: η·√(1-β₂ᵗ)/(1-β₁ᵗ), ε scaled to match.
        let correction1 = 1 - pow(b1, t), correction2 = 1 - pow(b2, t)
        let stepSize = lr * correction2.squareRoot() / correction1
        let epsHat = Double(eps) * correction2.squareRoot()
        var updated: [String: Tensor] = [:]
        for (key, g) in gradients {
            guard let p = params[key] else { throw TensorError.unknownParameter(key) }
            let mNew = try m[key].map { try $0 * b1 + g * (1 - b1) } ?? g * (1 - b1)
            let vNew = try v[key].map { try $0 * b2 + g.square() * (1 - b2) } ?? g.square() * (1 - b2)
            m[key] = mNew
            v[key] = vNew
            let decayed = weightDecay > 0 ? try p * (1 - lr * Double(weightDecay)) : p
            updated[key] = try decayed - mNew / (vNew.sqrt() + epsHat) * stepSize
        }
        try model.update(parameters: updated)
        stepCount += 1
    }
}
