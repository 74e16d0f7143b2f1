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
    }

    /// Runs one episode; returns success and steps taken. `recorder` (optional) records it.
    public static func runEpisode(policy: VLAPolicy, environment env: RobotEnvironment, key: RandomKey,
                                  recorder: EpisodeRecorder? = nil) throws -> (success: Bool, steps: Int) {
        var observation = env.reset()
        recorder?.record(observation: observation)
        var key = key
        let execute = max(1, min(policy.model.config.executeSteps, policy.model.config.horizon))
        while true {
            let (now, next) = try key.split()
            key = next
            let chunk = try policy.actionChunk(policyObservation(observation, env: env), key: now)
            for action in chunk.prefix(execute) {
                let result = try env.step(nativeAction: action)
                recorder?.record(action: action, result: result, source: .policy)
                observation = result.observation
                if result.done { return (result.success, env.stepCount) }
            }
        }
    }

    public static func policyObservation(_ o: Observation, env: RobotEnvironment) -> PolicyObservation {
        var cameras: [String: [UInt8]] = [:]
        for (name, image) in zip(o.cameraNames, o.images) { cameras[name] = image }
        return PolicyObservation(embodiment: env.spec, instruction: o.instruction, cameras: cameras, nativeState: o.state)
    }

    public static func evaluate(policy: VLAPolicy, embodiment: EmbodimentKind, task: TaskKind, seeds: [UInt64],
                                maxDistractors: Int? = nil, progress: (Int, Int, Int) -> Void = { _, _, _ in }) throws -> Result {
        var successes = 0, successSteps = 0
        let size = policy.model.config.imageSize
        for (i, seed) in seeds.enumerated() {
            var config = EnvironmentConfig(imageWidth: size, imageHeight: size)
            config.maxDistractors = maxDistractors
            let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed, config: config)
            let (ok, steps) = try runEpisode(policy: policy, environment: env, key: RandomKey(seed: seed))
            if ok { successes += 1; successSteps += steps }
            progress(i + 1, seeds.count, successes)
        }
        return Result(success: SuccessRate(successes: successes, episodes: seeds.count),
                      meanStepsToSuccess: successes == 0 ? 0 : Double(successSteps) / Double(successes))
    }
}
