import Foundation
import RobotData
import TensorKit
import VLAModel

/// RECAP's returns (SOP, π*0.6): −1 per control step, normalized by the task's step limit L so
/// every task's returns share one scale, and a further −`failurePenalty` (in units of L) on the
/// last step of a failed episode. A successful episode's return-to-go is −(steps to go)/L ∈
/// [−1, 0]; a failed one's lies below −1.
public struct RECAPReturns: Codable, Sendable, Equatable {
    public var failurePenalty: Float = 1
    public init(failurePenalty: Float = 1) { self.failurePenalty = failurePenalty }

    /// Reward of every step of an episode of `steps` steps.
    public func rewards(steps: Int, success: Bool, stepLimit: Int) -> [Float] {
        let perStep = -1 / Float(max(1, stepLimit))
        var r = [Float](repeating: perStep, count: steps)
        if !success, steps > 0 { r[steps - 1] -= failurePenalty }
        return r
    }

    /// Return-to-go g_t = Σ_{k ≥ t} r_k of every step.
    public func returnsToGo(steps: Int, success: Bool, stepLimit: Int) -> [Float] {
        var g = [Float](repeating: 0, count: steps), sum: Float = 0
        let r = rewards(steps: steps, success: success, stepLimit: stepLimit)
        for t in stride(from: steps - 1, through: 0, by: -1) { sum += r[t]; g[t] = sum }
        return g
    }

    /// n-step advantages A_t = Σ_{k=t}^{t+n−1} r_k + V(s_{t+n}) − V(s_t), the bootstrap dropped
    /// past the episode's end (the episode is over: nothing more to collect).
    public func advantages(values: [Float], success: Bool, stepLimit: Int, n: Int) -> [Float] {
        let steps = values.count
        let r = rewards(steps: steps, success: success, stepLimit: stepLimit)
        return (0..<steps).map { t in
            let end = min(t + n, steps)
            let collected = r[t..<end].reduce(0, +)
            return collected + (end < steps ? values[end] : 0) - values[t]
        }
    }

    /// Lowest return an episode of at most `stepLimit` steps can have.
    public var lowestReturn: Float { -1 - failurePenalty }
}

/// A fixed grid of return bins: the value head predicts a distribution over them and its
/// value is the expectation. Targets are "two-hot": a return between two centres splits its
/// probability between them in proportion to closeness, so the expectation is exact.
public struct ReturnBins: Codable, Sendable, Equatable {
    public let low: Float
    public let high: Float
    public let count: Int

    public init(low: Float, high: Float, count: Int) {
        precondition(count >= 2 && high > low)
        self.low = low; self.high = high; self.count = count
    }

    public var centres: [Float] { (0..<count).map { low + (high - low) * Float($0) / Float(count - 1) } }

    /// Two-hot target of `value` (clamped to [low, high]).
    public func twoHot(_ value: Float) -> [Float] {
        let x = (min(max(value, low), high) - low) / (high - low) * Float(count - 1)
        let i = min(Int(x.rounded(.down)), count - 2), f = x - Float(i)
        var p = [Float](repeating: 0, count: count)
        p[i] = 1 - f
        p[i + 1] += f
        return p
    }
}

/// RECAP's value function V(s): a distribution over `ReturnBins` read from a frozen copy of the
/// pretrained policy's backbone (pooled prefix) and the standardized state. Only the head
/// trains; the encoder never changes, so advantages computed on the learner stay comparable
/// while the policy it copies keeps training. Not `Module`: the encoder's weights are not its
/// parameters.
public final class StepsToGoValue: @unchecked Sendable {
    public let encoder: VLAPolicy
    public let head: FeedForward
    public let bins: ReturnBins
    public let returns: RECAPReturns
    private let optimizer: AdamW

    public init(encoder: VLAPolicy, bins: ReturnBins? = nil, returns: RECAPReturns = RECAPReturns(),
                hidden: [Int] = [256, 256], learningRate: Float = 1e-3, seed: UInt64) throws {
        self.encoder = encoder
        self.returns = returns
        self.bins = bins ?? ReturnBins(low: returns.lowestReturn, high: 0, count: 41)
        head = try FeedForward(inputs: encoder.model.config.dims + VLAConfig.actionDimension, hidden: hidden,
                               outputs: self.bins.count, key: RandomKey(seed: seed))
        optimizer = AdamW(learningRate: learningRate, weightDecay: 0)
    }

