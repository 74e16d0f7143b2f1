import Foundation
import TensorKit

/// Asymmetric squared loss of IQL: mean of |τ − 1(u < 0)| · u². With τ > 0.5 it fits an
/// upper expectile of u's distribution, so V(s) tracks the best in-data actions' Q without
/// ever querying Q at actions outside the data.
public func expectileLoss(_ u: Tensor, tau: Double) throws -> Tensor {
    let weight = try which(u.less(0), Tensor(Float(1 - tau)), Tensor(Float(tau)))
    return try (weight * u.square()).mean()
}

/// A plain feed-forward net: Linear → ReLU → … → Linear to `outputs`. With no hidden layers
/// it is one Linear map (tests compute its gradients by hand).
public final class FeedForward: Module, @unchecked Sendable {
    public let layers: [Linear]

    public init(inputs: Int, hidden: [Int], outputs: Int, key: RandomKey) throws {
        let sizes = [inputs] + hidden + [outputs]
        let keys = try key.split(into: sizes.count - 1)
        layers = try (0..<(sizes.count - 1)).map { try Linear(sizes[$0], sizes[$0 + 1], key: keys[$0]) }
        super.init()
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = x
        for (i, layer) in layers.enumerated() {
            h = try layer(h)
            if i < layers.count - 1 { h = try h.relu() }
        }
        return h
    }
}

/// Twin Q(s, a_chunk) heads and a value head V(s) over flat state features and flattened
/// action chunks (Green-VLA R2's critic).
public final class ChunkCritic: Module, @unchecked Sendable {
    public let q1: FeedForward
    public let q2: FeedForward
    public let value: FeedForward
    public let stateDims: Int
    public let actionDims: Int

    public init(stateDims: Int, actionDims: Int, hidden: [Int] = [256, 256], key: RandomKey) throws {
        let k = try key.split(into: 3)
        q1 = try FeedForward(inputs: stateDims + actionDims, hidden: hidden, outputs: 1, key: k[0])
        q2 = try FeedForward(inputs: stateDims + actionDims, hidden: hidden, outputs: 1, key: k[1])
        value = try FeedForward(inputs: stateDims, hidden: hidden, outputs: 1, key: k[2])
        self.stateDims = stateDims
        self.actionDims = actionDims
        super.init()
    }

    /// Both Q estimates `[B]` for states `[B, S]` and actions `[B, A]`.
    public func qValues(_ states: Tensor, _ actions: Tensor) throws -> (Tensor, Tensor) {
        guard states.ndim == 2, actions.ndim == 2, states.dim(1) == stateDims, actions.dim(1) == actionDims,
              states.dim(0) == actions.dim(0) else {
            throw TensorError.shapeMismatch("ChunkCritic expects [B, \(stateDims)] states and [B, \(actionDims)] actions, got \(states.shape) and \(actions.shape)")
        }
        let x = try concatenated([states, actions], axis: 1)
        return (try q1(x).reshaped([-1]), try q2(x).reshaped([-1]))
    }

    /// min(Q1, Q2) `[B]`: the pessimistic estimate IQL bootstraps from.
    public func q(_ states: Tensor, _ actions: Tensor) throws -> Tensor {
        let (a, b) = try qValues(states, actions)
        return try a.minimum(b)
    }

    public func v(_ states: Tensor) throws -> Tensor { try value(states).reshaped([-1]) }
}

/// Chunk-level transitions: the state where a chunk started, the chunk, the reward collected
/// while it ran, the state after it, and the discount to apply (γ^k, 0 at episode end).
public struct CriticBatch: @unchecked Sendable {
    public var states: Tensor       // [B, S]
    public var actions: Tensor      // [B, A]
    public var rewards: Tensor      // [B]
    public var nextStates: Tensor   // [B, S]
    public var discounts: Tensor    // [B]

    public init(states: Tensor, actions: Tensor, rewards: Tensor, nextStates: Tensor, discounts: Tensor) {
        self.states = states; self.actions = actions; self.rewards = rewards
        self.nextStates = nextStates; self.discounts = discounts
    }
}

