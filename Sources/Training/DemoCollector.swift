import Foundation
import RobotData
import RobotSim

/// Records scripted-operator demonstrations in RobotSim as RobotData episodes.
public enum DemoCollector {
    /// One episode per seed; failed demonstrations are dropped when `onlySuccessful`.
    public static func collect(
        embodiment: EmbodimentKind, task: TaskKind, seeds: [UInt64], imageSize: Int,
        profile: OperatorProfile = .clean, onlySuccessful: Bool = true, maxDistractors: Int? = nil, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [Episode] {
        var episodes: [Episode] = []
        for (i, seed) in seeds.enumerated() {
            var config = EnvironmentConfig(imageWidth: imageSize, imageHeight: imageSize)
            config.maxDistractors = maxDistractors
            let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed, config: config)
            let recorder = EpisodeRecorder(environment: env)
            let (success, _) = try SimRunner.runExpert(env, profile: profile, recorder: recorder)
            if success || !onlySuccessful { episodes.append(try recorder.episode()) }
            progress(i + 1, seeds.count)
        }
        return episodes
    }

    /// Successful demos from `seeds`, in order, until `count` succeeded (failed seeds are
    /// skipped); `profile` picks each seed's operator, `progress(tried, succeeded)` follows
    /// each seed.
    public static func collectSuccessful(
        count: Int, embodiment: EmbodimentKind, task: TaskKind, seeds: [UInt64], imageSize: Int, maxDistractors: Int? = nil,
        profile: (UInt64) -> OperatorProfile = { _ in .clean }, progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> [Episode] {
        var episodes: [Episode] = []
        for (i, seed) in seeds.enumerated() where episodes.count < count {
            episodes += try collect(embodiment: embodiment, task: task, seeds: [seed], imageSize: imageSize,
                                    profile: profile(seed), maxDistractors: maxDistractors)
            progress(i + 1, episodes.count)
        }
        return episodes
    }

    /// Embodiment specs by name, for datasets and policies.
    public static var specs: [String: EmbodimentSpec] {
        Dictionary(uniqueKeysWithValues: EmbodimentKind.allCases.map { ($0.rawValue, $0.spec) })
    }
}
