import Foundation
import RobotData
import RobotSim
import TensorKit
import Training
import VLAModel

/// How a pretrained VLA checkpoint is post-trained on the fleet: the learner's backend and the
/// actors' policy, built the same way by `vla demo`, `vla learner` and `vla actor`.
public struct PostTrainingSetup: Sendable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case hgDagger = "hg-dagger"
        case recap
    }

    public var algorithm = Algorithm.hgDagger
    /// Parameter-path prefixes frozen during post-training: SOP trains the action expert and
    /// the vision encoder with the language backbone frozen (it also never travels to actors).
    public var frozen = PostTrainingSetup.languageBackbone
    public static let languageBackbone = ["tokenEmbedding", "textProjection", "textPosition", "backbone", "backboneNorm"]
    /// The language backbone and L1's grounding (vision encoder, pointing head): what `vla demo`
    /// freezes when its pretraining kept the grounding frozen. Training the grounding on the few
    /// post-training scenes costs JPM's predicted point 10 points of success (README, Fleet).
    public static let languageBackboneAndGrounding = PointingPretraining.trainedAnyText
    public var schedule = TrainingSchedule.postTraining
    /// RECAP: value-head steps on the offline data before it is frozen, n of the n-step
    /// return, the share of policy steps labelled positive, and the classifier-free guidance
    /// weight on the fleet's rollouts (SOP: 1.0).
    public var recapValueSteps = 400
    public var recapLookahead = 10
    public var recapPositiveFraction = 0.3
    public var recapFleetGuidance = 1.0
    /// RECAP: keep training the value head on the online episodes (SOP's option; off: frozen).
    public var recapContinuousValue = false
    public var seed: UInt64 = 0
    /// Train as one rank of a data-parallel learner (see `LearnerRanks`).
    public var dataParallel: DistributedGroup?
    /// Data-parallel: send gradients as bfloat16 (`BehaviorCloningTrainer.bfloat16Gradients`).
    public var bfloat16Gradients = false

    /// Seed of RECAP's fresh advantage token: learner and actors add the same one.
    public static let advantageTokenSeed: UInt64 = 0xADA7

    public init() {}

    /// The learner's side: the checkpoint with exactly `frozen` frozen (and RECAP's token),
    /// the algorithm (RECAP fits its value on `offline` first) and the backend. `declared`:
    /// bodies from embodiment files served next to RobotSim's; the checkpoint must have been
    /// pretrained on each (its normalization statistics), or their episodes could not train it.
    public func learnerBackend(checkpoint: URL, offline: [Episode], declared: [EmbodimentSpec] = [], log: (String) -> Void) throws
        -> (backend: PostTrainingBackend, trainer: BehaviorCloningTrainer, algorithm: any PostTrainingAlgorithm) {
        var (policy, _) = try VLAPolicy.load(from: checkpoint)
        var specs = DemoCollector.specs
        for spec in declared {
            guard policy.stats.actions[spec.name] != nil else { throw PostTrainingError.notPretrainedOn(spec.name) }
            specs[spec.name] = spec
        }
        policy.model.freeze(frozen)
        let algorithm: any PostTrainingAlgorithm
        switch self.algorithm {
        case .hgDagger:
            algorithm = HGDAgger()
        case .recap:
            // V(s) reads a frozen copy of the pretrained backbone; only its head trains.
            let (encoder, _) = try VLAPolicy.load(from: checkpoint)
            let value = try StepsToGoValue(encoder: encoder, seed: seed &+ 3)
            log("RECAP: fitting the value on \(offline.count) offline episodes (\(recapValueSteps) steps)"
                + (recapContinuousValue ? ", then training it on the online episodes too" : ", then freezing it"))
            _ = try TensorLock.run {
                try value.fit(episodes: offline, specs: specs, stepLimit: RECAP.stepLimit, steps: recapValueSteps,
                              seed: seed &+ 4, log: log)
            }
            policy = try policy.withAdvantageConditioning(seed: Self.advantageTokenSeed)
            algorithm = RECAP(value: value, specs: specs, lookahead: recapLookahead, positiveFraction: recapPositiveFraction,
                              continuousValue: recapContinuousValue)
        }
        let trainer = BehaviorCloningTrainer(policy: policy, schedule: schedule, seed: seed &+ 1, dataParallel: dataParallel)
        trainer.bfloat16Gradients = bfloat16Gradients
        let backend = try PostTrainingBackend(trainer: trainer, offline: offline, specs: specs,
                                              algorithm: algorithm, seed: seed &+ 2)
        return (backend, trainer, algorithm)
    }

    /// An actor's policy: the checkpoint, with RECAP's token and fleet guidance when RECAP runs
    /// (the learner's published weights then load into it).
    public func actorPolicy(checkpoint: URL) throws -> VLAPolicy {
        var (policy, _) = try VLAPolicy.load(from: checkpoint)
        if algorithm == .recap {
            policy = try policy.withAdvantageConditioning(seed: Self.advantageTokenSeed)
            policy.advantageGuidance = recapFleetGuidance
        }
        return policy
    }

    /// Successful demos of `tasks` at `imageSize` from an episode store (the offline data).
    public static func offlineDemos(store: URL, embodiment: EmbodimentKind, tasks: [TaskKind], imageSize: Int,
                                    perTask: Int = .max) throws -> [Episode] {
        let store = try EpisodeStore(root: store)
        var demos: [Episode] = []
        for task in tasks {
            demos += try store.loadAll(matching: EpisodeQuery(task: task.rawValue, embodiment: embodiment.rawValue,
                                                              source: .demo, success: true)).episodes
                .filter { $0.cameras.values.first?.width == imageSize }.prefix(perTask)
        }
        return demos
    }
}
