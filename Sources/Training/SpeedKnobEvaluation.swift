import Foundation
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// What speed conditioning's knob does to the robot: the policy runs the same seeds once per
/// knob value, every episode is recorded, and the recordings are measured the way the
/// training labels were — optical-flow speed on the wrist camera (`SpeedLabels`), relative to
/// the checkpoint's reference — plus the end-effector's speed and the task outcome. With a
/// progress head it also reports the head's estimate at each episode's last step.
public enum SpeedKnobEvaluation {
    public struct Row: Sendable {
        /// The knob: speed relative to the training data's reference.
        public var knob: Float
        public var success: SuccessRate
        public var meanStepsToSuccess: Double
        /// Mean over episodes of the recorded optical-flow speed over the reference (what the
        /// knob asks for, measured as the labels were).
        public var relativeFlowSpeed: Double
        /// Mean end-effector displacement per control step, millimetres.
        public var endEffectorSpeed: Double
        /// Progress head at the last step, mean over successful and failed episodes (nil: no
        /// head, or no such episode).
        public var finalProgressSuccess: Double?
        public var finalProgressFailure: Double?
    }

    public static func run(policy: VLAPolicy, embodiment: EmbodimentKind, task: TaskKind, seeds: [UInt64], knobs: [Float],
                           maxDistractors: Int? = nil, jpm: JointPredictionModule? = nil,
                           progress: (String) -> Void = { _ in }) throws -> [Row] {
        guard policy.model.config.speedConditioning, let reference = policy.stats.speedReference?[embodiment.rawValue] else {
            throw PolicyError.badObservation("the checkpoint is not speed-conditioned for \(embodiment.rawValue)")
        }
        let size = policy.model.config.imageSize
        let saved = policy.speed
        defer { policy.speed = saved }
        return try knobs.map { knob in
            policy.speed = knob
            var successes = 0, successSteps = 0, flow = 0.0, endEffector = 0.0
            var finalProgress: [Bool: [Double]] = [:]
            for seed in seeds {
                var config = EnvironmentConfig(imageWidth: size, imageHeight: size)
                config.maxDistractors = maxDistractors
                let env = try RobotEnvironment(embodiment: embodiment, task: task, seed: seed, config: config)
                let recorder = EpisodeRecorder(environment: env)
                var counts = PolicyEvaluator.OODCounts()
                let (ok, steps) = try PolicyEvaluator.runEpisode(policy: policy, environment: env, key: RandomKey(seed: seed),
                                                                 recorder: recorder, ood: nil, counts: &counts, jpm: jpm)
                if ok { successes += 1; successSteps += steps }
                let episode = try recorder.episode()
                flow += Double(try SpeedAlignment(camera: SpeedLabels.camera(of: episode)).measure(episode) / reference)
                endEffector += try meanEndEffectorStep(episode, spec: env.spec) * 1000
                if policy.model.progressHead != nil {
                    let last = episode.policyObservation(at: episode.stepCount - 1, spec: env.spec)
                    finalProgress[ok, default: []].append(Double(try policy.progress(last)))
                }
            }
            let n = Double(seeds.count)
            let mean = { (xs: [Double]?) in xs.map { $0.reduce(0, +) / Double($0.count) } }
            let row = Row(knob: knob, success: SuccessRate(successes: successes, episodes: seeds.count),
                          meanStepsToSuccess: successes == 0 ? 0 : Double(successSteps) / Double(successes),
                          relativeFlowSpeed: flow / n, endEffectorSpeed: endEffector / n,
                          finalProgressSuccess: mean(finalProgress[true]), finalProgressFailure: mean(finalProgress[false]))
            progress(String(format: "speed %.2f: success %@, flow speed %.2f× reference, end effector %.2f mm/step",
                            knob, row.success.description, row.relativeFlowSpeed, row.endEffectorSpeed))
            return row
        }
    }

    /// A Markdown table of the rows.
    public static func table(_ rows: [Row]) -> String {
        var lines = ["| speed knob | success | steps to success | flow speed / reference | end effector mm/step | progress at the end (success / failure) |",
                     "|---|---|---|---|---|---|"]
        let f = { (x: Double?) in x.map { String(format: "%.2f", $0) } ?? "–" }
        for r in rows {
            lines.append(String(format: "| %.2f | %@ | %.1f | %.2f | %.2f | %@ / %@ |", r.knob, r.success.description, r.meanStepsToSuccess,
                                r.relativeFlowSpeed, r.endEffectorSpeed, f(r.finalProgressSuccess), f(r.finalProgressFailure)))
        }
        return lines.joined(separator: "\n")
    }

    public static func json(_ rows: [Row], step: Int) -> String {
        let items = rows.map { r in
            let i = r.success.interval95
            let progress = [("final_progress_success", r.finalProgressSuccess), ("final_progress_failure", r.finalProgressFailure)]
                .compactMap { name, v in v.map { #", "\#(name)": \#($0)"# } }.joined()
            return #"{"speed": \#(r.knob), "episodes": \#(r.success.episodes), "successes": \#(r.success.successes), "success_rate": \#(r.success.rate), "ci95": [\#(i.low), \#(i.high)], "mean_steps_to_success": \#(r.meanStepsToSuccess), "relative_flow_speed": \#(r.relativeFlowSpeed), "end_effector_mm_per_step": \#(r.endEffectorSpeed)\#(progress)}"#
        }
        return #"{"checkpoint_step": \#(step), "speeds": [\#(items.joined(separator: ", "))]}"#
    }

    /// Mean distance the end effector moves per control step (metres), from the recorded states.
    public static func meanEndEffectorStep(_ e: Episode, spec: EmbodimentSpec) throws -> Double {
        guard e.stepCount >= 2 else { return 0 }
        let slots = UnifiedActionSpace.endEffectorPosition
        var previous = try Array(spec.unifiedState(Array(e.states.row(0)))[slots])
        var total = 0.0
        for t in 1..<e.stepCount {
            let p = try Array(spec.unifiedState(Array(e.states.row(t)))[slots])
            total += Double(zip(p, previous).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot())
            previous = p
        }
        return total / Double(e.stepCount - 1)
    }
}
