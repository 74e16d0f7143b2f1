import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// Settings of an R2 run (Green-VLA's RL alignment of an R1 policy).
public struct R2Config: Codable, Sendable {
    /// R1 rollouts the critic and the trajectory optimizer learn from.
    public var rolloutEpisodes = 48
    public var rolloutSeedStart: UInt64 = 20_000
    /// Per control step; a k-step chunk is discounted by γ^k.
    public var discount = 0.98
    public var criticSteps = 400
    public var criticBatch = 64
    public var iql = IQLConfig()
    /// Normalized ascent steps on Q per chunk, and their size in standardized action units.
    public var refineSteps = 5
    public var refineStepSize = 0.05
    public var fineTuneSteps = 200
    public var fineTune = TrainingSchedule.r2FineTuning
    /// Source-noise policy: iterations of `noiseEpisodesPerIteration` rollouts, one update each.
    public var noiseIterations = 8
    public var noiseEpisodesPerIteration = 12
    public var noiseSeedStart: UInt64 = 30_000
    public var noise = NoisePolicyConfig()
    /// R1 and R2 are both evaluated on seeds evalSeedStart ..< evalSeedStart + evalEpisodes.
    public var evalEpisodes = 200
    public var evalSeedStart: UInt64 = 0
    /// JPM guidance (predicted point) in every rollout and evaluation (0: the plain sampler).
    /// R2 then aligns the policy as it is deployed, guided toward the pointed target.
    public var jpmStrength = 0.0
    public var seed: UInt64 = 0
    public init() {}
}

/// What an R2 run measured (written as `r2-report.json`).
public struct R2Report: Codable, Sendable {
    public var r1: SuccessRate
    public var r2: SuccessRate
    /// R1 with the fine-tuned weights only (no learned source noise), to split the gain.
    public var fineTunedOnly: SuccessRate
    public var rolloutSuccess: SuccessRate
    public var transitions: Int
    public var criticValueLoss: Float
    public var criticQLoss: Float
    /// Rollouts whose critic-optimized actions were replayed, and how many of those succeeded.
    public var refinedReplays: Int
    public var verifiedTrajectories: Int
    public var noiseKL: Float
    public var seconds: Double
}

/// Green-VLA's R2 on RobotSim: IQL critic on R1 rollouts + demos, critic-guided trajectory
/// optimization with replay verification, fine-tuning on R1 data + verified trajectories, and a
/// learned source distribution for the flow sampler with the flow model frozen.
public final class R2Alignment {
    public let policy: VLAPolicy
    public let embodiment: EmbodimentKind
    public let task: TaskKind
    public let demos: [Episode]
    public let config: R2Config
    let spec: EmbodimentSpec
    /// Unified slots the embodiment drives; the critic and the noise policy see only these.
    let slots: [Int]

    public init(policy: VLAPolicy, embodiment: EmbodimentKind, task: TaskKind, demos: [Episode], config: R2Config) {
        self.policy = policy
        self.embodiment = embodiment
        self.task = task
        self.demos = demos
        self.config = config
        spec = embodiment.spec
        let mask = embodiment.spec.actionMask
        slots = mask.indices.filter { mask[$0] > 0 }
    }

    var horizon: Int { policy.model.config.horizon }
    var execute: Int { max(1, min(policy.model.config.executeSteps, horizon)) }
    public var featureDims: Int { policy.model.config.dims + VLAConfig.actionDimension }
    public var chunkDims: Int { horizon * slots.count }

    /// One chunk decision of a rollout.
    struct Decision {
        var features: [Float]
        var chunk: [Float]          // standardized, valid slots, [H × |slots|]
        var noise: [Float]?         // the source noise on valid slots (noise-policy rollouts)
        var executed: [[Float]] = []  // native actions actually run
        var reward: Float = 0
    }

    /// Critic/noise-policy input: the frozen backbone's mean prefix token and the state.
    func features(_ inputs: PolicyInputs, encoded: (tokens: Tensor, mask: Tensor)? = nil) throws -> Tensor {
        let pooled = try policy.model.pooledPrefix(encoded: encoded ?? policy.model.encodePrefix(inputs))
        return try concatenated([pooled, inputs.state * inputs.stateMask], axis: 1)
    }

