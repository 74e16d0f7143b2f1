import Foundation
import RobotData
import TensorKit
import Training
import VLAModel

/// The VLA's learner on the fleet: flow-matching training on offline demos plus online
/// episodes, with a `PostTrainingAlgorithm` (HG-DAgger or RECAP) deciding which online steps
/// count and what each sample is conditioned on. Batches follow SOP's sampling rule
/// (`AdaptiveMix`): each sample's task is uniform over the tasks with data, and within a task
/// it is online with probability ω_on, driven by the two sources' recent training losses.
/// Normalization statistics stay those of the offline data the policy was pretrained with.
public actor PostTrainingBackend: LearnerBackend {
    public nonisolated let modelName = VLAActorPolicy.modelName
    public let trainer: BehaviorCloningTrainer
    public let specs: [String: EmbodimentSpec]
    public nonisolated let algorithm: any PostTrainingAlgorithm
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
                algorithm: any PostTrainingAlgorithm = HGDAgger(), mix: AdaptiveMix = AdaptiveMix(), seed: UInt64) throws {
        guard !algorithm.needsAdvantageToken || trainer.policy.model.config.advantageConditioning else {
            throw PostTrainingError.missingAdvantageToken(algorithm.name)
        }
        self.trainer = trainer
        self.specs = specs
        self.mix = mix
        self.algorithm = algorithm
        let policy = trainer.policy
        for (key, episodes) in Dictionary(grouping: offline, by: Self.taskKey) {
            self.offline[key] = try TensorLock.run {
                try DemonstrationDataset(episodes: episodes, specs: specs, config: policy.model.config, stats: policy.stats)
            }
        }
        generator = SplitMix64(seed: Self.rankSeed(seed, trainer: trainer))
    }

    /// Data-parallel ranks draw different samples: the rank is mixed into the sampler's seed.
    static func rankSeed(_ seed: UInt64, trainer: BehaviorCloningTrainer) -> UInt64 {
        guard let group = trainer.dataParallel else { return seed }
        return seed ^ (UInt64(group.rank) &* 0x9E37_79B9_7F4A_7C15)
    }

    public func samplerStatus() async -> [String: TaskSamplerStatus] {
        Dictionary(uniqueKeysWithValues: Set(offline.keys).union(online.keys).map { key in
            let (on, off) = mix.meanLosses(task: key)
            return (key, TaskSamplerStatus(onlineShare: mix.onlineShare(task: key), onlineLoss: on, offlineLoss: off))
        })
    }

    static func taskKey(_ e: Episode) -> String { "\(e.embodiment)/\(e.task)" }

    /// ω_on per task key, as the sampler currently uses it.
    public var onlineShares: [String: Double] {
        Dictionary(uniqueKeysWithValues: Set(offline.keys).union(online.keys).map { ($0, mix.onlineShare(task: $0)) })
    }

    public func ingest(_ episode: Episode) async throws {
        guard specs[episode.embodiment] != nil, trainer.policy.stats.actions[episode.embodiment] != nil else { return }
        try algorithm.ingest(episode)
        let key = Self.taskKey(episode), algorithm = self.algorithm
        if online[key] == nil {
            let policy = trainer.policy
            online[key] = try DemonstrationDataset(episodes: [], specs: specs, config: policy.model.config, stats: policy.stats,
                                                   isTarget: algorithm.isOnlineTarget)
        }
        if trainer.policy.model.config.textEncoder == .miniLM {
            // A new instruction runs MiniLM (MLX) while appending: keep it off the training step.
            try TensorLock.run { try online[key]!.append([episode], stepWeight: algorithm.onlineStepWeight) }
        } else {
            try online[key]!.append([episode], stepWeight: algorithm.onlineStepWeight)
        }
        onlineEpisodeCount += 1
    }

    public func trainStep() async throws -> Float? {
        let tasks = Set(offline.filter { $0.value.count > 0 }.keys).union(online.filter { $0.value.count > 0 }.keys).sorted()
        guard !tasks.isEmpty else { return nil }
        // Draw (task, source) for every sample, then one sub-batch per pair.
        var counts: [String: (online: Int, offline: Int)] = [:]
        // Data-parallel: this rank's rows of the global batch (the trainer averages the ranks).
        let batchSize = trainer.schedule.batchSize
        let (share, shareSize) = trainer.dataParallel.map {
            BatchShare.of(globalSize: batchSize, rank: $0.rank, ranks: $0.size)
        } ?? (BatchShare(offset: 0, globalSize: batchSize), batchSize)
        for _ in 0..<shareSize {
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
        let (trainer, algorithm) = (self.trainer, self.algorithm)
        let (loss, perSample) = try TensorLock.run {
            let parts = try plan.map { part in
                let picks = try part.dataset.samplePicks(size: part.size, generator: &generator)
                let labels = algorithm.indicators(for: picks.map { (part.dataset.episodes[$0.episode], $0.step) },
                                                  online: part.online, generator: &generator)
                return try part.dataset.batch(picks, advantages: labels)
            }
            return try trainer.trainStepWithSampleLosses(parts.count == 1 ? parts[0] : PolicyBatch.concatenated(parts),
                                                         share: trainer.dataParallel == nil ? nil : share)
        }
        try algorithm.afterTrainStep(generator: &generator)
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

    /// Policy + optimizer + step (`policy/`), the sampler (`sampler.json`) and the algorithm's state.
    public func saveCheckpoint(to directory: URL) async throws {
        let trainer = self.trainer
        try TensorLock.run {
            try trainer.policy.save(to: directory.appendingPathComponent("policy"), optimizer: trainer.optimizer, step: trainer.step)
        }
        let sampler = SamplerCheckpoint(generator: generator.state, stepsTrained: stepsTrained, mix: mix,
                                        samplesDrawn: [samplesDrawn.online, samplesDrawn.offline])
        try JSONEncoder().encode(sampler).write(to: directory.appendingPathComponent("sampler.json"), options: .atomic)
        try algorithm.saveState(to: directory)
    }

    public func restoreCheckpoint(from directory: URL) async throws {
        let sampler = try JSONDecoder().decode(SamplerCheckpoint.self, from: Data(contentsOf: directory.appendingPathComponent("sampler.json")))
        let trainer = self.trainer
        try TensorLock.run { try trainer.resume(from: directory.appendingPathComponent("policy")) }
        try algorithm.restoreState(from: directory)
        // Rank 0 wrote the sampler; the other ranks continue from it with their own streams.
        generator = SplitMix64(seed: Self.rankSeed(sampler.generator, trainer: trainer))
        stepsTrained = sampler.stepsTrained
        if let m = sampler.mix { mix = m }
        if let d = sampler.samplesDrawn, d.count == 2 { samplesDrawn = (d[0], d[1]) }
    }
}

public enum PostTrainingError: Error, CustomStringConvertible, Equatable {
    case missingAdvantageToken(String)
    /// The checkpoint has no normalization statistics for this embodiment.
    case notPretrainedOn(String)
    public var description: String {
        switch self {
        case .notPretrainedOn(let e):
            return "PostTrainingError.notPretrainedOn: the checkpoint was not pretrained on \(e) episodes (no statistics for it); pretrain one with `vla train bc --store STORE --embodiment-file FILE`"
        case .missingAdvantageToken(let a):
            return "PostTrainingError.missingAdvantageToken: \(a) conditions on an advantage token; train a policy from `VLAPolicy.withAdvantageConditioning`"
        }
    }
}

extension PostTrainingBackend: DataParallelLearnerBackend {
    public func hasTrainingData() async -> Bool {
        offline.values.contains { $0.count > 0 } || online.values.contains { $0.count > 0 }
    }

    /// Σ|θ| + Σθ over the trainable parameters in key order: equal on data-parallel ranks that
    /// stayed in step (a cheap cross-process comparison).
    public func parameterChecksum() throws -> Double {
        let model = trainer.policy.model
        return try TensorLock.run {
            try model.trainableParameters().sorted { $0.key < $1.key }.reduce(0.0) { total, entry in
                let p = try entry.value.astype(.float32)
                return total + Double(try (p.abs().sum() + p.sum()).item() as Float)
            }
        }
    }

    public func synchronizeParameters() async throws {
        guard let group = trainer.dataParallel else { return }
        let model = trainer.policy.model
        try TensorLock.run {
            // Σ over ranks of (rank 0 ? θ : 0) = rank 0's θ on every rank.
            let mine = try model.trainableParameters().mapValues { group.rank == 0 ? $0 : try $0 * 0 }
            let synced = try group.allSum(mine)
            try model.update(parameters: synced.mapValues { $0 })
            try eval(Array(model.trainableParameters().values))
        }
    }
}
