import Foundation
import RobotData
import RobotSim

/// Pointing labels for L1-style co-training, from the simulator: an episode's seed rebuilds its
/// scene (layout and camera jitter are functions of the seed), and the target object's position
/// at reset is projected into the scene camera. Episodes without a seed, or of tasks without a
/// single target, have no label.
public enum TargetPointLabel {
    public static func scenePoint(of episode: Episode) throws -> SIMD2<Float>? {
        guard let seed = episode.seed, let embodiment = EmbodimentKind(rawValue: episode.embodiment),
              let task = TaskKind(rawValue: episode.task), task != .sort, task != .drawer,
              let scene = episode.cameras["scene"] else { return nil }
        let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed,
                                       config: EnvironmentConfig(imageWidth: scene.width, imageHeight: scene.height, renderImages: false))
        env.reset()
        return env.targetImagePoint.map { SIMD2(Float($0.x), Float($0.y)) }
    }
}