    /// Runs one episode with the current weights; with `noisePolicy` the sampler starts from it.
    func rollout(seed: UInt64, key: RandomKey, noisePolicy: SourceNoisePolicy? = nil) throws -> (decisions: [Decision], success: Bool) {
        let env = try environment(seed)
        var observation = env.reset()
        var key = key
        var decisions: [Decision] = []
        let jpm = config.jpmStrength > 0 ? JointPredictionModule(strength: config.jpmStrength) : nil
        while true {
            let k = try key.split(into: 3)
            key = k[2]
            let policyObservation = PolicyEvaluator.policyObservation(observation, env: env)
            let inputs = try policy.inputs([policyObservation])
            // One backbone pass serves the features, the sampler and (first chunk) JPM's point.
            let encoded = try policy.model.encodePrefix(inputs)
            if decisions.isEmpty { try jpm?.prepare(policy: policy, observation: policyObservation, environment: env, encoded: encoded) }
            let f = try features(inputs, encoded: encoded)
            var initial: Tensor? = nil, noiseValues: [Float]? = nil
            if let noisePolicy {
                let valid = try noisePolicy.sample(f, key: k[0])
                noiseValues = try valid.toArray(Float.self)
                initial = try scatter(noiseValues!, base: k[1].normal([horizon * VLAConfig.actionDimension]).toArray(Float.self))
            }
            let guidance = try jpm?.guidance(policy: policy, observation: policyObservation)
            let sampled = try policy.model.sampleActions(inputs, key: k[1], initialNoise: initial, encoded: encoded,
                                                         guidance: guidance).toArray(Float.self)
            var decision = Decision(features: try f.toArray(Float.self), chunk: gather(sampled), noise: noiseValues)
            let chunk = try policy.nativeChunk(standardized: sampled, observation: policyObservation)
            for action in chunk.prefix(execute) {
                let result = try env.step(nativeAction: action)
                decision.executed.append(action)
                observation = result.observation
                if result.done {
                    decision.reward = result.success ? 1 : 0
                    decisions.append(decision)
                    return (decisions, result.success)
                }
            }
            decisions.append(decision)
        }
    }

    func environment(_ seed: UInt64) throws -> RobotEnvironment {
        let size = policy.model.config.imageSize
        return try RobotEnvironment(embodiment: embodiment, task: task, seed: seed, config: EnvironmentConfig(imageWidth: size, imageHeight: size))
    }

    /// `[H, 64]` standardized chunk → its valid slots `[H × |slots|]`.
    func gather(_ chunk: [Float]) -> [Float] {
        (0..<horizon).flatMap { h in slots.map { chunk[h * VLAConfig.actionDimension + $0] } }
    }

    /// Valid-slot values written into a full `[1, H, 64]` chunk (other entries from `base`).
    func scatter(_ values: [Float], base: [Float]) throws -> Tensor {
        var full = base
        for h in 0..<horizon { for (j, s) in slots.enumerated() { full[h * VLAConfig.actionDimension + s] = values[h * slots.count + j] } }
        return try Tensor(full, shape: [1, horizon, VLAConfig.actionDimension])
    }

    /// Chunk transitions of one rollout for the critic.
    func transitions(_ decisions: [Decision]) -> [(s: [Float], a: [Float], r: Float, next: [Float], discount: Float)] {
        decisions.indices.map { i in
            let d = decisions[i], last = i == decisions.count - 1
            return (d.features, d.chunk, d.reward, last ? d.features : decisions[i + 1].features,
                    last ? 0 : Float(pow(config.discount, Double(d.executed.count))))
        }
    }

    /// Demo chunks every `execute` steps, rewarded at the demo's successful end.
    func demoTransitions(_ dataset: DemonstrationDataset) throws -> [(s: [Float], a: [Float], r: Float, next: [Float], discount: Float)] {
        var result: [(s: [Float], a: [Float], r: Float, next: [Float], discount: Float)] = []
        for (e, episode) in dataset.episodes.enumerated() {
            let starts = Array(stride(from: 0, to: episode.stepCount, by: execute))
            let batch = try dataset.batch(starts.map { (e, $0) })
            let f = try features(batch.inputs).toArray(Float.self), a = try batch.actions.toArray(Float.self)
            let fd = featureDims, ad = horizon * VLAConfig.actionDimension
            for (i, t) in starts.enumerated() {
                let last = i == starts.count - 1
                let s = Array(f[(i * fd)..<((i + 1) * fd)])
                result.append((s, gather(Array(a[(i * ad)..<((i + 1) * ad)])),
                               last && episode.success ? 1 : 0, last ? s : Array(f[((i + 1) * fd)..<((i + 2) * fd)]),
                               last ? 0 : Float(pow(config.discount, Double(min(execute, episode.stepCount - t))))))
            }
        }
        return result
    }

