import ArgumentParser
import Fleet
import Foundation
import TensorKit

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The main job: pretrain a small VLA on scripted demos, post-train it with a learner and actors on loopback (HG-DAgger), and compare success before and after.")

    @Option(help: "Actors on loopback.") var actors = 4
    @Option(help: "Scripted demos for pretraining (cached in the run directory).") var demos = 30
    @Option(help: "Pretraining steps (cached; raise to continue).") var pretrainSteps = 300
    @Option(help: "Fleet episodes per actor.") var episodesPerActor = 6
    @Option(help: "Held-out evaluation episodes before and after.") var evalEpisodes = 20
    @Option(help: "Run directory.") var out = "runs/demo"
    @Option(help: "Random seed (same seed, same numbers).") var seed: UInt64 = 0
    @Flag(help: "Run the tensor-engine demo instead (a small transformer learning sequences).") var tensor = false

    func run() async throws {
        if tensor {
            try TensorDemo.run(steps: 200, seed: seed) { print($0) }
            return
        }
        var demo = FleetDemo(output: URL(fileURLWithPath: out))
        demo.actors = actors
        demo.pretrainDemos = demos
        demo.pretrainSteps = pretrainSteps
        demo.episodesPerActor = episodesPerActor
        demo.evaluationSeeds = evalEpisodes
        demo.seed = seed
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let r = try await demo.run { print($0) }
        print(String(format: "success on %d held-out seeds: before %.0f%% [%.0f–%.0f], after %.0f%% [%.0f–%.0f]",
                     r.evaluationEpisodes, 100 * r.before, 100 * r.beforeInterval[0], 100 * r.beforeInterval[1],
                     100 * r.after, 100 * r.afterInterval[0], 100 * r.afterInterval[1]) + " (report: \(out)/report.json)")
    }
}
