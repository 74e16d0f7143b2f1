import Foundation
import RobotSim
import Training
import VLAModel

/// SOP's fleet-scaling evidence on this machine: one pretrained policy post-trained by 1, 2,
/// 4 … actors for the same robot time (actors paced at a control rate, the learner at a fixed
/// step interval, so runs differ in their data, not in the CPU the learner got), each then
/// evaluated on the same held-out seeds.
public struct FleetScaling: Sendable {
    /// The run template: pretraining directory, model, algorithm, gate, JPM, evaluation seeds.
    public var template: FleetDemo
    public var actorCounts = [1, 2, 4]
    /// Robot time per run (seconds) at `controlRate` steps per second.
    public var robotSeconds = 480.0
    public var controlRate = 10.0
    public var learnerStepInterval = 1.0

    public struct Row: Codable, Sendable {
        public var actors: Int
        public var episodes: Int
        public var robotSteps: Int
        public var trainSteps: Int
        public var versions: Int
        public var operatorShare: Double
        public var successes: Int
        public var evaluationEpisodes: Int
        public var interval: [Double]
        /// Control steps per second per actor actually achieved (≈ controlRate when the
        /// actors kept up with robot time).
        public var achievedControlRate: Double
        public var fleetSeconds: Double
    }

    public struct Result: Codable, Sendable {
        public var before: FleetDemoReport.Evaluation?
        public var rows: [Row]
        public var robotSeconds: Double
        public var controlRate: Double
        public var learnerStepInterval: Double
    }

    public init(template: FleetDemo) { self.template = template }

    public func run(log: @escaping @Sendable (String) -> Void) async throws -> Result {
        var result = Result(before: nil, rows: [], robotSeconds: robotSeconds, controlRate: controlRate,
                            learnerStepInterval: learnerStepInterval)
        for (i, n) in actorCounts.enumerated() {
            var demo = template
            demo.output = template.output.appendingPathComponent("actors-\(n)")
            demo.pretrainDirectory = template.pretrainDirectory ?? template.output.appendingPathComponent("pretrain")
            demo.actors = n
            demo.controlRate = controlRate
            demo.fleetDuration = robotSeconds
            demo.learnerStepInterval = learnerStepInterval
            demo.evaluateBefore = i == 0
            try FileManager.default.createDirectory(at: demo.output, withIntermediateDirectories: true)
            log("=== \(n) actor\(n == 1 ? "" : "s"), \(Int(robotSeconds)) s of robot time at \(controlRate) Hz, learner step every \(learnerStepInterval) s")
            let report = try await demo.run(log: log)
            if i == 0 { result.before = report.before.first }
            guard let after = report.after.first else { continue }
            let steps = report.episodes.reduce(0) { $0 + $1.steps }
            result.rows.append(Row(actors: n, episodes: report.episodes.count, robotSteps: steps, trainSteps: report.trainSteps,
                                   versions: report.versionsPublished, operatorShare: report.interventionRate,
                                   successes: after.successes, evaluationEpisodes: after.episodes, interval: after.interval,
                                   achievedControlRate: report.fleetSeconds > 0 ? Double(steps) / Double(n) / report.fleetSeconds : 0,
                                   fleetSeconds: report.fleetSeconds))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(result).write(to: template.output.appendingPathComponent("scaling.json"), options: .atomic)
        return result
    }
}