    /// Features `[N, D + 64]` of observations: the frozen encoder's pooled prefix and the
    /// standardized unified state. Batches of 64 bound the memory of long episodes.
    public func features(_ observations: [PolicyObservation]) throws -> Tensor {
        var parts: [Tensor] = []
        for start in stride(from: 0, to: observations.count, by: 64) {
            var rows = Array(observations[start..<min(start + 64, observations.count)])
            for i in rows.indices { rows[i].advantage = nil }
            let inputs = try encoder.inputs(rows)
            let pooled = try encoder.model.pooledPrefix(inputs).stopGradient()
            let part = try concatenated([pooled, inputs.state * inputs.stateMask], axis: 1)
            try part.eval()
            parts.append(part)
        }
        return parts.count == 1 ? parts[0] : try concatenated(parts, axis: 0)
    }

    /// Features of every step of an episode.
    public func features(of episode: Episode, spec: EmbodimentSpec) throws -> Tensor {
        try features((0..<episode.stepCount).map { episode.policyObservation(at: $0, spec: spec) })
    }

    /// V(s) `[N]`: the expectation of the predicted return distribution.
    public func values(features: Tensor) throws -> Tensor {
        let p = try head(features).softmax(axis: 1)
        return try (p * Tensor(bins.centres, shape: [1, bins.count])).sum(axis: 1)
    }

    /// Cross-entropy of the predicted distribution against two-hot targets `[N, bins]`.
    public func loss(features: Tensor, targets: Tensor) throws -> Tensor {
        try Self.crossEntropy(logits: head(features), targets: targets)
    }

    /// Mean over rows of −Σ_b target_b · log softmax(logits)_b.
    public static func crossEntropy(logits: Tensor, targets: Tensor) throws -> Tensor {
        let logZ = try logits.logSumExp(axis: 1, keepDims: true)
        return try -((logits - logZ) * targets).sum(axis: 1).mean()
    }

    /// Two-hot targets `[N, bins]` of returns.
    public func targets(_ returnsToGo: [Float]) throws -> Tensor {
        try Tensor(returnsToGo.flatMap { bins.twoHot($0) }, shape: [returnsToGo.count, bins.count])
    }

    /// One AdamW step of the head on rows drawn from `features`/`targets`; returns the loss.
    @discardableResult
    public func trainStep(features: Tensor, targets: Tensor, rows: [Int]) throws -> Float {
        let index = try Tensor(rows.map(Int32.init), shape: [rows.count])
        let x = try features.take(index, axis: 0), y = try targets.take(index, axis: 0)
        let step = valueAndGrad(model: head) { h in try Self.crossEntropy(logits: h(x), targets: y) }
        let (loss, grads) = try step(head)
        try optimizer.step(model: head, gradients: grads, alsoEvaluate: [loss])
        return try loss.item()
    }

    /// Fits the head on episodes (RECAP pre-trains it on the offline data, then freezes it).
    /// `stepLimit` gives each episode's L. Returns the final mean loss of the last 20 steps.
    @discardableResult
    public func fit(episodes: [Episode], specs: [String: EmbodimentSpec], stepLimit: (Episode) -> Int,
                    steps: Int, batchSize: Int = 64, seed: UInt64, log: (String) -> Void = { _ in }) throws -> Float {
        var xs: [Tensor] = [], gs: [Float] = []
        for e in episodes {
            guard let spec = specs[e.embodiment] else { throw PolicyError.unknownEmbodiment(e.embodiment) }
            xs.append(try features(of: e, spec: spec))
            gs += returns.returnsToGo(steps: e.stepCount, success: e.success, stepLimit: stepLimit(e))
        }
        guard !gs.isEmpty else { return .nan }
        let x = try concatenated(xs, axis: 0), y = try targets(gs)
        var generator = SplitMix64(seed: seed)
        var recent: [Float] = []
        for step in 0..<steps {
            let rows = (0..<batchSize).map { _ in Int(generator.next() % UInt64(gs.count)) }
            recent.append(try trainStep(features: x, targets: y, rows: rows))
            if recent.count > 20 { recent.removeFirst() }
            if (step + 1) % 100 == 0 || step + 1 == steps {
                log(String(format: "value step %d/%d  cross-entropy %.4f", step + 1, steps, recent.reduce(0, +) / Float(recent.count)))
            }
        }
        return recent.reduce(0, +) / Float(max(1, recent.count))
    }

    /// n-step advantages of every step of an episode under this value, the values V(s_t)
    /// they came from, and the features (a continuously trained value reuses them).
    public func advantages(of episode: Episode, spec: EmbodimentSpec, stepLimit: Int, n: Int) throws
        -> (advantages: [Float], values: [Float], features: Tensor) {
        let x = try features(of: episode, spec: spec)
        let v: [Float] = try values(features: x).toArray()
        return (returns.advantages(values: v, success: episode.success, stepLimit: stepLimit, n: n), v, x)
    }
}
