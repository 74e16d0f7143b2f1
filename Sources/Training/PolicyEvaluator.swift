import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// Success rate with a 95% Wilson score interval.
public struct SuccessRate: Codable, Sendable, CustomStringConvertible {
    public let successes: Int
    public let episodes: Int
    public var rate: Double { episodes == 0 ? 0 : Double(successes) / Double(episodes) }
    /// Wilson interval: stays inside [0, 1] and behaves at 0 or n successes.
    public var interval95: (low: Double, high: Double) {
        guard episodes > 0 else { return (0, 1) }
        let z = 1.959963984540054, n = Double(episodes), p = rate
        let denominator = 1 + z * z / n
        let centre = (p + z * z / (2 * n)) / denominator
        let half = z * ((p * (1 - p) / n + z * z / (4 * n * n)).squareRoot()) / denominator
        return (max(0, centre - half), min(1, centre + half))
    }
    public init(successes: Int, episodes: Int) { self.successes = successes; self.episodes = episodes }
    public var description: String {
        let i = interval95
        return String(format: "%d/%d = %.1f%% (95%% CI %.1f–%.1f%%)", successes, episodes, 100 * rate, 100 * i.low, 100 * i.high)
    }
}

/// Runs a policy in RobotSim: each chunk is sampled from the current observation and its
/// first `executeSteps` actions are executed (receding horizon).
public enum PolicyEvaluator {
    public struct Result: Sendable {
        public let success: SuccessRate
        /// Mean control steps of the successful episodes.
        public let meanStepsToSuccess: Double
        /// Mean wall time of the successful episodes in the simulator's clock (steps × control period).
        public var meanSecondsToSuccess = 0.0
        /// What the OOD guard saw (all zero without a guard).
        public var ood = OODCounts()
        /// The episode GIFs written (see `EpisodeGIFs`), in seed order.
        public var gifs: [URL] = []
        /// Success of each seed's episode, in seed order (for paired comparisons).
        public var outcomes: [Bool] = []
        /// Episodes that got to each of the task's milestones (`TaskMilestones`), in order.
        public var milestones: [(milestone: TaskMilestones.Milestone, episodes: Int)] = []

        /// Each episode's closest approach of a hand to the target object (metres, seed order;
        /// `TaskMilestones.closestApproach`); empty for tasks without a target object.
        public var closestApproaches: [Double] = []

        /// The closest approaches' quartiles (nearest-rank), or nil without any.
        public var closestApproachQuartiles: (p25: Double, median: Double, p75: Double)? {
            guard !closestApproaches.isEmpty else { return nil }
            let sorted = closestApproaches.sorted()
            func rank(_ q: Double) -> Double { sorted[max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1)] }
            return (rank(0.25), rank(0.5), rank(0.75))
        }

        /// "near_object 62/100, grasped 5/100, …; closest approach median 4.1 cm (2.3–7.9)".
        public var milestoneSummary: String {
            milestones.map { "\($0.milestone.rawValue) \($0.episodes)/\(success.episodes)" }.joined(separator: ", ")
                + (closestApproachQuartiles.map { String(format: "; closest approach median %.1f cm (quartiles %.1f–%.1f)", 100 * $0.median, 100 * $0.p25, 100 * $0.p75) } ?? "")
        }

        /// `{"near_object": 62, "grasped": 5, …}`.
        public var milestonesJSON: String {
            "{" + milestones.map { #""\#($0.milestone.rawValue)": \#($0.episodes)"# }.joined(separator: ", ") + "}"
        }
    }

    /// Where `evaluate` writes the scene camera of its first `episodes` episodes as looping GIFs,
    /// named `<embodiment>-<task>-seed<seed>-<success|failure>.gif`.
    public struct EpisodeGIFs: Sendable {
        public var directory: URL
        public var episodes: Int
        public var clip: EpisodeClip
        public init(directory: URL, episodes: Int = .max, clip: EpisodeClip = EpisodeClip(maxFrames: 120)) {
            self.directory = directory; self.episodes = episodes; self.clip = clip
        }

        func fileName(embodiment: EmbodimentKind, task: TaskKind, seed: UInt64, success: Bool) -> String {
            "\(embodiment.rawValue)-\(task.rawValue)-seed\(seed)-\(success ? "success" : "failure").gif"
        }
    }

    /// An OOD guard and the mode it runs in during evaluation.
    public struct OODSettings: Sendable {
        public var guardModel: OODGuard
        public var mode: OODGuardMode
        public init(guardModel: OODGuard, mode: OODGuardMode) { self.guardModel = guardModel; self.mode = mode }
    }

    /// Counts from an OOD guard over the control steps of one or more episodes.
    public struct OODCounts: Sendable, Equatable {
        /// Control steps whose state the guard scored.
        public var checkedSteps = 0
        /// Control steps whose state was below τ.
        public var outOfDistributionSteps = 0
        /// Chunks planned under the guard, and those planned from a state below τ.
        public var decisions = 0
        public var outOfDistributionDecisions = 0
        /// Chunks planned from an out-of-distribution state whose joint targets were corrected (correct mode).
        public var correctedChunks = 0
        /// Of those, chunks whose state the correction brought back to log p ≥ τ.
        public var recoveredStates = 0
        public init() {}
    }

