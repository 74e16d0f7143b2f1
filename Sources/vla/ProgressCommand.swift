import ArgumentParser
import Foundation
import RobotData
import RobotSim
import Training
import VLAModel

struct TrainProgress: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "progress",
        abstract: "Fit the episode-progress head as a success detector on a frozen checkpoint: its own rollouts (successes and failures) join the demos; reports how the head separates held-out successes from failures.")

    @Option(help: "Checkpoint directory (with or without a progress head; nothing else changes).") var checkpoint: String
    @Option(help: "Episode store with the checkpoint's demos (e.g. runs/bc/demos).") var demos: String
    @Option(help: "Embodiment.") var embodiment = "arm7"
    @Option(help: "Task.") var task = "reach"
    @Option(help: "Rollouts the head trains on (seeds from 20000).") var rollouts = 100
    @Option(help: "Held-out rollouts it is measured on (seeds 0 ..< N).") var heldOut = 100
    @Option(help: "Head training steps.") var steps = 2000
    @Option(help: "Then fine-tune the whole policy this many steps with the progress loss (flow loss on demo steps only) and measure that head too; the saved checkpoint is then the fine-tuned policy (0: head only).") var backboneSteps = 0
    @Option(help: "JPM guidance strength (predicted point) in the rollouts, as the policy is deployed (0: off).") var jpmStrength = 0.0
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output directory (checkpoint/ with the fitted head, progress-report.json).") var out = "runs/progress"

    func run() async throws {
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        guard let t = TaskKind(rawValue: task) else { throw ValidationError("unknown task \(task)") }
        guard rollouts > 0, heldOut > 0, steps > 0, backboneSteps >= 0 else { throw ValidationError("--rollouts, --held-out and --steps must be positive, --backbone-steps not negative") }
        let (policy, step) = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint))
        let (episodes, skipped) = try EpisodeStore(root: URL(fileURLWithPath: demos))
            .loadAll(matching: EpisodeQuery(task: task, embodiment: embodiment, source: .demo, success: true))
        if !skipped.isEmpty { print("skipped \(skipped.count) unreadable demo files") }
        let usable = episodes.filter { $0.cameras.values.first?.width == policy.model.config.imageSize }
        var fit = ProgressHeadFit(embodiment: e, task: t)
        fit.rolloutSeeds = (0..<UInt64(rollouts)).map { 20_000 + $0 }
        fit.heldOutSeeds = Array(0..<UInt64(heldOut))
        fit.steps = steps
        fit.seed = seed
        fit.backboneSteps = backboneSteps
        fit.jpm = jpmStrength > 0 ? JointPredictionModule(strength: jpmStrength) : nil
        let (fitted, report) = try fit.run(policy: policy, demos: usable) { print($0) }
        let output = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try fitted.save(to: output.appendingPathComponent("checkpoint"), optimizer: nil, step: step)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: output.appendingPathComponent("progress-report.json"), options: .atomic)
        let line = { (name: String, s: ProgressHeadFit.Separation) in
            print(String(format: "%@: AUC %@, mean at the last step %@ (success) / %@ (failure), accuracy at 0.5 %.1f%%", name,
                         s.auc.map { String(format: "%.3f", $0) } ?? "–", s.meanSuccess.map { String(format: "%.2f", $0) } ?? "–",
                         s.meanFailure.map { String(format: "%.2f", $0) } ?? "–", 100 * s.accuracyAtHalf))
        }
        print("held-out rollouts: \(report.heldOut); training rollouts: \(report.rollouts)")
        if let own = report.checkpointHead { line("checkpoint's head", own) }
        line("head on successes only", report.successesOnly)
        line("head with failures", report.withFailures)
        if let tuned = report.fineTuned { line("policy fine-tuned with the progress loss", tuned) }
        print("checkpoint with the fitted head: \(out)/checkpoint; report: \(out)/progress-report.json")
    }
}
