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

/// HG-DAgger on the fleet: flow-matching behaviour cloning on offline demos plus the
/// operator-labelled steps of online episodes (policy steps get `policyStepWeight`, 0 by
/// default). Batches follow SOP's sampling rule (`AdaptiveMix`): each sample's task is
/// uniform over the tasks with data, and within a task it is online with probability ω_on,
/// driven by the two sources' recent training losses. Normalization statistics stay those
/// of the offline data the policy was pretrained with.
public actor HGDAggerBackend: LearnerBackend {
    public nonisolated let modelName = VLAActorPolicy.modelName
    public let trainer: BehaviorCloningTrainer
    public let specs: [String: EmbodimentSpec]
    public let policyStepWeight: Double
    public private(set) var mix: AdaptiveMix
    /// Per task key ("embodiment/task"): offline demos and online episodes.
    private var offline: [String: DemonstrationDataset] = [:]
    private var online: [String: DemonstrationDataset] = [:]
    private var generator: SplitMix64
    public private(set) var stepsTrained = 0
    public private(set) var onlineEpisodeCount = 0
    /// Samples drawn per source so far.
    public private(set) var samplesDrawn = (online: 0, offline: 0)

    public init(trainer: BehaviorCloningTrainer, offline: [Episode], specs: [String: EmbodimentSpec],
                mix: AdaptiveMix = AdaptiveMix(), policyStepWeight: Double = 0, seed: UInt64) throws {
        self.trainer = trainer
        self.specs = specs
        self.mix = mix
        self.policyStepWeight = policyStepWeight
        let policy = trainer.policy
        for (key, episodes) in Dictionary(grouping: offline, by: Self.taskKey) {
            self.offline[key] = try TensorLock.run {
                try DemonstrationDataset(episodes: episodes, specs: specs, config: policy.model.config, stats: policy.stats)
            }
        }
        generator = SplitMix64(seed: seed)
    }

    static func taskKey(_ e: Episode) -> String { "\(e.embodiment)/\(e.task)" }

    /// ω_on per task key, as the sampler currently uses it.
    public var onlineShares: [String: Double] {
        Dictionary(uniqueKeysWithValues: Set(offline.keys).union(online.keys).map { ($0, mix.onlineShare(task: $0)) })
    }

    public func ingest(_ episode: Episode) async throws {
        guard specs[episode.embodiment] != nil, trainer.policy.stats.actions[episode.embodiment] != nil else { return }
        let key = Self.taskKey(episode), weight = policyStepWeight
        if online[key] == nil {
            let policy = trainer.policy
            online[key] = try DemonstrationDataset(episodes: [], specs: specs, config: policy.model.config, stats: policy.stats,
                                                   isTarget: { e, t in e.sources[t] != .policy })
        }
        try online[key]!.append([episode]) { e, t in e.sources[t] == .policy ? weight : 1 }
        onlineEpisodeCount += 1
    }

    public func trainStep() async throws -> Float? {
        let tasks = Set(offline.filter { $0.value.count > 0 }.keys).union(online.filter { $0.value.count > 0 }.keys).sorted()
        guard !tasks.isEmpty else { return nil }
        // Draw (task, source) for every sample, then one sub-batch per pair.
        var counts: [String: (online: Int, offline: Int)] = [:]
        for _ in 0..<trainer.schedule.batchSize {
            let task = tasks[Int(generator.next() % UInt64(tasks.count))]
            let hasOnline = (online[task]?.count ?? 0) > 0, hasOffline = (offline[task]?.count ?? 0) > 0
            let useOnline = hasOnline && (!hasOffline || generator.nextDouble() < mix.onlineShare(task: task))
            if useOnline { counts[task, default: (0, 0)].online += 1 } else { counts[task, default: (0, 0)].offline += 1 }
        }
        var plan: [(task: String, online: Bool, dataset: DemonstrationDataset, size: Int)] = []
        for task in tasks {
            guard let c = counts[task] else { continue }
            if c.online > 0 { plan.append((task, true, online[task]!, c.online)) }
            if c.offline > 0 { plan.append((task, false, offline[task]!, c.offline)) }
        }
        var generator = self.generator
        let trainer = self.trainer
        let (loss, perSample) = try TensorLock.run {
            let parts = try plan.map { try $0.dataset.sampleBatch(size: $0.size, generator: &generator) }
            return try trainer.trainStepWithSampleLosses(parts.count == 1 ? parts[0] : PolicyBatch.concatenated(parts))
        }
        self.generator = generator
        var offset = 0
        for part in plan {
            let losses = perSample[offset..<(offset + part.size)]
            mix.record(task: part.task, online: part.online, loss: Double(losses.reduce(0, +)) / Double(part.size))
            offset += part.size
            if part.online { samplesDrawn.online += part.size } else { samplesDrawn.offline += part.size }
        }
        stepsTrained += 1
        return loss
    }

    public func exportTrainableWeights() async throws -> [String: Tensor] {
        trainer.policy.model.trainableParameters()
    }

    /// Policy + optimizer + step (`policy/`), and the sampler (`sampler.json`).
    public func saveCheckpoint(to directory: URL) async throws {
        let trainer = self.trainer
        try TensorLock.run {
            try trainer.policy.save(to: directory.appendingPathComponent("policy"), optimizer: trainer.optimizer, step: trainer.step)
        }
        let sampler = SamplerCheckpoint(generator: generator.state, stepsTrained: stepsTrained, mix: mix,
                                        samplesDrawn: [samplesDrawn.online, samplesDrawn.offline])
        try JSONEncoder().encode(sampler).write(to: directory.appendingPathComponent("sampler.json"), options: .atomic)
    }

    public func restoreCheckpoint(from directory: URL) async throws {
        let sampler = try JSONDecoder().decode(SamplerCheckpoint.self, from: Data(contentsOf: directory.appendingPathComponent("sampler.json")))
        let trainer = self.trainer
        try TensorLock.run { try trainer.resume(from: directory.appendingPathComponent("policy")) }
        generator = SplitMix64(seed: sampler.generator)
        stepsTrained = sampler.stepsTrained
        if let m = sampler.mix { mix = m }
        if let d = sampler.samplesDrawn, d.count == 2 { samplesDrawn = (d[0], d[1]) }
    }
}