    /// Runs one episode; returns success and steps taken. `recorder` (optional) records it.
    public static func runEpisode(policy: VLAPolicy, environment env: RobotEnvironment, key: RandomKey,
                                  recorder: EpisodeRecorder? = nil) throws -> (success: Bool, steps: Int) {
        var counts = OODCounts()
        return try runEpisode(policy: policy, environment: env, key: key, recorder: recorder, ood: nil, counts: &counts)
    }

    /// Runs one episode with an optional OOD guard: every control step's state is scored
    /// (monitor and correct), and in correct mode a chunk planned from an out-of-distribution
    /// state has its joint targets corrected before it is executed. Adds to `counts`.
    public static func runEpisode(policy: VLAPolicy, environment env: RobotEnvironment, key: RandomKey,
                                  recorder: EpisodeRecorder? = nil, ood: OODSettings?,
                                  counts: inout OODCounts, jpm: JointPredictionModule? = nil,
                                  onStep: (RobotEnvironment) -> Void = { _ in }) throws -> (success: Bool, steps: Int) {
        let observation = env.reset()
        try jpm?.prepare(policy: policy, observation: policyObservation(observation, env: env), environment: env)
        recorder?.record(observation: observation)
        var key = key
        return try runGoal(policy: policy, environment: env, from: observation, key: &key, recorder: recorder, ood: ood, counts: &counts,
                           jpm: jpm, onStep: onStep)
    }

    /// Runs the environment's current goal from `observation` until it succeeds or hits its step
    /// limit; `key` moves on one split per chunk.
    static func runGoal(policy: VLAPolicy, environment env: RobotEnvironment, from observation: Observation, key: inout RandomKey,
                        recorder: EpisodeRecorder?, ood: OODSettings?, counts: inout OODCounts,
                        jpm: JointPredictionModule?, onStep: (RobotEnvironment) -> Void = { _ in }) throws -> (success: Bool, steps: Int) {
        var observation = observation
        let execute = max(1, min(policy.model.config.executeSteps, policy.model.config.horizon))
        let guarding = ood.flatMap { $0.mode == .off ? nil : $0 }
        while true {
            let (now, next) = try key.split()
            key = next
            let current = policyObservation(observation, env: env)
            var chunk = try jpm.map { try $0.actionChunk(policy: policy, observation: current, key: now) }
                ?? policy.actionChunk(current, key: now)
            var stateScored = false
            if let guarding {
                let outcome = try guarding.guardModel.apply(guarding.mode, nativeState: observation.state, chunk: chunk, spec: env.spec)
                counts.checkedSteps += 1
                counts.decisions += 1
                if outcome.isOutOfDistribution { counts.outOfDistributionSteps += 1; counts.outOfDistributionDecisions += 1 }
                if guarding.mode == .correct && outcome.isOutOfDistribution {
                    chunk = outcome.chunk
                    if outcome.correctedRows > 0 { counts.correctedChunks += 1 }
                    if outcome.recovered { counts.recoveredStates += 1 }
                }
                stateScored = true
            }
            for action in chunk.prefix(execute) {
                if let guarding, !stateScored {
                    // States inside a chunk are scored (not corrected: the chunk is already committed).
                    let logP = try guarding.guardModel.logDensity(nativeStates: [observation.state], spec: env.spec)[0]
                    counts.checkedSteps += 1
                    if try logP < guarding.guardModel.density(for: env.spec).threshold { counts.outOfDistributionSteps += 1 }
                }
                stateScored = false
                let result = try env.step(nativeAction: action)
                recorder?.record(action: action, result: result, source: .policy)
                onStep(env)
                observation = result.observation
                if result.done { return (result.success, env.stepCount) }
            }
        }
    }

    public static func policyObservation(_ o: Observation, env: RobotEnvironment) -> PolicyObservation {
        policyObservation(o, embodiment: env.spec, instruction: o.instruction)
    }

    /// A simulator observation as the policy takes it (cameras by name, native state).
    public static func policyObservation(_ o: Observation, embodiment: EmbodimentSpec, instruction: String) -> PolicyObservation {
        var cameras: [String: [UInt8]] = [:]
        for (name, image) in zip(o.cameraNames, o.images) { cameras[name] = image }
        return PolicyObservation(embodiment: embodiment, instruction: instruction, cameras: cameras, nativeState: o.state)
    }

    /// Who acts in a chained evaluation.
    public enum ChainActor {
        /// A policy, receding horizon, with optional JPM guidance (re-aimed at every new instruction).
        case policy(VLAPolicy, jpm: JointPredictionModule?)
        /// The clean scripted operator (how feasible the chains are).
        case scriptedOperator
    }

