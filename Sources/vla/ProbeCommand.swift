import ArgumentParser
import Foundation
import RobotSim
import Training
import VLAModel

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Linear probes of a VLM checkpoint's prefix tokens (after L1): is a question's answer in the backbone's tokens at each depth, even where the model's own answers miss it?")

    @Option(help: "Checkpoint directory with an answer head (L1 or later).") var checkpoint: String
    @Option(help: "Question family with a closed answer set: where_is or which_object.") var family = "where_is"
    @Option(help: "Embodiment of the rendered scenes.") var embodiment = "arm7"
    @Option(help: "Tasks whose scenes are asked about, comma separated.") var tasks = "reach"
    @Option(help: "Scenes the probes train on (seeds from 200000, which no stage trains on).") var scenes = 1000
    @Option(help: "Scenes after those, only measured.") var heldOut = 200
    @Option(help: "Write the report as JSON here.") var json: String?

    func run() async throws {
        guard let f = QuestionFamily(rawValue: family) else { throw ValidationError("unknown question family \(family)") }
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        let taskKinds = try tasks.split(separator: ",").map { name in
            guard let t = TaskKind(rawValue: String(name)) else { throw ValidationError("unknown task \(name)") }
            return t
        }
        guard scenes >= 10, heldOut > 0 else { throw ValidationError("--scenes must be at least 10 and --held-out positive") }
        let (policy, _) = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint))
        var probe = try GroundingProbe(embodiment: e, tasks: taskKinds, family: f)
        probe.trainScenes = scenes
        probe.heldOutScenes = heldOut
        let report = try probe.run(policy: policy) { print($0) }
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: json), options: .atomic)
            print("report: \(json)")
        }
    }
}
