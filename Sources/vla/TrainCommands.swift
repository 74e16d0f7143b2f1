import ArgumentParser
import Foundation
import RobotSim
import TensorKit
import Training
import VLAModel

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train policies.",
        subcommands: [TrainBC.self])
}

struct TrainBC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bc",
        abstract: "Behaviour cloning of the flow-matching VLA on scripted-operator demos (resumable).")

    @Option(help: "Embodiments, comma separated (arm7, arm6, bimanual).") var embodiments = "arm7"
    @Option(help: "Tasks, comma separated (reach, push, pick_place, sort, stack, open_drawer).") var tasks = "reach"
    @Option(help: "Demonstrations per (embodiment, task) pair.") var demos = 40
    @Option(help: "Optimizer steps.") var steps = 1000
    @Option(help: "Batch size.") var batchSize = 32
    @Option(help: "Peak learning rate.") var learningRate: Float = 3e-4
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "At most this many distractor objects per scene (default: the task's range).") var maxDistractors: Int?
    @Option(help: "Run directory (checkpoint, loss.csv, demos).") var out = "runs/bc"

    func run() async throws {
        var job = BehaviorCloningRun(output: URL(fileURLWithPath: out))
        job.embodiments = try embodiments.split(separator: ",").map { name in
            guard let e = EmbodimentKind(rawValue: String(name)) else { throw ValidationError("unknown embodiment \(name)") }
            return e
        }
        job.tasks = try tasks.split(separator: ",").map { name in
            guard let t = TaskKind(rawValue: String(name)) else { throw ValidationError("unknown task \(name)") }
            return t
        }
        job.demosPerPair = demos
        job.schedule.totalSteps = steps
        job.schedule.batchSize = batchSize
        job.schedule.learningRate = learningRate
        job.seed = seed
        job.maxDistractors = maxDistractors
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        _ = try job.run { print($0) }
        print("checkpoint: \(out)/checkpoint")
    }
}

struct Eval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Success rate (95% interval) of a checkpoint in RobotSim.")

    @Option(help: "Checkpoint directory.") var checkpoint: String
    @Option(help: "Embodiment.") var embodiment = "arm7"
    @Option(help: "Task.") var task = "reach"
    @Option(help: "Episodes (seeds first-seed ..< first-seed + episodes).") var episodes = 20
    @Option(help: "First evaluation seed (training demos use seeds ≥ 10000).") var firstSeed: UInt64 = 0
    @Option(help: "At most this many distractor objects per scene (default: the task's range).") var maxDistractors: Int?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        guard let t = TaskKind(rawValue: task) else { throw ValidationError("unknown task \(task)") }
        let (policy, step) = try VLAPolicy.load(from: URL(fileURLWithPath: checkpoint))
        let seeds = Array(firstSeed..<(firstSeed + UInt64(episodes)))
        let result = try PolicyEvaluator.evaluate(policy: policy, embodiment: e, task: t, seeds: seeds, maxDistractors: maxDistractors) { i, n, s in
            if !json { FileHandle.standardError.write(Data("  episode \(i)/\(n): \(s) successes\n".utf8)) }
        }
        if json {
            let i = result.success.interval95
            print(#"{"checkpoint_step": \#(step), "embodiment": "\#(embodiment)", "task": "\#(task)", "episodes": \#(episodes), "successes": \#(result.success.successes), "success_rate": \#(result.success.rate), "ci95": [\#(i.low), \#(i.high)], "mean_steps_to_success": \#(result.meanStepsToSuccess)}"#)
        } else {
            print("\(embodiment)/\(task) after step \(step): success \(result.success), mean steps to success \(String(format: "%.1f", result.meanStepsToSuccess))")
        }
    }
}
