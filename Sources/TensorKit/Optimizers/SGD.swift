/// Stochastic gradient descent with optional momentum and decoupled weight decay.
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let weightDecay: Float
    public private(set) var stepCount = 0
    private var velocity: [String: Tensor] = [:]

    public init(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    public var state: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: velocity.map { ("v.\($0.key)", $0.value) })
    }
    public func loadState(_ state: [String: Tensor], stepCount: Int) throws {
        velocity = [:]
        for (k, v) in state where k.hasPrefix("v.") { velocity[String(k.dropFirst(2))] = v }
        self.stepCount = stepCount
    }

    public func update(model: Module, gradients: [String: Tensor]) throws {
        var updated: [String: Tensor] = [:]
        let params = model.trainableParameters()
        let lr = Double(learningRate)
        for (key, g) in gradients {
            guard let p = params[key] else { throw TensorError.unknownParameter(key) }
            var direction = g
            if momentum > 0 {
                let v = try velocity[key].map { try $0 * Double(momentum) + g } ?? g
                velocity[key] = v
                direction = v
            }
            var next = p
            if weightDecay > 0 { next = try next * (1 - lr * Double(weightDecay)) }
            updated[key] = try next - direction * lr
        }
        try model.update(parameters: updated)
        stepCount += 1
    }
}