    /// A source-noise policy shaped for this policy and embodiment, weights from `directory`
    /// (the `noise-policy` folder an R2 run writes).
    public func loadNoisePolicy(from directory: URL) throws -> SourceNoisePolicy {
        let p = try SourceNoisePolicy(stateDims: featureDims, noiseDims: chunkDims, key: RandomKey(seed: 0))
        _ = try Checkpoint.load(into: p, optimizer: nil, from: directory)
        return p
    }

    /// Success over `seeds` (one episode each, sampling keys from the seed), starting the flow
    /// sampler from `noisePolicy` when given.
    public func evaluate(seeds: [UInt64], noisePolicy: SourceNoisePolicy?, keySalt: UInt64 = 0) throws -> SuccessRate {
        let ok = try outcomes(seeds: seeds, noisePolicy: noisePolicy, keySalt: keySalt)
        return SuccessRate(successes: ok.filter { $0 }.count, episodes: seeds.count)
    }

    /// Each seed's success, in seed order (for paired comparisons, `PairedComparison`).
    public func outcomes(seeds: [UInt64], noisePolicy: SourceNoisePolicy?, keySalt: UInt64 = 0) throws -> [Bool] {
        try seeds.map { try rollout(seed: $0, key: RandomKey(seed: $0 &+ keySalt), noisePolicy: noisePolicy).success }
    }

