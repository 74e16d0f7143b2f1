import Foundation
import RobotData

/// Runs scripted-operator episodes and measures simulator speed (`vla sim run` / `vla sim bench`).
public enum SimRunner {
    /// Roll out the scripted operator from reset until done. Records into `recorder` if given.
    @discardableResult
    public static func runExpert(_ env: RobotEnvironment, profile: OperatorProfile = .clean,
                                 recorder: EpisodeRecorder? = nil) throws -> (success: Bool, steps: Int) {
        env.expert.profile = profile
        let obs = env.reset()
        recorder?.record(observation: obs)
        while true {
            let a = env.expertAction()
            let r = try env.step(nativeAction: a)
            recorder?.record(action: a, result: r, source: .demo)
            if r.done { return (r.success, env.stepCount) }
        }
    }

    /// Every (embodiment, task) pair that exists.
    public static var pairs: [(EmbodimentKind, TaskKind)] {
        TaskKind.allCases.flatMap { t in t.embodiments.map { ($0, t) } }
    }
}

/// Simulator benchmark numbers.
public struct SimBenchmark {
    public struct SpeedRow: Sendable {
        public let embodiment: EmbodimentKind
        public let physicsStepsPerSecond: Double
        public let defaultFramesPerSecond: Double
        public let fastFramesPerSecond: Double
        public let glRenderer: String
    }

    public struct SuccessRow: Sendable {
        public let embodiment: EmbodimentKind
        public let task: TaskKind
        public let episodes: Int
        public let successes: Int
        public let meanSteps: Double
        public var rate: Double { Double(successes) / Double(max(episodes, 1)) }
    }

    /// Physics steps/s (pick-place scene, arms holding home) and 96x96 scene-camera frames/s
    /// with MuJoCo's default render flags and with the fast flags, on the calling thread.
    public static func speed(embodiment: EmbodimentKind, physicsSteps: Int = 20_000, frames: Int = 200,
                             width: Int = 96, height: Int = 96, multisamples: Int = 0) throws -> SpeedRow {
        let env = try RobotEnvironment(embodiment: embodiment, task: .pickPlace, seed: 1,
                                       config: EnvironmentConfig(imageWidth: width, imageHeight: height, renderImages: false, multisamples: multisamples))
        env.reset()
        var t0 = DispatchTime.now().uptimeNanoseconds
        env.simulation.step(physicsSteps)
        let physics = Double(physicsSteps) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        let renderer = try OffscreenRenderer(model: env.model, maxWidth: width, maxHeight: height, fastFlags: false)
        var fps: [Double] = []
        for fast in [false, true] {
            renderer.fastFlags = fast
            _ = try renderer.render(env.simulation, camera: 0, width: width, height: height)
            let n = fast ? frames : max(10, frames / 10)
            t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<n {
                env.simulation.step(1)
                _ = try renderer.render(env.simulation, camera: 0, width: width, height: height)
            }
            fps.append(Double(n) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
        }
        return SpeedRow(embodiment: embodiment, physicsStepsPerSecond: physics, defaultFramesPerSecond: fps[0],
                        fastFramesPerSecond: fps[1], glRenderer: renderer.glRenderer)
    }

    /// Scripted-operator success over seeds 0..<episodes (no rendering).
    public static func expertSuccess(embodiment: EmbodimentKind, task: TaskKind, episodes: Int,
                                     profile: OperatorProfile = .clean, firstSeed: UInt64 = 0) throws -> SuccessRow {
        var ok = 0, steps = 0
        for s in 0..<episodes {
            let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: firstSeed + UInt64(s),
                                           config: EnvironmentConfig(renderImages: false))
            var p = profile
            p.seed = profile.seed &+ firstSeed &+ UInt64(s)   // fresh operator randomness per episode
            let r = try SimRunner.runExpert(env, profile: p)
            if r.success { ok += 1 }
            steps += r.steps
        }
        return SuccessRow(embodiment: embodiment, task: task, episodes: episodes, successes: ok,
                          meanSteps: Double(steps) / Double(max(episodes, 1)))
    }
}
