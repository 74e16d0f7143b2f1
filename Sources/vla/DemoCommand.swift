import ArgumentParser
import Foundation
import TensorKit

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The main job. Until the fleet lands: trains a small transformer on a sequence task and shows it learn.")

    @Option(help: "Training steps.") var steps = 200
    @Option(help: "Random seed (same seed, same numbers).") var seed: UInt64 = 0

    func run() async throws {
        try TensorDemo.run(steps: steps, seed: seed) { line in print(line) }
    }
}