    /// Runs one chain with a policy from a reset: each goal until success or its step limit; after
    /// a success the next instruction is given (no reset) and JPM, if any, finds the new target;
    /// the first failure ends the chain.
    public static func runChain(policy: VLAPolicy, environment env: RobotEnvironment, key: RandomKey,
                                jpm: JointPredictionModule? = nil) throws -> ChainOutcome {
        var observation = env.reset()
        var key = key, counts = OODCounts(), outcome = ChainOutcome()
        while true {
            try jpm?.prepare(policy: policy, observation: policyObservation(observation, env: env), environment: env)
            let (ok, _) = try runGoal(policy: policy, environment: env, from: observation, key: &key, recorder: nil,
                                      ood: nil, counts: &counts, jpm: jpm)
            guard ok else { outcome.failedTask = env.task; return outcome }
            outcome.stepsPerCompletedGoal.append(env.stepCount - env.goalStartStep)
            guard let next = env.beginNextGoal() else { return outcome }
            observation = next
        }
    }

    /// CALVIN-style chained evaluation: one chain per seed (seed's chain scene and goals).
    public static func evaluateChains(_ actor: ChainActor, embodiment: EmbodimentKind, chain: TaskChain, seeds: [UInt64],
                                      progress: (Int, Int, ChainOutcome) -> Void = { _, _, _ in }) throws -> ChainStatistics {
        var outcomes: [ChainOutcome] = []
        for (i, seed) in seeds.enumerated() {
            let outcome: ChainOutcome
            switch actor {
            case let .policy(policy, jpm):
                let size = policy.model.config.imageSize
                let env = try RobotEnvironment(embodiment: embodiment, chain: chain, seed: seed,
                                               config: EnvironmentConfig(imageWidth: size, imageHeight: size))
                outcome = try runChain(policy: policy, environment: env, key: RandomKey(seed: seed), jpm: jpm)
            case .scriptedOperator:
                let env = try RobotEnvironment(embodiment: embodiment, chain: chain, seed: seed,
                                               config: EnvironmentConfig(imageWidth: 16, imageHeight: 16, renderImages: false))
                outcome = try env.runChainWithOperator()
            }
            outcomes.append(outcome)
            progress(i + 1, seeds.count, outcome)
        }
        return ChainStatistics(length: chain.length, outcomes: outcomes)
    }

    public static func evaluate(policy: VLAPolicy, embodiment: EmbodimentKind, task: TaskKind, seeds: [UInt64],
                                maxDistractors: Int? = nil, ood: OODSettings? = nil, jpm: JointPredictionModule? = nil,
                                gifs: EpisodeGIFs? = nil,
                                progress: (Int, Int, Int) -> Void = { _, _, _ in }) throws -> Result {
        var successes = 0, successSteps = 0, successSeconds = 0.0, counts = OODCounts(), written: [URL] = [], outcomes: [Bool] = []
        var reached: [TaskMilestones.Milestone: Int] = [:], closest: [Double] = []
        let size = policy.model.config.imageSize
        if let gifs { try FileManager.default.createDirectory(at: gifs.directory, withIntermediateDirectories: true) }
        for (i, seed) in seeds.enumerated() {
            var config = EnvironmentConfig(imageWidth: size, imageHeight: size)
            config.maxDistractors = maxDistractors
            let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed, config: config)
            let recorder = gifs.flatMap { i < $0.episodes ? EpisodeRecorder(environment: env) : nil }
            var tracker = TaskMilestones(environment: env)
            let (ok, steps) = try runEpisode(policy: policy, environment: env, key: RandomKey(seed: seed), recorder: recorder,
                                             ood: ood, counts: &counts, jpm: jpm) { tracker.update($0) }
            for m in tracker.reached { reached[m, default: 0] += 1 }
            if let d = tracker.closestApproach { closest.append(d) }
            outcomes.append(ok)
            if ok {
                successes += 1; successSteps += steps
                successSeconds += Double(steps) * Double(env.config.substeps) * env.model.timestep
            }
            if let gifs, let recorder {
                let url = gifs.directory.appendingPathComponent(gifs.fileName(embodiment: embodiment, task: task, seed: seed, success: ok))
                try gifs.clip.gif(of: recorder.episode()).write(to: url, options: .atomic)
                written.append(url)
            }
            progress(i + 1, seeds.count, successes)
        }
        var result = Result(success: SuccessRate(successes: successes, episodes: seeds.count),
                            meanStepsToSuccess: successes == 0 ? 0 : Double(successSteps) / Double(successes))
        result.meanSecondsToSuccess = successes == 0 ? 0 : successSeconds / Double(successes)
        result.ood = counts
        result.gifs = written
        result.outcomes = outcomes
        result.milestones = TaskMilestones.milestones(for: task).map { ($0, reached[$0, default: 0]) }
        result.closestApproaches = closest
        return result
    }
}
