import ArgumentParser
import Dashboard
import Fleet
import Foundation
import RobotSim
import TensorKit
import Training
import VLAModel

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The main job: pretrain a small VLA on scripted demos, post-train it with a learner and actors on loopback (HG-DAgger or RECAP), and compare success before and after.")

    @Option(help: "Embodiment (arm7, arm6, bimanual).") var embodiment = "arm7"
    @Option(help: "Tasks, comma separated; actors are spread over them.") var tasks = "reach"
    @Option(help: "Actors on loopback.") var actors = 4
    @Option(help: "Scripted demos per task for pretraining (cached in the run directory).") var demos = 30
    @Option(help: "Pretraining steps (cached; raise to continue).") var pretrainSteps = 600
    @Option(help: "Fleet episodes per actor (minimum).") var episodesPerActor = 6
    @Option(help: "Post-training budget: learner train steps (actors run until their episodes use the version after it).") var trainSteps = 1000
    @Option(help: "Plain HG-DAgger instead of online post-training: this many rounds of collecting --episodes-per-actor episodes per actor with a fixed policy, then retraining --train-steps / rounds steps.") var offlineRounds: Int?
    @Flag(help: "Lock-step rounds instead of SOP's asynchronous fleet: every actor runs --episodes-per-round episodes with the newest version, then the learner trains 10 steps on them and publishes; actors and learner take turns, so the run is a function of --seed (replaces --episodes-per-actor).") var lockstep = false
    @Option(help: "Lock-step: episodes per actor per round.") var episodesPerRound = 1
    @Option(help: "SOP's more-offline-data baseline instead of the fleet: this many more scripted demos per task, then --train-steps learner steps on all demos, no online data.") var extraDemos: Int?
    @Option(help: "Held-out evaluation episodes per task, before and after.") var evalEpisodes = 200
    @Option(help: "Operator takes over when the policy's native action is this far (L2) from its own for 3 steps.") var deviationThreshold: Float = 0.3
    @Option(help: "Operator takes over after this many policy steps in an episode.") var policyStepBudget = 60
    @Option(help: operatorApproachHelp) var operatorApproach = "direct"
    @Option(help: "Post-training learning rate (constant).") var postTrainingLr: Float = TrainingSchedule.postTraining.learningRate
    @Option(help: "L1 pointing pretraining scenes before the demos' behaviour cloning (0: off; sets the pointing loss weight to 1).") var pointingScenes = 2000
    @Option(help: "L1 pointing pretraining steps.") var pointingSteps = 800
    @Option(help: "L1 pointing pretraining peak learning rate.") var pointingLr = FleetDemo.defaultPointingLearningRate
    @Flag(inversion: .prefixedNo, help: "Keep L1's grounding frozen through the demos' behaviour cloning.") var freezeGrounding = true
    @Option(help: "JPM guidance strength for actors and evaluations (0: off).") var jpmStrength = 1.0
    @Option(help: "JPM point source: predicted (pointing head; needs --pointing-scenes) or oracle.") var jpmPoint = "predicted"
    @Flag(help: "JPM's carry on pick/place for actors and evaluations: after the grasp, guide the block up, over the mat and down (the mat from the oracle, or with --jpm-point predicted the checkpoint's place head: vla train pointing-head --head place).") var jpmCarry = false
    @Flag(help: "Pretrain with joint-position actions as offsets from the chunk's starting joint state (delta actions).") var relativeActions = false
    @Flag(help: "Prompt as \"instruction. Num hands: … Control mode: ….\" (the instruction at the same token for every body; use a new --out: a cached pretraining keeps its layout).") var instructionFirst = false
    @Option(help: "Pretraining run directory (default OUT/pretrain). A `vla train bc --out` directory trained with the same settings is reused as it is.") var pretrainDir: String?
    @Option(help: "Text encoder: bytes (learned byte embeddings) or minilm (frozen all-MiniLM-L6-v2 features and a learned projection; the model from scripts/bootstrap or $SWIFTVLA_MINILM_DIR). Use a new --out: a cached pretraining keeps its encoder.") var textEncoder = TextEncoderChoice.bytes.rawValue
    @Option(help: "Post-training algorithm: hg-dagger or recap.") var algorithm = "hg-dagger"
    @Option(help: "Parameter prefixes frozen in post-training, comma separated (default: the language backbone, and L1's grounding when --freeze-grounding kept it frozen in pretraining; \"\" trains everything).") var postTrainingFrozen: String?
    @Option(help: "RECAP: value-head steps on the offline demos before it is frozen.") var recapValueSteps = 400
    @Flag(help: "RECAP: keep training the value head on the online episodes (default: frozen after the demos).") var recapContinuousValue = false
    @Option(help: "RECAP: classifier-free guidance weight on the fleet's rollouts.") var recapFleetGuidance = 1.0
    @Option(help: "RECAP: classifier-free guidance weight in the final evaluation.") var recapEvalGuidance = 1.5
    @Option(help: "RECAP: steps of the n-step return.") var recapLookahead = 10
    @Option(help: "RECAP: share of policy steps labelled positive (sets each task's ε).") var recapPositiveFraction = 0.3
    @Option(help: "Actors load new weights between episodes (episode, SOP's rule) or also before every chunk (chunk).") var weightSwap = "episode"
    @Option(help: "OOD guard on the actors: off, monitor or correct (the checkpoint's ood-guard.json).") var oodGuard = "off"
    @Option(help: "Serve the learner's dashboard and /metrics on this port while the fleet runs (0 = any free port).") var dashboardPort: Int?
    @Flag(help: seenScenesOnlyHelp) var seenScenesOnly = false
    @Option(help: "Run directory.") var out = "runs/demo"
    @Option(help: "Random seed of the pretraining, the fleet's scenes and the sampling (with --lockstep the fleet, too, repeats exactly).") var seed: UInt64 = 0
    @Flag(help: "Run the tensor-engine demo instead (a small transformer learning sequences).") var tensor = false

    func run() async throws {
        if tensor {
            try TensorDemo.run(steps: 200, seed: seed) { print($0) }
            return
        }
        guard let body = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        var demo = FleetDemo(output: URL(fileURLWithPath: out))
        demo.embodiment = body
        demo.tasks = try tasks.split(separator: ",").map { name in
            guard let t = TaskKind(rawValue: String(name)), t.embodiments.contains(body) else {
                throw ValidationError("unknown task \(name) for \(embodiment)")
            }
            return t
        }
        demo.actors = actors
        demo.pretrainDemos = demos
        demo.pretrainSteps = pretrainSteps
        demo.episodesPerActor = episodesPerActor
        demo.trainSteps = trainSteps
        if let offlineRounds {
            guard offlineRounds >= 1, offlineRounds <= trainSteps else { throw ValidationError("--offline-rounds must be between 1 and --train-steps") }
            demo.offlineRounds = offlineRounds
        }
        if let extraDemos {
            guard extraDemos >= 1 else { throw ValidationError("--extra-demos must be at least 1") }
            guard offlineRounds == nil else { throw ValidationError("--extra-demos replaces the fleet: not with --offline-rounds") }
            demo.extraDemos = extraDemos
        }
        if lockstep {
            guard offlineRounds == nil, extraDemos == nil else { throw ValidationError("--lockstep is an online fleet: not with --offline-rounds or --extra-demos") }
            guard episodesPerRound >= 1 else { throw ValidationError("--episodes-per-round must be at least 1") }
            demo.lockstepEpisodesPerRound = episodesPerRound
        }
        if seenScenesOnly {
            guard extraDemos == nil else { throw ValidationError("--seen-scenes-only is not available with --extra-demos") }
            demo.sceneSplit = .standard
        }
        demo.gate.deviationThreshold = deviationThreshold
        guard policyStepBudget >= 1 else { throw ValidationError("--policy-step-budget must be at least 1") }
        demo.gate.policyStepBudget = policyStepBudget
        demo.operatorApproach = try parseOperatorApproach(operatorApproach)
        guard postTrainingLr > 0, postTrainingLr.isFinite else { throw ValidationError("--post-training-lr must be positive") }
        demo.setup.schedule.learningRate = postTrainingLr
        demo.evaluationSeeds = evalEpisodes
        demo.seed = seed
        demo.freezeGrounding = freezeGrounding
        demo.jpmStrength = jpmStrength
        guard let point = JointPredictionModule.PointSource(rawValue: jpmPoint) else { throw ValidationError("--jpm-point must be predicted or oracle") }
        demo.jpmPoint = point
        if jpmCarry {
            guard jpmStrength > 0 else { throw ValidationError("--jpm-carry needs --jpm-strength > 0") }
            guard tasks.split(separator: ",").contains("pick_place") else { throw ValidationError("--jpm-carry guides pick_place only: add it to --tasks") }
            demo.jpmCarry = CarryGuidance()
        }
        demo.model.relativeActions = relativeActions
        if instructionFirst { demo.model.promptLayout = .instructionFirst }
        demo.pretrainDirectory = pretrainDir.map { URL(fileURLWithPath: $0) }
        guard let text = TextEncoderChoice(rawValue: textEncoder) else {
            throw ValidationError("--text-encoder must be \(TextEncoderChoice.allCases.map(\.rawValue).joined(separator: " or ")), not \(textEncoder)")
        }
        demo.model.textEncoder = text
        guard let kind = PostTrainingSetup.Algorithm(rawValue: algorithm) else { throw ValidationError("--algorithm must be hg-dagger or recap, not \(algorithm)") }
        demo.setup.algorithm = kind
        guard let swap = WeightSwap(rawValue: weightSwap) else { throw ValidationError("--weight-swap must be episode or chunk") }
        demo.weightSwap = swap
        guard let oodMode = OODGuardMode(rawValue: oodGuard) else { throw ValidationError("--ood-guard must be off, monitor or correct") }
        demo.oodGuard = oodMode
        demo.setup.frozen = postTrainingFrozen.map(parameterPrefixes)
            ?? (freezeGrounding && pointingScenes > 0 ? PostTrainingSetup.languageBackboneAndGrounding : PostTrainingSetup.languageBackbone)
        demo.setup.recapValueSteps = recapValueSteps
        demo.setup.recapContinuousValue = recapContinuousValue
        demo.setup.recapFleetGuidance = recapFleetGuidance
        demo.recapEvaluationGuidance = recapEvalGuidance
        demo.setup.recapLookahead = recapLookahead
        demo.setup.recapPositiveFraction = recapPositiveFraction
        if pointingScenes > 0 {
            demo.model.pointingWeight = 1
            demo.pointingScenes = pointingScenes
            demo.pointingSteps = pointingSteps
            guard pointingLr > 0, pointingLr.isFinite else { throw ValidationError("--pointing-lr must be positive") }
            demo.pointingLearningRate = pointingLr
        }
        let dashboard = Locked<DashboardServer?>(nil)
        if let dashboardPort {
            demo.onLearnerStarted = { learner in
                let server = await DashboardServer.start(learner: learner, port: dashboardPort, log: emit)
                dashboard.withLock { $0 = server }
            }
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let r = try await demo.run { emit($0) }
        await dashboard.current?.stop()
        emit("held-out success (policy alone):")
        for b in r.before {
            guard let a = r.after.first(where: { $0.task == b.task }) else { continue }
            emit("  \(b.embodiment)/\(b.task): before \(FleetDemoReport.rate(b)), after \(FleetDemoReport.rate(a)), "
                  + FleetDemoReport.signedPoints(a.rate - b.rate))
            if let p = r.paired(a) { emit("    " + p.summary(candidate: "the post-trained policy", baseline: "the pretrained one")) }
        }
        emit("report: \(out)/report.html, \(out)/report.json")
    }
}

/// Writes a line straight to stdout (no stdio buffering), so progress shows up live also
/// when the output goes to a file or a pipe.
private func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
