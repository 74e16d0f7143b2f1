/// Updates a module's parameters from gradients keyed like `trainableParameters()`.
///
/// `update` only builds the lazy graph; evaluate the model's parameters and `state` together
/// once per step (`step(model:gradients:)` does both) so a step costs one graph walk.
public protocol Optimizer: AnyObject {
    /// Learning rate for the next update (set it from a schedule each step).
    var learningRate: Float { get set }
    /// Number of updates applied so far.
    var stepCount: Int { get }
    /// Optimizer state tensors by key (e.g. `m.<param>` for AdamW), for checkpoints.
    var state: [String: Tensor] { get }
    func loadState(_ state: [String: Tensor], stepCount: Int) throws
    func update(model: Module, gradients: [String: Tensor]) throws
}

extension Optimizer {
    /// Applies gradients and evaluates the new parameters and state in one pass.
    public func step(model: Module, gradients: [String: Tensor], alsoEvaluate extra: [Tensor] = []) throws {
        try update(model: model, gradients: gradients)
        try eval(Array(model.parameters().values) + Array(state.values) + extra)
    }
}