/// IQL settings (Kostrikov et al. 2021 defaults, except the smaller networks).
public struct IQLConfig: Codable, Sendable, Equatable {
    /// Expectile of the value loss.
    public var tau = 0.7
    public var learningRate: Float = 3e-4
    /// Polyak rate of the target Q networks.
    public var targetUpdateRate = 0.005
    public var hidden = [256, 256]
    public init() {}
}

/// Trains a `ChunkCritic` with implicit Q-learning: V regresses to an upper expectile of the
/// target Q at dataset actions; Q regresses to r + discount · V(s'). Both losses come from one
/// differentiated pass (their gradients touch disjoint heads).
public final class IQLTrainer: @unchecked Sendable {
    public let critic: ChunkCritic
    /// Slow-moving copy of the Q heads that V's targets come from.
    public let target: ChunkCritic
    public let config: IQLConfig
    public let optimizer: AdamW
    public private(set) var step = 0
    private let holder = StepInput<CriticBatch>()
    private let lossAndGrad: (ChunkCritic) throws -> (values: [Tensor], grads: [String: Tensor])

    public init(critic: ChunkCritic, config: IQLConfig = IQLConfig()) throws {
        self.critic = critic
        self.config = config
        target = try ChunkCritic(stateDims: critic.stateDims, actionDims: critic.actionDims, hidden: config.hidden,
                                 key: RandomKey(seed: 0))
        try target.update(parameters: critic.parameters())
        optimizer = AdamW(learningRate: config.learningRate, weightDecay: 0)
        let holder = self.holder, target = self.target, tau = config.tau
        lossAndGrad = valueAndGrad(model: critic) { c in
            let (valueLoss, qLoss) = try IQLTrainer.losses(critic: c, target: target, batch: holder.value!, tau: tau)
            return [try valueLoss + qLoss, valueLoss, qLoss]
        }
    }

    /// The two IQL losses for `critic` on `batch`, targets from `target` (not differentiated).
    public static func losses(critic: ChunkCritic, target: ChunkCritic, batch: CriticBatch, tau: Double) throws
        -> (value: Tensor, q: Tensor) {
        let targetQ = try target.q(batch.states, batch.actions).stopGradient()
        let valueLoss = try expectileLoss(targetQ - critic.v(batch.states), tau: tau)
        let backup = try (batch.rewards + batch.discounts * critic.v(batch.nextStates)).stopGradient()
        let (q1, q2) = try critic.qValues(batch.states, batch.actions)
        let qLoss = try (q1 - backup).square().mean() + (q2 - backup).square().mean()
        return (valueLoss, qLoss)
    }

    /// One AdamW step on both losses, then the Polyak target update; returns the losses
    /// before the step.
    @discardableResult
    public func trainStep(_ batch: CriticBatch) throws -> (value: Float, q: Float) {
        holder.value = batch
        defer { holder.value = nil }
        let (values, grads) = try lossAndGrad(critic)
        try optimizer.step(model: critic, gradients: grads, alsoEvaluate: values)
        let rate = config.targetUpdateRate
        let online = critic.parameters()
        var blended: [String: Tensor] = [:]
        for (key, old) in target.parameters() { blended[key] = try old * (1 - rate) + online[key]! * rate }
        try target.update(parameters: blended)
        try eval(Array(blended.values))
        step += 1
        return (try values[1].item(), try values[2].item())
    }
}

/// What a differentiated closure reads: set right before the step, cleared after.
final class StepInput<Value>: @unchecked Sendable {
    var value: Value?
}

/// Critic-guided trajectory optimization (Green-VLA R2): `steps` normalized gradient-ascent
/// moves a ← a + η ∇ₐQ / ‖∇ₐQ‖ per row, from the dataset's own actions. Rows whose gradient
/// vanishes stay put. The caller replay-verifies the result in the simulator.
public func criticGuidedActions(critic: ChunkCritic, states: Tensor, actions: Tensor, stepSize: Double,
                                steps: Int) throws -> Tensor {
    let gradient = grad { a in try critic.q(states, a).sum() }
    var a = actions
    for _ in 0..<steps {
        let g = try gradient(a)
        let norm = try g.square().sum(axis: 1, keepDims: true).sqrt()
        a = try a + g / norm.maximum(1e-12) * stepSize
        try eval([a])
    }
    return a
}
