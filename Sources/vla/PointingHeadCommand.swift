import ArgumentParser
import Foundation
import RobotSim
import Training
import VLAModel

struct TrainPointingHead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pointing-head",
        abstract: "Fit a pointing head alone on a frozen checkpoint with a pointing head, for JPM's predicted points: the object head (refitted from its weights) or the place head (where a pick/place object goes: the mat, for vla eval --jpm-carry).",
        aliases: ["place-pointing"])

    @Option(help: "Checkpoint directory with a pointing head (nothing else changes).") var checkpoint: String
    @Option(help: "Which head: object (the task's target; refits the checkpoint's pointing head) or place (the pick/place mat).") var head = "place"
    @Option(help: "Embodiment.") var embodiment = "arm7"
    @Option(help: "Task whose scenes label the head (place: pick_place only).") var task = "pick_place"
    @Option(help: "Scenes the head trains on (seeds from 100000, one render each).") var scenes = 2000
    @Option(help: "Scenes after those, only measured.") var heldOut = 200
    @Option(help: "Head training steps.") var steps = 4000
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output directory (checkpoint/ with the fitted head, <head>-pointing-report.json).") var out = "runs/pointing-head"

    func run() async throws {
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        guard let h = PointingHeadFit.Head(rawValue: head) else { throw ValidationError("--head must be object or place, not \(head)") }
        guard let t = TaskKind(rawValue: task) else { throw ValidationError("unknown task \(task)") }
        guard h == .object || t == .pickPlace else { throw ValidationError("--head place needs --task pick_place (the mat is its label)") }
        guard scenes > 0, heldOut >= 0, steps > 0 else { throw ValidationError("--scenes and --steps must be positive, --held-out not negative") }
        let (policy, step) = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint))
        var fit = PointingHeadFit(head: h, embodiment: e)
        fit.task = t
        fit.scenes = scenes
        fit.heldOutScenes = heldOut
        fit.steps = steps
        fit.seed = seed
        let (fitted, report) = try fit.run(policy: policy) { print($0) }
        let output = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try fitted.save(to: output.appendingPathComponent("checkpoint"), optimizer: nil, step: step)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let reportName = "\(h.rawValue)-pointing-report.json"
        try encoder.encode(report).write(to: output.appendingPathComponent(reportName), options: .atomic)
        print("checkpoint with the fitted \(h.rawValue) head: \(out)/checkpoint; report: \(out)/\(reportName)")
    }
}
