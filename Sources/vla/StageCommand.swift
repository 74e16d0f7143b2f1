import ArgumentParser
import Foundation
import Training

/// `vla train --config stages/R1.yaml` (the `train` group's default) and `vla train stage --config …`.
struct TrainStage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stage",
        abstract: "Run one Green-VLA stage (L0, L1, R0, R1, R2) from a YAML stage config; resumable.")

    @Option(help: "Stage config file, e.g. stages/R1.yaml.") var config: String

    func run() async throws {
        let stage = try StageConfig.load(from: URL(fileURLWithPath: config))
        let result = try StageRunner.run(stage) { print($0) }
        if let e = result.pointingError { print(String(format: "L1 held-out pointing error: %.3f → %.3f", e.before, e.after)) }
        if let r2 = result.r2 { print("R1: \(r2.r1)\nR2: \(r2.r2)\nreport: \(stage.output)/r2-report.json") }
        print("checkpoint: \(result.checkpoint.path) (step \(result.step))")
    }
}