    /// Runs every R2 phase; the fine-tuned weights replace the policy's own. `log` gets progress.
    public func run(output: URL, log: (String) -> Void) throws -> R2Report {
        let start = Date()
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let evalSeeds = Array(config.evalSeedStart..<(config.evalSeedStart + UInt64(config.evalEpisodes)))
        let r1 = try evaluate(seeds: evalSeeds, noisePolicy: nil, keySalt: 0)
        log("R1 on \(evalSeeds.count) seeds: \(r1)")

        // 1. R1 rollouts → critic data (with the demos).
        var rollouts: [(seed: UInt64, decisions: [Decision], success: Bool)] = []
        for i in 0..<config.rolloutEpisodes {
            let seed = config.rolloutSeedStart + UInt64(i)
            let (decisions, ok) = try rollout(seed: seed, key: RandomKey(seed: seed &* 31 &+ config.seed))
            rollouts.append((seed, decisions, ok))
            if (i + 1) % 12 == 0 || i + 1 == config.rolloutEpisodes {
                log("R1 rollouts \(i + 1)/\(config.rolloutEpisodes): \(rollouts.filter(\.success).count) successes")
            }
        }
        let dataset = try DemonstrationDataset(episodes: demos, specs: DemoCollector.specs, config: policy.model.config, stats: policy.stats)
        let data = try rollouts.flatMap { transitions($0.decisions) } + demoTransitions(dataset)

        // 2. IQL critic.
        let critic = try ChunkCritic(stateDims: featureDims, actionDims: chunkDims, hidden: config.iql.hidden, key: RandomKey(seed: config.seed &+ 7))
        let iql = try IQLTrainer(critic: critic, config: config.iql)
        var generator = SplitMix64(seed: config.seed &+ 11)
        var losses: (value: Float, q: Float) = (0, 0)
        for step in 0..<config.criticSteps {
            let picks = (0..<config.criticBatch).map { _ in data[Int(generator.next() % UInt64(data.count))] }
            let n = picks.count
            losses = try iql.trainStep(CriticBatch(
                states: Tensor(picks.flatMap(\.s), shape: [n, featureDims]), actions: Tensor(picks.flatMap(\.a), shape: [n, chunkDims]),
                rewards: Tensor(picks.map(\.r), shape: [n]), nextStates: Tensor(picks.flatMap(\.next), shape: [n, featureDims]),
                discounts: Tensor(picks.map(\.discount), shape: [n])))
            if (step + 1) % 100 == 0 { log(String(format: "critic step %d/%d  V loss %.4f  Q loss %.4f", step + 1, config.criticSteps, losses.value, losses.q)) }
        }

        // 3. Critic-guided trajectory optimization, replay-verified from the same start state.
        var verified: [Episode] = []
        var replays = 0
        for rollout in rollouts where !rollout.success {
            let decisions = rollout.decisions
            let refined = try criticGuidedActions(
                critic: critic, states: Tensor(decisions.flatMap(\.features), shape: [decisions.count, featureDims]),
                actions: Tensor(decisions.flatMap(\.chunk), shape: [decisions.count, chunkDims]),
                stepSize: config.refineStepSize, steps: config.refineSteps).toArray(Float.self)
            let env = try environment(rollout.seed)
            let recorder = EpisodeRecorder(environment: env)
            var observation = env.reset()
            recorder.record(observation: observation)
            replays += 1
            replay: for (i, decision) in decisions.enumerated() {
                // A relative chunk is anchored at the replay's own state where the chunk starts.
                let start = PolicyEvaluator.policyObservation(observation, env: env)
                for step in 0..<decision.executed.count {
                    var z = [Float](repeating: 0, count: VLAConfig.actionDimension)
                    for (j, s) in slots.enumerated() { z[s] = refined[i * chunkDims + step * slots.count + j] }
                    let action = try policy.nativeChunk(standardized: z, observation: start)[0]
                    let result = try env.step(nativeAction: action)
                    observation = result.observation
                    recorder.record(action: action, result: result, source: .policy)
                    if result.done { break replay }
                }
            }
            if recorder.succeeded { verified.append(try recorder.episode()) }
        }
        log("trajectory optimization: \(verified.count)/\(replays) refined failures verified as successes")

        // 4. Fine-tune on R1 data + verified trajectories.
        if !verified.isEmpty && config.fineTuneSteps > 0 {
            try dataset.append(verified)
            var schedule = config.fineTune
            schedule.totalSteps = config.fineTuneSteps
            let trainer = BehaviorCloningTrainer(policy: policy, schedule: schedule, seed: config.seed &+ 13)
            var g = SplitMix64(seed: config.seed &+ 17)
            while trainer.step < schedule.totalSteps {
                let loss = try trainer.trainStep(dataset.sampleBatch(size: schedule.batchSize, generator: &g))
                if trainer.step % 50 == 0 { log(String(format: "fine-tune step %d/%d  loss %.4f", trainer.step, schedule.totalSteps, loss)) }
            }
        }
        try policy.save(to: output.appendingPathComponent("checkpoint"), optimizer: nil, step: config.fineTuneSteps)
        let fineTuned = try evaluate(seeds: evalSeeds, noisePolicy: nil, keySalt: 0)
        log("fine-tuned only: \(fineTuned)")

        // 5. Source distribution optimization, flow model frozen.
        let noisePolicy = try SourceNoisePolicy(stateDims: featureDims, noiseDims: chunkDims, key: RandomKey(seed: config.seed &+ 19))
        let noiseTrainer = NoisePolicyTrainer(policy: noisePolicy, config: config.noise)
        var kl: Float = 0
        for iteration in 0..<config.noiseIterations {
            var f: [Float] = [], noise: [Float] = [], rewards: [Float] = []
            var successes = 0
            for e in 0..<config.noiseEpisodesPerIteration {
                let seed = config.noiseSeedStart + UInt64(iteration * config.noiseEpisodesPerIteration + e)
                let (decisions, ok) = try rollout(seed: seed, key: RandomKey(seed: seed &+ config.seed), noisePolicy: noisePolicy)
                if ok { successes += 1 }
                for d in decisions { f += d.features; noise += d.noise!; rewards.append(ok ? 1 : 0) }
            }
            let n = rewards.count
            kl = try noiseTrainer.update(states: Tensor(f, shape: [n, featureDims]), noise: Tensor(noise, shape: [n, chunkDims]), rewards: rewards)
            log(String(format: "noise policy iteration %d/%d: %d/%d successes, KL %.3f", iteration + 1, config.noiseIterations,
                       successes, config.noiseEpisodesPerIteration, kl))
        }
        try Checkpoint.save(model: noisePolicy, optimizer: nil, name: "source-noise-policy", step: config.noiseIterations,
                            to: output.appendingPathComponent("noise-policy"))
        let r2 = try evaluate(seeds: evalSeeds, noisePolicy: noisePolicy, keySalt: 0)
        log("R2 on \(evalSeeds.count) seeds: \(r2)")
        let report = R2Report(r1: r1, r2: r2, fineTunedOnly: fineTuned,
                              rolloutSuccess: SuccessRate(successes: rollouts.filter(\.success).count, episodes: rollouts.count),
                              transitions: data.count, criticValueLoss: losses.value, criticQLoss: losses.q,
                              refinedReplays: replays, verifiedTrajectories: verified.count, noiseKL: kl,
                              seconds: Date().timeIntervalSince(start))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: output.appendingPathComponent("r2-report.json"), options: .atomic)
        return report
    }
}
