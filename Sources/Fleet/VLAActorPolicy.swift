import Foundation
import RobotData
import RobotSim
import TensorKit
import Training
import VLAModel

/// Runs a `FlowMatchingVLA` on an actor: each call samples a chunk from the current
/// observation and returns its first `executeSteps` actions (receding horizon).
public final class VLAActorPolicy: ActorPolicy, @unchecked Sendable {
    public static let modelName = "flow-matching-vla"
    public let policy: VLAPolicy
    public let embodiment: EmbodimentSpec
    public private(set) var version = 0
    private var key: RandomKey
    /// JPM guidance (nil: plain sampling). Its episode target is written by `beginEpisode` on
    /// the episode thread before the episode's first chunk is requested and only read by
    /// `actionChunk` afterwards, both under `TensorLock`.
    public let jpm: JointPredictionModule?
    /// Green-VLA's OOD guard on the actor (nil: off): every chunk's starting state is scored;
    /// in `.correct` mode a chunk planned from an out-of-distribution state has its joint
    /// targets moved back toward the training states before the robot executes it.
    public let ood: PolicyEvaluator.OODSettings?
    private let oodTally = Locked(PolicyEvaluator.OODCounts())
    /// What the guard saw so far (`decisions` = chunks scored).
    public var oodCounts: PolicyEvaluator.OODCounts { oodTally.current }
    /// The latest chunk's observation (numbered) and, once asked for, the head's estimate there.
    private let latestProgress = Locked<(chunk: Int, observation: PolicyObservation, estimate: Float?)?>(nil)
    /// The progress head's estimate at the latest chunk's observation (nil without a head).
    /// Computed on the first read after each chunk: an actor whose gate does not watch progress
    /// never pays the extra backbone pass.
    public var progressEstimate: Float? {
        guard policy.model.progressHead != nil, let latest = latestProgress.current else { return nil }
        if let estimate = latest.estimate { return estimate }
        guard let estimate = try? TensorLock.run({ try policy.progress(latest.observation) }) else { return nil }
        latestProgress.withLock { if $0?.chunk == latest.chunk { $0?.estimate = estimate } }
        return estimate
    }

    public init(policy: VLAPolicy, embodiment: EmbodimentSpec, seed: UInt64, jpm: JointPredictionModule? = nil,
                ood: PolicyEvaluator.OODSettings? = nil) {
        self.policy = policy
        self.embodiment = embodiment
        self.jpm = jpm
        self.ood = ood
        key = RandomKey(seed: seed)
    }

    public func beginEpisode(environment: RobotEnvironment, observation: Observation) throws {
        guard let jpm else { return }
        let input = policyObservation(observation, instruction: environment.instruction)
        try TensorLock.run { try jpm.prepare(policy: policy, observation: input, environment: environment) }
    }

    func policyObservation(_ observation: Observation, instruction: String) -> PolicyObservation {
        PolicyEvaluator.policyObservation(observation, embodiment: embodiment, instruction: instruction)
    }

    public func load(weights: [String: Tensor], version: Int) throws {
        try TensorLock.run { try policy.model.update(parameters: weights) }
        self.version = version
    }

    public func actionChunk(observation: Observation, instruction: String) throws -> [[Float]] {
        let input = policyObservation(observation, instruction: instruction)
        return try TensorLock.run {
            let (now, next) = try key.split()
            key = next
            var chunk = try jpm.map { try $0.actionChunk(policy: policy, observation: input, key: now) } ?? policy.actionChunk(input, key: now)
            if let ood, ood.mode != .off {
                let outcome = try ood.guardModel.apply(ood.mode, nativeState: observation.state, chunk: chunk, spec: embodiment)
                oodTally.withLock { c in
                    c.decisions += 1
                    c.checkedSteps += 1
                    if outcome.isOutOfDistribution { c.outOfDistributionDecisions += 1; c.outOfDistributionSteps += 1 }
                    if ood.mode == .correct, outcome.isOutOfDistribution {
                        if outcome.correctedRows > 0 { c.correctedChunks += 1 }
                        if outcome.recovered { c.recoveredStates += 1 }
                    }
                }
                if ood.mode == .correct, outcome.isOutOfDistribution { chunk = outcome.chunk }
            }
            if policy.model.progressHead != nil {
                latestProgress.withLock { $0 = ((($0?.chunk) ?? 0) + 1, input, nil) }
            }
            return Array(chunk.prefix(max(1, policy.model.config.executeSteps)))
        }
    }
}
