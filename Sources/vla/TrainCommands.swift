import ArgumentParser
import Foundation
import RobotData
import RobotSim
import TensorKit
import Training
import VLAModel

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train policies: `vla train --config stages/R1.yaml` runs a stage config.",
        subcommands: [TrainStage.self, TrainBC.self, TrainR2.self, TrainProgress.self, TrainPointingHead.self],
        defaultSubcommand: TrainStage.self)
}

struct TrainBC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bc",
        abstract: "Behaviour cloning of the flow-matching VLA on scripted-operator demos (resumable).")

    @Option(help: "Embodiments, comma separated (arm7, arm6, bimanual).") var embodiments = "arm7"
    @Option(help: "Tasks, comma separated (reach, push, pick_place, sort, stack, open_drawer; default reach). With --store: the stored body's tasks to use (default all).") var tasks: String?
    @Option(help: "Demonstrations per (embodiment, task) pair.") var demos = 40
    @Option(help: "Clone the demos of the --embodiment-file body from this episode store (e.g. a learner's store a bridge filled: its successful all-operator episodes) instead of RobotSim's.") var store: String?
    @Option(help: "With --store: the embodiment file of the stored body (e.g. bridges/metaworld/sawyer.yaml).") var embodimentFile: String?
    @Option(help: "Optimizer steps.") var steps = 1000
    @Option(help: "Batch size.") var batchSize = 32
    @Option(help: "Peak learning rate.") var learningRate: Float = 3e-4
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "At most this many distractor objects per scene (default: the task's range).") var maxDistractors: Int?
    @Option(help: "Gaussian noise on the standardized state in training.") var stateNoise: Float = VLAConfig().stateNoise
    @Option(help: "Spatial-softmax keypoints per camera (0: patch tokens only).") var keypoints = VLAConfig().keypoints
    @Option(help: "Weight of the auxiliary loss that points at the task's target in the scene camera (0: off).") var pointingWeight = VLAConfig().pointingWeight
    @Flag(help: "Joint-position actions as offsets from the chunk's starting joint state (delta actions).") var relativeActions = false
    @Flag(help: "Prompt as \"instruction. Num hands: … Control mode: ….\" instead of body first, so the instruction starts at the same token for every body (a new model only).") var instructionFirst = false
    @Option(help: "L1 pointing pretraining: rendered scenes (needs --pointing-weight > 0).") var pointingScenes = 0
    @Option(help: "L1 pointing pretraining: optimizer steps before behaviour cloning.") var pointingSteps = 0
    @Option(help: "L1 pointing pretraining: peak learning rate.") var pointingLr = PointingPretraining.defaultLearningRate
    @Option(help: "L1 pointing pretraining: ask each scene in the prompt of one of these embodiments, comma separated (default: the scene's own), so the pointing holds under every body's control-mode text.") var pointingPrompts: String?
    @Flag(help: "Freeze what pointing pretraining trained during behaviour cloning.") var freezeGrounding = false
    @Flag(help: "Speed conditioning: the action expert's norms are modulated by each demo's measured optical-flow speed (`vla eval --speed` is the knob).") var speedConditioning = false
    @Option(help: "Operator speed scales the demos cycle through, comma separated (e.g. 0.5,1,2).") var operatorSpeeds = "1"
    @Option(help: "Weight of the episode-progress head's loss (0: no head).") var progressWeight = VLAConfig().progressWeight
    @Option(help: "Text encoder: bytes (learned byte embeddings) or minilm (frozen all-MiniLM-L6-v2 features, a learned projection; the model from scripts/bootstrap or $SWIFTVLA_MINILM_DIR).") var textEncoder = TextEncoderChoice.bytes.rawValue

    @Flag(help: seenScenesOnlyHelp) var seenScenesOnly = false
    @Option(help: "Run directory (checkpoint, loss.csv, demos).") var out = "runs/bc"

    func run() async throws {
        var job = BehaviorCloningRun(output: URL(fileURLWithPath: out))
        job.embodiments = try embodiments.split(separator: ",").map { name in
            guard let e = EmbodimentKind(rawValue: String(name)) else { throw ValidationError("unknown embodiment \(name)") }
            return e
        }
        switch (store, embodimentFile) {
        case let (store?, file?):
            guard pointingSteps == 0 else { throw ValidationError("--store trains on stored demos only: no --pointing-steps") }
            job.storedBody = .init(store: URL(fileURLWithPath: store), spec: try EmbodimentFile.load(URL(fileURLWithPath: file)).spec,
                                   tasks: tasks.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } })
        case (nil, nil):
            job.tasks = try (tasks ?? "reach").split(separator: ",").map { name in
                guard let t = TaskKind(rawValue: String(name)) else { throw ValidationError("unknown task \(name)") }
                return t
            }
        default:
            throw ValidationError("--store and --embodiment-file go together")
        }
        job.demosPerPair = demos
        job.schedule.totalSteps = steps
        job.schedule.batchSize = batchSize
        job.schedule.learningRate = learningRate
        job.seed = seed
        job.maxDistractors = maxDistractors
        job.model.stateNoise = stateNoise
        job.model.keypoints = keypoints
        job.model.pointingWeight = pointingWeight
        job.model.relativeActions = relativeActions
        if instructionFirst { job.model.promptLayout = .instructionFirst }
        guard let text = TextEncoderChoice(rawValue: textEncoder) else {
            throw ValidationError("--text-encoder must be \(TextEncoderChoice.allCases.map(\.rawValue).joined(separator: " or ")), not \(textEncoder)")
        }
        job.model.textEncoder = text
        job.pointingScenes = pointingScenes
        job.pointingSteps = pointingSteps
        guard pointingLr > 0, pointingLr.isFinite else { throw ValidationError("--pointing-lr must be positive") }
        job.pointingLearningRate = pointingLr
        if let pointingPrompts {
            job.pointingPromptBodies = try pointingPrompts.split(separator: ",").map { name in
                guard let body = EmbodimentKind(rawValue: String(name)) else { throw ValidationError("--pointing-prompts: unknown embodiment \(name)") }
                return body
            }
        }
        job.freezeGrounding = freezeGrounding
        if seenScenesOnly {
            guard store == nil else { throw ValidationError("--seen-scenes-only splits RobotSim's scenes: not with --store") }
            job.sceneSplit = .standard
        }
        job.model.speedConditioning = speedConditioning
        job.model.progressWeight = progressWeight
        job.operatorSpeeds = try operatorSpeeds.split(separator: ",").map { text in
            guard let v = Double(text), v > 0, v.isFinite else { throw ValidationError("--operator-speeds: \(text) is not a positive number") }
            return v
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        _ = try job.run { print($0) }
        print("checkpoint: \(out)/checkpoint")
    }
}

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Success rate (95% interval) of a checkpoint in RobotSim; with --chain, CALVIN-style instruction chains.")

    @Option(help: "Checkpoint directory (not needed with --operator).") var checkpoint: String?
    @Option(help: "Embodiment.") var embodiment = "arm7"
    @Option(help: "Task.") var task = "reach"
    @Option(help: "Episodes (seeds first-seed ..< first-seed + episodes).") var episodes = 20
    @Option(help: "First evaluation seed (training demos use seeds ≥ 10000).") var firstSeed: UInt64 = 0
    @Option(help: "Only scenes of this part of SceneSplit.standard (seen, novel-color, novel-position, novel-both): the first --episodes such seeds from --first-seed. Default: every seed.") var scenes: String?
    @Option(help: "At most this many distractor objects per scene (default: the task's range).") var maxDistractors: Int?
    @Option(help: "Start the flow sampler from an R2 source-noise policy (the run's noise-policy directory).") var noisePolicy: String?
    @Option(help: "OOD guard from the checkpoint's ood-guard.json: off, monitor (count out-of-distribution states) or correct (also move the chunk's joint targets back toward the training states).") var oodGuard = "off"
    @Option(help: "OOD correction direction: density (Green-VLA's α∇p) or log-density (α∇log p).") var oodRule = "density"
    @Option(help: "JPM guidance strength (0: off): point at the target, lift it with depth, IK to q*, guide the sampler toward it.") var jpmStrength = 0.0
    @Option(help: "Where JPM's point comes from: predicted (the pointing head) or oracle (the simulator's target, an upper bound).") var jpmPoint = "predicted"
    @Option(help: "JPM: largest joint move per control step along the path to q* (rad).") var jpmJointStep: Float = 0.05
    @Option(help: "JPM: ask the pointing head with this embodiment's prompt (the one L1 grounded on) instead of the episode's.") var jpmPromptAs: String?
    @Option(help: "JPM carry: where the place point comes from, predicted or oracle (default: as --jpm-point).") var jpmPlacePoint: String?
    @Flag(help: "JPM on pick_place: once the gripper holds the block, also guide the carry up, over the mat and down with the fingers closed (the mat from the oracle or, with --jpm-point predicted, the checkpoint's place head: vla train pointing-head).") var jpmCarry = false
    @Option(help: "RECAP checkpoints: condition on \"advantage positive\" with this classifier-free guidance weight (1: conditioned only; omit: unconditioned).") var advantageGuidance: Double?
    @Flag(help: "Also report the pointing head's mean error on the evaluation seeds' scenes (a model trained with a pointing loss).") var pointingError = false
    @Option(help: "--pointing-error: also point on the same scenes with this embodiment's prompt (control mode, arm count) instead of their own: is an error the prompt's or the robot's look?") var pointingPromptAs: String?
    @Option(help: "Speed-conditioned checkpoints: act at this speed relative to the training demos' reference (default 1).") var speed: Float?
    @Option(help: "Speed-conditioned checkpoints: run the seeds once per knob value (comma separated, e.g. 0.5,1,2) and measure the recorded episodes' optical-flow and end-effector speed.") var speedSweep: String?
    @Option(help: "Chained mode: this many instructions in a row in one scene per seed (CALVIN-style); reports the average chain length.") var chain: Int?
    @Option(help: "Chained mode: tasks the instructions are drawn from, comma separated (reach, push, pick_place).") var chainTasks = "reach,push,pick_place"
    @Flag(help: "Chained mode: the scripted operator acts instead of a checkpoint (how feasible the chains are).") var `operator` = false
    @Option(help: "Also evaluate this checkpoint on the same seeds (same JPM/OOD settings) and compare the two per seed (McNemar's exact test).") var baseline: String?
    @Option(help: "Write the scene camera of the first --gif-episodes episodes as looping GIFs into this directory.") var gifs: String?
    @Option(help: "How many episodes (from the first seed) --gifs writes.") var gifEpisodes = 10
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        guard let pointSource = JointPredictionModule.PointSource(rawValue: jpmPoint) else { throw ValidationError("--jpm-point must be predicted or oracle, not \(jpmPoint)") }
        let jpm = jpmStrength > 0 ? JointPredictionModule(strength: jpmStrength, pointSource: pointSource, maxJointStep: jpmJointStep) : nil
        if let jpmPromptAs {
            guard let jpm else { throw ValidationError("--jpm-prompt-as needs --jpm-strength > 0") }
            guard let body = EmbodimentKind(rawValue: jpmPromptAs) else { throw ValidationError("unknown embodiment \(jpmPromptAs)") }
            jpm.pointingPrompt = body.spec
        }
        if jpmCarry {
            guard let jpm else { throw ValidationError("--jpm-carry needs --jpm-strength > 0") }
            jpm.carry = CarryGuidance()
            if let jpmPlacePoint {
                guard let source = JointPredictionModule.PointSource(rawValue: jpmPlacePoint) else { throw ValidationError("--jpm-place-point must be predicted or oracle") }
                jpm.placeSource = source
            }
        } else if jpmPlacePoint != nil {
            throw ValidationError("--jpm-place-point needs --jpm-carry")
        }
        if let chain { return try runChains(length: chain, embodiment: e, jpm: jpm) }
        if `operator` { throw ValidationError("--operator needs --chain") }
        guard let checkpoint else { throw ValidationError("--checkpoint is required (except with --chain and --operator)") }
        guard let t = TaskKind(rawValue: task) else { throw ValidationError("unknown task \(task)") }
        guard let mode = OODGuardMode(rawValue: oodGuard) else { throw ValidationError("--ood-guard must be off, monitor or correct, not \(oodGuard)") }
        guard let rule = CorrectionRule(rawValue: oodRule) else { throw ValidationError("--ood-rule must be density or log-density, not \(oodRule)") }
        let (policy, step) = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint))
        if jpmCarry, (jpmPlacePoint.flatMap(JointPredictionModule.PointSource.init) ?? pointSource) == .predicted, policy.model.placePointingHead == nil {
            throw ValidationError("--jpm-carry with the predicted point needs a place head (vla train pointing-head --checkpoint \(checkpoint)) or --jpm-point oracle")
        }
        if let advantageGuidance {
            guard policy.model.config.advantageConditioning else { throw ValidationError("--advantage-guidance needs a RECAP checkpoint (one with the advantage token)") }
            policy.advantageGuidance = advantageGuidance
        }
        if let speed {
            guard policy.model.config.speedConditioning else { throw ValidationError("--speed needs a speed-conditioned checkpoint (vla train bc --speed-conditioning)") }
            guard speed > 0, speed.isFinite else { throw ValidationError("--speed must be positive") }
            policy.speed = speed
        }
        let seeds = try evaluationSeeds(embodiment: e, task: t)
        if let speedSweep {
            let knobs = try speedSweep.split(separator: ",").map { text in
                guard let v = Float(text), v > 0, v.isFinite else { throw ValidationError("--speed-sweep: \(text) is not a positive number") }
                return v
            }
            let rows = try SpeedKnobEvaluation.run(policy: policy, embodiment: e, task: t, seeds: seeds, knobs: knobs,
                                                   maxDistractors: maxDistractors, jpm: jpm) { if !json { print($0) } }
            print(json ? SpeedKnobEvaluation.json(rows, step: step) : SpeedKnobEvaluation.table(rows))
            return
        }
        if pointingError {
            guard policy.model.config.pointingWeight > 0 else { throw ValidationError("--pointing-error needs a checkpoint with a pointing head") }
            let error = try PointingPretraining(embodiment: e, tasks: [t]).pointingError(policy: policy, seeds: seeds)
            print(String(format: "pointing error on %d %@scenes (seeds %d…%d, normalized image units): %.3f", seeds.count, scenes.map { "\($0) " } ?? "",
                         seeds.first ?? 0, seeds.last ?? 0, error))
            if let pointingPromptAs {
                guard let other = EmbodimentKind(rawValue: pointingPromptAs) else { throw ValidationError("unknown embodiment \(pointingPromptAs)") }
                let swapped = try PointingPretraining(embodiment: e, tasks: [t]).pointingError(policy: policy, seeds: seeds, promptAs: other.spec)
                print(String(format: "  the same scenes with %@'s prompt (\"%@\"): %.3f", other.rawValue, other.spec.promptPrefix, swapped))
            }
        } else if pointingPromptAs != nil {
            throw ValidationError("--pointing-prompt-as needs --pointing-error")
        }
        var ood: PolicyEvaluator.OODSettings?
        if mode != .off {
            let file = OODGuard.url(inCheckpoint: URL(fileURLWithPath: checkpoint))
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw ValidationError("--ood-guard \(oodGuard) needs \(file.path) (written by `vla train bc`)")
            }
            var guardModel = try OODGuard.read(file)
            guardModel.correction.rule = rule
            ood = .init(guardModel: guardModel, mode: mode)
        }
        if let noisePolicy {
            if ood != nil { throw ValidationError("--ood-guard is not available with --noise-policy") }
            var r2Config = R2Config()
            r2Config.jpmStrength = jpmStrength   // JPM-guided, as an R2 run with jpm_strength evaluates
            let r2 = R2Alignment(policy: policy, embodiment: e, task: t, demos: [], config: r2Config)
            let outcomes = try r2.outcomes(seeds: seeds, noisePolicy: r2.loadNoisePolicy(from: URL(fileURLWithPath: noisePolicy)))
            let rate = SuccessRate(successes: outcomes.filter { $0 }.count, episodes: seeds.count)
            // --baseline: e.g. the R1 checkpoint through the same rollouts without the source noise.
            let paired = try baseline.map { path -> (SuccessRate, PairedComparison) in
                let base = try R2Alignment(policy: VLAPolicy.load(from: URL(fileURLWithPath: path)).0, embodiment: e, task: t, demos: [], config: r2Config)
                let other = try base.outcomes(seeds: seeds, noisePolicy: nil)
                return (SuccessRate(successes: other.filter { $0 }.count, episodes: seeds.count), try PairedComparison(candidate: outcomes, baseline: other))
            }
            let i = rate.interval95
            let pairedFields = paired.map { r, p in
                #", "baseline": {"checkpoint": "\#(baseline!)", "successes": \#(r.successes), "success_rate": \#(r.rate)}, "paired": \#(p.json)"#
            } ?? ""
            print(json ? #"{"checkpoint_step": \#(step), "embodiment": "\#(embodiment)", "task": "\#(task)", "episodes": \#(episodes), "successes": \#(rate.successes), "success_rate": \#(rate.rate), "ci95": [\#(i.low), \#(i.high)], "noise_policy": true, "jpm_strength": \#(jpmStrength)\#(pairedFields), "per_seed_success": \#(PairedComparison.json(outcomes: outcomes))}"#
                  : "\(embodiment)/\(task) after step \(step) with the learned source noise\(jpm == nil ? "" : " and JPM (strength \(jpmStrength))"): success \(rate)")
            if let (r, p) = paired, !json {
                print("baseline \(baseline!) (plain sampler start): success \(r)")
                print(p.summary())
            }
            return
        }
        if gifs != nil && gifEpisodes < 1 { throw ValidationError("--gif-episodes must be at least 1") }
        let gifOutput = gifs.map { PolicyEvaluator.EpisodeGIFs(directory: URL(fileURLWithPath: $0), episodes: gifEpisodes) }
        let result = try PolicyEvaluator.evaluate(policy: policy, embodiment: e, task: t, seeds: seeds, maxDistractors: maxDistractors,
                                                  ood: ood, jpm: jpm, gifs: gifOutput) { i, n, s in
            if !json { FileHandle.standardError.write(Data("  episode \(i)/\(n): \(s) successes\n".utf8)) }
        }
        var paired: (PolicyEvaluator.Result, PairedComparison, Int)?
        if let baseline {
            let (base, baseStep) = try VLAPolicy.load(from: URL(fileURLWithPath: baseline))
            let r = try PolicyEvaluator.evaluate(policy: base, embodiment: e, task: t, seeds: seeds, maxDistractors: maxDistractors, ood: ood, jpm: jpm) { i, n, s in
                if !json { FileHandle.standardError.write(Data("  baseline episode \(i)/\(n): \(s) successes\n".utf8)) }
            }
            paired = (r, try PairedComparison(candidate: result.outcomes, baseline: r.outcomes), baseStep)
        }
        let c = result.ood
        if json {
            let i = result.success.interval95
            let oodFields = ood == nil ? "" : #", "ood_guard": "\#(oodGuard)", "ood_rule": "\#(oodRule)", "ood_checked_steps": \#(c.checkedSteps), "ood_steps": \#(c.outOfDistributionSteps), "ood_decisions": \#(c.decisions), "ood_decisions_out": \#(c.outOfDistributionDecisions), "ood_corrected_chunks": \#(c.correctedChunks), "ood_recovered_states": \#(c.recoveredStates)"#
            let perSeed = #", "per_seed_success": \#(PairedComparison.json(outcomes: result.outcomes))"#
            let pairedFields = paired.map { r, p, step in
                let i = r.success.interval95
                return #", "baseline": {"checkpoint": "\#(baseline!)", "checkpoint_step": \#(step), "successes": \#(r.success.successes), "success_rate": \#(r.success.rate), "ci95": [\#(i.low), \#(i.high)], "milestones": \#(r.milestonesJSON)}, "paired": \#(p.json)"#
            } ?? ""
            let gifFields = gifs.map { #", "gif_directory": "\#($0)", "gifs": \#(result.gifs.count)"# } ?? ""
            let carryField = jpmCarry ? #", "jpm_carry": {"place_point": "\#(jpmPlacePoint ?? jpmPoint)"}"# : ""
            let jpmFields = (jpm == nil ? "" : #", "jpm_strength": \#(jpmStrength), "jpm_point": "\#(jpmPoint)"\#(jpmStepField(e, jpm))\#(carryField)"#)
                + (advantageGuidance.map { #", "advantage_guidance": \#($0)"# } ?? "")
            let closestField = result.closestApproachQuartiles.map { String(format: #", "closest_approach_m": {"p25": %.4f, "median": %.4f, "p75": %.4f}"#, $0.p25, $0.median, $0.p75) } ?? ""
            let sceneFields = scenes.map { #", "scenes": "\#($0)", "seeds": [\#(seeds.map(String.init).joined(separator: ", "))]"# } ?? ""
            print(#"{"checkpoint_step": \#(step), "embodiment": "\#(embodiment)", "task": "\#(task)", "episodes": \#(episodes)\#(sceneFields), "successes": \#(result.success.successes), "success_rate": \#(result.success.rate), "ci95": [\#(i.low), \#(i.high)], "mean_steps_to_success": \#(result.meanStepsToSuccess), "mean_seconds_to_success": \#(result.meanSecondsToSuccess), "milestones": \#(result.milestonesJSON)\#(closestField)\#(oodFields)\#(jpmFields)\#(gifFields)\#(pairedFields)\#(perSeed)}"#)
        } else {
            if let scenes { print("\(seeds.count) \(scenes) scenes: seeds \(seeds.first ?? 0)…\(seeds.last ?? 0)") }
            print("\(embodiment)/\(task) after step \(step)\(jpm == nil ? "" : " with JPM (\(jpmPoint) point, strength \(jpmStrength)\(jpmCarry ? ", carry to the \(jpmPlacePoint ?? jpmPoint) place point" : ""))"): success \(result.success), mean steps to success \(String(format: "%.1f", result.meanStepsToSuccess)) (\(String(format: "%.2f", result.meanSecondsToSuccess)) s)")
            print("episodes that got there: \(result.milestoneSummary)")
            if let gifs { print("\(result.gifs.count) episode GIFs in \(gifs)") }
            if let (r, p, step) = paired {
                print("baseline \(baseline!) (step \(step)): success \(r.success); \(r.milestoneSummary)")
                print(p.summary())
            }
            if ood != nil {
                print("OOD guard (\(oodGuard)\(mode == .correct ? ", rule \(oodRule)" : "")): \(c.outOfDistributionSteps)/\(c.checkedSteps) states out of distribution"
                      + "; \(c.outOfDistributionDecisions)/\(c.decisions) chunks planned from one"
                      + (mode == .correct ? ", \(c.correctedChunks) of those corrected, \(c.recoveredStates) states brought back above τ" : ""))
            }
        }
    }
}

extension Eval {
    /// The seeds from --first-seed on: every one, or with --scenes the first --episodes of that split part.
    func evaluationSeeds(embodiment: EmbodimentKind, task: TaskKind) throws -> [UInt64] {
        guard let scenes else { return Array(firstSeed..<(firstSeed + UInt64(episodes))) }
        guard let part = SceneSplit.Part(rawValue: scenes) else {
            throw ValidationError("--scenes must be one of \(SceneSplit.Part.allCases.map(\.rawValue).joined(separator: ", ")), not \(scenes)")
        }
        let seeds = SceneSplit.standard.seeds(part, embodiment: embodiment, task: task, from: firstSeed, count: episodes)
        guard seeds.count == episodes else {
            throw ValidationError("--scenes \(scenes): only \(seeds.count) \(embodiment.rawValue)/\(task.rawValue) scenes of that part in \(SceneSplit.searchLimit) seeds from \(firstSeed)")
        }
        return seeds
    }

    /// The JSON field of the JPM step limit that applies to `e`: joints (rad per control step)
    /// or, for an end-effector-delta arm, the TCP path (metres per chunk row).
    func jpmStepField(_ e: EmbodimentKind, _ jpm: JointPredictionModule?) -> String {
        guard let jpm else { return "" }
        let prompt = jpm.pointingPrompt.map { #", "jpm_prompt_as": "\#($0.name)""# } ?? ""
        return (e.spec.controlMode == .endEffectorDelta ? #", "jpm_tcp_step_m": \#(jpm.maxTCPStep)"# : #", "jpm_joint_step": \#(jpm.maxJointStep)"#) + prompt
    }

    func runChains(length: Int, embodiment e: EmbodimentKind, jpm: JointPredictionModule?) throws {
        // Options of single-task evaluation that chains do not implement: refused, not ignored.
        let unsupported = [("--ood-guard", oodGuard != "off"), ("--scenes", scenes != nil), ("--noise-policy", noisePolicy != nil), ("--pointing-error", pointingError),
                           ("--advantage-guidance", advantageGuidance != nil), ("--max-distractors", maxDistractors != nil),
                           ("--speed", speed != nil), ("--speed-sweep", speedSweep != nil)]
        if let (name, _) = unsupported.first(where: { $0.1 }) { throw ValidationError("\(name) is not available with --chain") }
        if `operator` && jpm != nil { throw ValidationError("--jpm-strength needs a checkpoint, not --operator") }
        let pool = try chainTasks.split(separator: ",").map { name in
            guard let t = TaskKind(rawValue: String(name)) else { throw ValidationError("unknown task \(name)") }
            return t
        }
        let taskChain: TaskChain
        do { taskChain = try TaskChain(length: length, tasks: pool) } catch { throw ValidationError("--chain: \(error)") }
        let actor: PolicyEvaluator.ChainActor
        var step = 0
        if `operator` {
            actor = .scriptedOperator
        } else {
            guard let checkpoint else { throw ValidationError("--chain needs --checkpoint or --operator") }
            let (policy, at) = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint))
            actor = .policy(policy, jpm: jpm)
            step = at
        }
        let seeds = Array(firstSeed..<(firstSeed + UInt64(episodes)))
        let stats = try PolicyEvaluator.evaluateChains(actor, embodiment: e, chain: taskChain, seeds: seeds) { i, n, outcome in
            if !json { FileHandle.standardError.write(Data("  chain \(i)/\(n): \(outcome.completed) in a row\n".utf8)) }
        }
        let who = `operator` ? "scripted operator" : "checkpoint step \(step)" + (jpm == nil ? "" : " with JPM (\(jpmPoint) point, strength \(jpmStrength))")
        if json {
            let tasks = taskChain.tasks.map { #""\#($0.rawValue)""# }.joined(separator: ", ")
            let actorField = `operator` ? #", "operator": true"# : #", "checkpoint_step": \#(step)"#
            let jpmFields = jpm == nil ? "" : #", "jpm_strength": \#(jpmStrength), "jpm_point": "\#(jpmPoint)"\#(jpmStepField(e, jpm))"#
            print(stats.json(extra: #", "embodiment": "\#(embodiment)", "chain_tasks": [\#(tasks)], "first_seed": \#(firstSeed)\#(actorField)\#(jpmFields)"#))
        } else {
            print("\(embodiment) chains of \(length) from \(taskChain.tasks.map(\.rawValue).joined(separator: ", ")), \(who):")
            print(stats.report)
        }
    }
}

struct TrainR2: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "r2",
        abstract: "R2 RL alignment of an R1 checkpoint: IQL critic, critic-guided trajectory optimization with replay verification, fine-tuning, learned source noise; compares R1 and R2.")

    @Option(help: "R1 checkpoint directory.") var checkpoint: String
    @Option(help: "Episode store with the R1 demos (e.g. runs/bc/demos).") var demos: String
    @Option(help: "Embodiment.") var embodiment = "arm7"
    @Option(help: "Task.") var task = "reach"
    @Option(help: "R1 rollouts for the critic.") var rollouts = 48
    @Option(help: "IQL critic steps.") var criticSteps = 400
    @Option(help: "Fine-tuning steps on R1 data + verified trajectories.") var fineTuneSteps = 200
    @Option(help: "Source-noise policy iterations.") var noiseIterations = 8
    @Option(help: "Rollouts per source-noise iteration.") var noiseEpisodes = 12
    @Option(help: "Evaluation seeds for R1 and R2 (0 ..< N).") var evalEpisodes = 200
    @Option(help: "JPM guidance strength (predicted point) in R2's rollouts and evaluations (0: the plain sampler).") var jpmStrength = 0.0
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output directory (checkpoint, noise-policy, r2-report.json).") var out = "runs/r2"

    func run() async throws {
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        guard let t = TaskKind(rawValue: task) else { throw ValidationError("unknown task \(task)") }
        let (policy, _) = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint))
        let store = try EpisodeStore(root: URL(fileURLWithPath: demos))
        let (episodes, skipped) = try store.loadAll(matching: EpisodeQuery(task: task, embodiment: embodiment, source: .demo, success: true))
        if !skipped.isEmpty { print("skipped \(skipped.count) unreadable demo files") }
        let usable = episodes.filter { $0.cameras.values.first?.width == policy.model.config.imageSize }
        guard !usable.isEmpty else { throw ValidationError("no \(embodiment)/\(task) demos at image size \(policy.model.config.imageSize) in \(demos)") }
        var config = R2Config()
        config.rolloutEpisodes = rollouts
        config.criticSteps = criticSteps
        config.fineTuneSteps = fineTuneSteps
        config.noiseIterations = noiseIterations
        config.noiseEpisodesPerIteration = noiseEpisodes
        config.evalEpisodes = evalEpisodes
        config.jpmStrength = jpmStrength
        config.seed = seed
        let r2 = R2Alignment(policy: policy, embodiment: e, task: t, demos: usable, config: config)
        let report = try r2.run(output: URL(fileURLWithPath: out)) { print($0) }
        print("R1: \(report.r1)")
        print("R1 fine-tuned on verified trajectories: \(report.fineTunedOnly)")
        print("R2 (fine-tuned + learned source noise): \(report.r2)")
        print("report: \(out)/r2-report.json")
    }
}
