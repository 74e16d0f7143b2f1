import Foundation
import TensorKit

/// R2's source distribution: a diagonal Gaussian p(ε | s) = N(μ(s), diag σ²) that replaces the
/// flow sampler's N(0, I) start while the flow model stays frozen. μ's last layer starts at
/// zero and log σ at 0, so training starts from exactly the base sampler.
public final class SourceNoisePolicy: Module, @unchecked Sendable {
    public let mean: FeedForward
    @Param public var logStd: Tensor
    public let stateDims: Int
    public let noiseDims: Int

    public init(stateDims: Int, noiseDims: Int, hidden: [Int] = [64], key: RandomKey) throws {
        mean = try FeedForward(inputs: stateDims, hidden: hidden, outputs: noiseDims, key: key)
        let last = mean.layers[mean.layers.count - 1]
        try last.update(parameters: ["weight": Tensor.zeros([noiseDims, hidden.last ?? stateDims]),
                                     "bias": Tensor.zeros([noiseDims])])
        logStd = try Tensor.zeros([noiseDims])
        self.stateDims = stateDims
        self.noiseDims = noiseDims
        super.init()
    }

    /// ε = μ(s) + σ ⊙ z, z ~ N(0, I): `[B, noiseDims]`.
    public func sample(_ states: Tensor, key: RandomKey) throws -> Tensor {
        let z = try key.normal([states.dim(0), noiseDims])
        return try mean(states) + logStd.exp() * z
    }

    /// log p(ε | s) `[B]`.
    public func logProbability(_ noise: Tensor, states: Tensor) throws -> Tensor {
        let z = try (noise - mean(states)) / logStd.exp()
        let perDim = try z.square() * -0.5 - logStd - 0.5 * Foundation.log(2 * Double.pi)
        return try perDim.sum(axis: 1)
    }

    /// KL(p(· | s) ‖ N(0, I)) `[B]` = ½ Σ (σ² + μ² − 1 − 2 log σ).
    public func klToStandardNormal(_ states: Tensor) throws -> Tensor {
        let m = try mean(states)
        let perDim = try (logStd * 2).exp() + m.square() - 1 - logStd * 2
        return try perDim.sum(axis: 1) * 0.5
    }
}

/// Settings of the source-noise policy's policy-gradient training.
public struct NoisePolicyConfig: Codable, Sendable, Equatable {
    public var learningRate: Float = 3e-3
    /// Weight of the KL(p ‖ N(0, I)) penalty that keeps the start near the base sampler.
    public var klWeight = 0.02
    public init() {}
}

/// REINFORCE with a batch-mean baseline on p(ε | s): the rollouts' rewards (e.g. task
/// success) weight the log-probabilities of the noises they started from. Nothing is
/// backpropagated through the flow model.
public final class NoisePolicyTrainer: @unchecked Sendable {
    public let policy: SourceNoisePolicy
    public let config: NoisePolicyConfig
    public let optimizer: AdamW
    public private(set) var step = 0
    private let holder = StepInput<(states: Tensor, noise: Tensor, advantages: Tensor)>()
    private let lossAndGrad: (SourceNoisePolicy) throws -> (values: [Tensor], grads: [String: Tensor])

    public init(policy: SourceNoisePolicy, config: NoisePolicyConfig = NoisePolicyConfig()) {
        self.policy = policy
        self.config = config
        optimizer = AdamW(learningRate: config.learningRate, weightDecay: 0)
        let holder = self.holder, klWeight = config.klWeight
        lossAndGrad = valueAndGrad(model: policy) { p in
            let (states, noise, advantages) = holder.value!
            let pg = try (advantages * p.logProbability(noise, states: states)).mean() * -1
            let kl = try p.klToStandardNormal(states).mean()
            return [try pg + kl * klWeight, kl]
        }
    }

    /// One step from rollouts that started at `noise` `[B, D]` in `states` `[B, S]` and earned
    /// `rewards`; returns the mean KL to N(0, I) before the step. A batch whose rewards are all
    /// equal carries no signal and only moves the policy toward N(0, I).
    @discardableResult
    public func update(states: Tensor, noise: Tensor, rewards: [Float]) throws -> Float {
        guard rewards.count == states.dim(0), noise.dim(0) == rewards.count else {
            throw TensorError.shapeMismatch("\(rewards.count) rewards for \(states.dim(0)) states and \(noise.dim(0)) noises")
        }
        let mean = rewards.reduce(0, +) / Float(rewards.count)
        let std = (rewards.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(rewards.count)).squareRoot()
        let advantages = rewards.map { std > 1e-6 ? ($0 - mean) / std : 0 }
        holder.value = (states, noise, try Tensor(advantages, shape: [advantages.count]))
        defer { holder.value = nil }
        let (values, grads) = try lossAndGrad(policy)
        try optimizer.step(model: policy, gradients: grads, alsoEvaluate: values)
        step += 1
        return try values[1].item()
    }
}
