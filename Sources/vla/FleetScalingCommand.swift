import ArgumentParser
import Fleet
import Foundation
import RobotSim
import Training
import VLAModel

/// `vla bench fleet-scaling`: post-training gain from 1, 2, 4 … actors at equal robot time.
struct BenchFleetScaling: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet-scaling",
        abstract: "SOP's fleet scaling: the same pretrained policy post-trained by N actors for the same robot time, evaluated on the same seeds.")

    @Option(help: "A `vla demo` run directory (its pretrain/ checkpoint and demos are reused).") var run = "runs/demo"
    @Option(help: "Fleet sizes, comma separated.") var actors = "1,2,4"
    @Option(help: "Robot time per fleet size (minutes).") var robotMinutes = 8.0
    @Option(help: "Actors' control rate (steps per second of robot time).") var controlRate = 10.0
    @Option(help: "Learner pace: one train step per this many seconds.") var learnerInterval = 1.0
    @Option(help: "Held-out evaluation episodes after each run.") var evalEpisodes = 50
    @Option(help: "Learning-curve points per fleet size: the policy is also saved and evaluated at k/N of the robot time (1: the end only).") var curvePoints = 3
    @Option(help: "Success rate for the robot time to target (default: halfway from the pretrained rate to the lowest final rate).") var target: Double?
    @Option(help: "Post-training algorithm: hg-dagger or recap.") var algorithm = "hg-dagger"
    @Option(help: "JPM guidance strength for actors and evaluations (0: off).") var jpmStrength = 1.0
    @Option(help: "Operator takes over when the policy's action is this far (L2) from its own for 3 steps.") var deviationThreshold: Float = 0.3
    @Option(help: operatorApproachHelp) var operatorApproach = "direct"
    @Option(help: "Output directory (scaling.json and one run per fleet size).") var out = "runs/fleet-scaling"
    @Option(help: "Random seed.") var seed: UInt64 = 0

    func run() async throws {
        let pretrain = URL(fileURLWithPath: run).appendingPathComponent("pretrain")
        let checkpoint = pretrain.appendingPathComponent("checkpoint")
        guard FileManager.default.fileExists(atPath: checkpoint.appendingPathComponent("config.json").path) else {
            throw ValidationError("no pretrained checkpoint at \(checkpoint.path): run `vla demo --out \(run)` first")
        }
        let (policy, step) = try VLAPolicy.load(from: checkpoint)
        guard let kind = PostTrainingSetup.Algorithm(rawValue: algorithm) else { throw ValidationError("--algorithm must be hg-dagger or recap") }
        var template = FleetDemo(output: URL(fileURLWithPath: out))
        template.pretrainDirectory = pretrain
        template.model = policy.model.config       // the cached run resumes as complete
        template.pretrainSteps = step
        template.setup.algorithm = kind
        template.jpmStrength = jpmStrength
        template.gate.deviationThreshold = deviationThreshold
        template.operatorApproach = try parseOperatorApproach(operatorApproach)
        // As `vla demo`: a checkpoint with L1's pointing keeps that grounding frozen too.
        template.setup.frozen = policy.model.config.pointingWeight > 0
            ? PostTrainingSetup.languageBackboneAndGrounding : PostTrainingSetup.languageBackbone
        template.evaluationSeeds = evalEpisodes
        template.seed = seed
        var scaling = FleetScaling(template: template)
        scaling.actorCounts = try actors.split(separator: ",").map {
            guard let n = Int($0), n > 0 else { throw ValidationError("--actors must be positive integers") }
            return n
        }
        scaling.robotSeconds = robotMinutes * 60
        scaling.controlRate = controlRate
        scaling.learnerStepInterval = learnerInterval
        guard curvePoints >= 1 else { throw ValidationError("--curve-points must be at least 1") }
        scaling.curvePoints = curvePoints
        if let target, !(0...1).contains(target) { throw ValidationError("--target is a success rate in 0…1") }
        scaling.targetSuccess = target
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let result = try await scaling.run { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        if let b = result.before { print("pretrained: \(FleetDemoReport.rate(b))") }
        print("actors  episodes  robot steps  steps/s/actor  train steps  operator  success after (95% CI)")
        for r in result.rows {
            print(String(format: "%6d  %8d  %11d  %13.1f  %11d  %7.0f%%  %d/%d = %.0f%% [%.0f–%.0f]", r.actors, r.episodes, r.robotSteps,
                         r.achievedControlRate, r.trainSteps, 100 * r.operatorShare, r.successes, r.evaluationEpisodes,
                         100 * Double(r.successes) / Double(max(1, r.evaluationEpisodes)), 100 * r.interval[0], 100 * r.interval[1]))
        }
        if result.rows.contains(where: { $0.curve.count > 1 }) {
            print(result.target.map { String(format: "learning curves (success at robot time) and robot time to %.1f%% success:", 100 * $0) }
                  ?? "learning curves (success at robot time); no time to target: a fleet size ended at or below the pretrained rate (pass --target)")
            let sop = [1: "1.0×", 2: "1.4×", 4: "2.4×"]   // SOP: 173.6 → 126.5 → 71.7 min
            for (i, r) in result.rows.enumerated() {
                let curve = r.curve.map { String(format: "%.0f s %.0f%%", $0.robotSeconds, 100 * $0.rate) }.joined(separator: ", ")
                var line = "\(r.actors) actor\(r.actors == 1 ? " " : "s"): \(curve)"
                if result.target != nil { line += "; to target " + (r.secondsToTarget.map { String(format: "%.0f s", $0) } ?? "not reached") }
                if i < result.speedups.count, let speedup = result.speedups[i] {
                    line += String(format: ", %.2f× faster than %d", speedup, result.rows[0].actors) + " (SOP \(sop[r.actors] ?? "-"))"
                }
                print(line)
            }
        }
        print("written: \(out)/scaling.json")
    }
}
