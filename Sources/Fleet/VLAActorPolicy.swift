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

    public init(policy: VLAPolicy, embodiment: EmbodimentSpec, seed: UInt64) {
        self.policy = policy
        self.embodiment = embodiment
        key = RandomKey(seed: seed)
    }

    public func load(weights: [String: Tensor], version: Int) throws {
        try TensorLock.run { try policy.model.update(parameters: weights) }
        self.version = version
    }

    public func actionChunk(observation: Observation, instruction: String) throws -> [[Float]] {
        var cameras: [String: [UInt8]] = [:]
        for (name, image) in zip(observation.cameraNames, observation.images) { cameras[name] = image }
        let input = PolicyObservation(embodiment: embodiment, instruction: instruction, cameras: cameras,
                                      nativeState: observation.state)
        return try TensorLock.run {
            let (now, next) = try key.split()
            key = next
            let chunk = try policy.actionChunk(input, key: now)
            return Array(chunk.prefix(max(1, policy.model.config.executeSteps)))
        }
    }
}

/// HG-DAgger on the fleet: flow-matching behaviour cloning on offline demos plus the
/// operator-labelled steps of online episodes (policy steps get `policyStepWeight`, 0 by
/// default). Each batch mixes online and offline samples at `onlineFraction` once online
/// data exists. Normalization statistics stay those of the offline data the policy was
/// pretrained with.
public actor HGDAggerBackend: LearnerBackend {
    public nonisolated let modelName = VLAActorPolicy.modelName
    public let trainer: BehaviorCloningTrainer
    public let specs: [String: EmbodimentSpec]
    public let onlineFraction: Double
    public let policyStepWeight: Double
    private let offline: DemonstrationDataset
    private let online: DemonstrationDataset
    private var generator: SplitMix64
    public private(set) var stepsTrained = 0

    public init(trainer: BehaviorCloningTrainer, offline: [Episode], specs: [String: EmbodimentSpec],
                onlineFraction: Double = 0.5, policyStepWeight: Double = 0, seed: UInt64) throws {
        self.trainer = trainer
        self.specs = specs
        self.onlineFraction = onlineFraction
        self.policyStepWeight = policyStepWeight
        let policy = trainer.policy
        self.offline = try TensorLock.run {
            try DemonstrationDataset(episodes: offline, specs: specs, config: policy.model.config, stats: policy.stats)
        }
        online = try DemonstrationDataset(episodes: [], specs: specs, config: policy.model.config, stats: policy.stats)
        generator = SplitMix64(seed: seed)
    }

    public var onlineEpisodeCount: Int { online.episodes.count }

    public func ingest(_ episode: Episode) async throws {
        guard specs[episode.embodiment] != nil, trainer.policy.stats.actions[episode.embodiment] != nil else { return }
        let weight = policyStepWeight
        try online.append([episode]) { e, t in e.sources[t] == .policy ? weight : 1 }
    }

    public func trainStep() async throws -> Float? {
        let size = trainer.schedule.batchSize
        let onlineCount = online.count > 0 ? Int((Double(size) * onlineFraction).rounded()) : 0
        let (offline, online, trainer) = (self.offline, self.online, self.trainer)
        var generator = self.generator
        let loss: Float = try TensorLock.run {
            var parts: [PolicyBatch] = []
            if size - onlineCount > 0 { parts.append(try offline.sampleBatch(size: size - onlineCount, generator: &generator)) }
            if onlineCount > 0 { parts.append(try online.sampleBatch(size: onlineCount, generator: &generator)) }
            return try trainer.trainStep(parts.count == 1 ? parts[0] : PolicyBatch.concatenated(parts))
        }
        self.generator = generator
        stepsTrained += 1
        return loss
    }

    public func exportTrainableWeights() async throws -> [String: Tensor] {
        trainer.policy.model.trainableParameters()
    }
}
