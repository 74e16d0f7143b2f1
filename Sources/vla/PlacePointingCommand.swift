import ArgumentParser
import Foundation
import RobotSim
import Training
import VLAModel

struct TrainPlacePointing: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "place-pointing",
        abstract: "Fit a place-pointing head (where a pick/place object goes: the mat) on a frozen checkpoint with a pointing head, for JPM's carry with the predicted point (vla eval --jpm-carry).")

    @Option(help: "Checkpoint directory with a pointing head (nothing else changes).") var checkpoint: String
    @Option(help: "Embodiment.") var embodiment = "arm7"
    @Option(help: "Pick/place scenes the head trains on (seeds from 100000, one render each).") var scenes = 2000
    @Option(help: "Scenes after those, only measured.") var heldOut = 200
    @Option(help: "Head training steps.") var steps = 4000
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output directory (checkpoint/ with the fitted head, place-pointing-report.json).") var out = "runs/place-pointing"

    func run() async throws {
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        guard scenes > 0, heldOut >= 0, steps > 0 else { throw ValidationError("--scenes and --steps must be positive, --held-out not negative") }
        let (policy, step) = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint))
        guard policy.model.pointingHead != nil else { throw ValidationError("\(checkpoint) has no pointing head (train it with --pointing-weight > 0)") }
        var fit = PlacePointingFit(embodiment: e)
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
        try encoder.encode(report).write(to: output.appendingPathComponent("place-pointing-report.json"), options: .atomic)
        print("checkpoint with the place head: \(out)/checkpoint; report: \(out)/place-pointing-report.json")
    }
}
