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

    public init(policy: VLAPolicy, embodiment: EmbodimentSpec, seed: UInt64, jpm: JointPredictionModule? = nil) {
        self.policy = policy
        self.embodiment = embodiment
        self.jpm = jpm
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
            let chunk = try jpm.map { try $0.actionChunk(policy: policy, observation: input, key: now) } ?? policy.actionChunk(input, key: now)
            return Array(chunk.prefix(max(1, policy.model.config.executeSteps)))
        }
    }
}
