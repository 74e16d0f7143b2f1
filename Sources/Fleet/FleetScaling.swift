import Foundation
import RobotSim
import Training
import VLAModel

/// SOP's fleet-scaling evidence on this machine: one pretrained policy post-trained by 1, 2,
/// 4 … actors for the same robot time (actors paced at a control rate, the learner at a fixed
/// step interval, so runs differ in their data, not in the CPU the learner got), each then
/// evaluated on the same held-out seeds. With `curvePoints` > 1 the learner's policy is also
/// saved part-way and evaluated, so each fleet size gets a learning curve over robot time and
/// SOP's figure, the robot time to reach a target success.
public struct FleetScaling: Sendable {
    /// The run template: pretraining directory, model, algorithm, gate, JPM, evaluation seeds.
    public var template: FleetDemo
    public var actorCounts = [1, 2, 4]
    /// Robot time per run (seconds) at `controlRate` steps per second.
    public var robotSeconds = 480.0
    public var controlRate = 10.0
    public var learnerStepInterval = 1.0
    /// Points of each learning curve: snapshots at k/curvePoints of the robot time (k = 1 …
    /// curvePoints − 1) plus the end of the run (1: the end only).
    public var curvePoints = 1
    /// Success rate the time-to-target is measured at (nil: halfway from the pretrained rate to
    /// the lowest final rate, a target every fleet size reaches; none if some size ended at or
    /// below the pretrained rate).
    public var targetSuccess: Double?

    /// One point of a learning curve: the policy after `robotSeconds` of the run.
    public struct CurvePoint: Codable, Sendable {
        public var robotSeconds: Double
        public var trainStep: Int
        public var successes: Int
        public var episodes: Int
        public var interval: [Double]
        public var rate: Double { Double(successes) / Double(max(1, episodes)) }
    }

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
        /// The learning curve (the last point is the run's end: `successes`).
        public var curve: [CurvePoint] = []
        /// Robot time to reach `Result.target` (interpolated on the curve from the pretrained
        /// rate at 0; nil: not reached).
        public var secondsToTarget: Double?
    }

    public struct Result: Codable, Sendable {
        public var before: FleetDemoReport.Evaluation?
        public var rows: [Row]
        public var robotSeconds: Double
        public var controlRate: Double
        public var learnerStepInterval: Double
        /// The success rate `secondsToTarget` refers to.
        public var target: Double?
        /// Time to target of the first fleet size over each row's (SOP: 1.4× with 2 robots,
        /// 2.4× with 4); nil where a row did not reach it.
        public var speedups: [Double?] = []
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
            demo.snapshotSeconds = (1..<max(1, curvePoints)).map { robotSeconds * Double($0) / Double(curvePoints) }
            try FileManager.default.createDirectory(at: demo.output, withIntermediateDirectories: true)
            log("=== \(n) actor\(n == 1 ? "" : "s"), \(Int(robotSeconds)) s of robot time at \(controlRate) Hz, learner step every \(learnerStepInterval) s")
            let report = try await demo.run(log: log)
            if i == 0 { result.before = report.before.first }
            guard let after = report.after.first else { continue }
            let steps = report.episodes.reduce(0) { $0 + $1.steps }
            var row = Row(actors: n, episodes: report.episodes.count, robotSteps: steps, trainSteps: report.trainSteps,
                          versions: report.versionsPublished, operatorShare: report.interventionRate,
                          successes: after.successes, evaluationEpisodes: after.episodes, interval: after.interval,
                          achievedControlRate: report.fleetSeconds > 0 ? Double(steps) / Double(n) / report.fleetSeconds : 0,
                          fleetSeconds: report.fleetSeconds)
            for snapshot in report.snapshots ?? [] {
                let (policy, _) = try VLAPolicy.load(from: URL(fileURLWithPath: snapshot.checkpoint))
                let label = "\(n) actor\(n == 1 ? "" : "s") at \(Int(snapshot.seconds)) s"
                guard let e = try TensorLock.run({ try demo.evaluatePostTrained(policy, seeds: demo.heldOutSeeds, label: label, log: log) }).first else { continue }
                row.curve.append(CurvePoint(robotSeconds: snapshot.seconds, trainStep: snapshot.trainStep, successes: e.successes,
                                            episodes: e.episodes, interval: e.interval))
            }
            row.curve.append(CurvePoint(robotSeconds: robotSeconds, trainStep: report.trainSteps, successes: after.successes,
                                        episodes: after.episodes, interval: after.interval))
            result.rows.append(row)
        }
        if let before = result.before,
           let target = targetSuccess ?? Self.defaultTarget(before: before.rate, finals: result.rows.map { $0.curve.last!.rate }) {
            result.target = target
            for i in result.rows.indices {
                result.rows[i].secondsToTarget = Self.secondsToTarget(
                    [(0, before.rate)] + result.rows[i].curve.map { ($0.robotSeconds, $0.rate) }, target: target)
            }
            let first = result.rows[0].secondsToTarget
            result.speedups = result.rows.map { row in
                guard let first, let t = row.secondsToTarget, t > 0 else { return nil }
                return first / t
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(result).write(to: template.output.appendingPathComponent("scaling.json"), options: .atomic)
        return result
    }

    /// Half-way from the pretrained rate to the lowest final rate: half of the gain every fleet
    /// size made (nil when one made none).
    public static func defaultTarget(before: Double, finals: [Double]) -> Double? {
        guard let lowest = finals.min(), lowest > before else { return nil }
        return (before + lowest) / 2
    }

    /// The first time a learning curve (time, success rate; ascending time) reaches `target`,
    /// linearly interpolated between the point before and the first point at or above it;
    /// 0 if the curve starts there, nil if it never gets there.
    public static func secondsToTarget(_ curve: [(seconds: Double, rate: Double)], target: Double) -> Double? {
        guard let i = curve.firstIndex(where: { $0.rate >= target }) else { return nil }
        guard i > 0 else { return curve[0].seconds }
        let (a, b) = (curve[i - 1], curve[i])
        return a.seconds + (b.seconds - a.seconds) * (target - a.rate) / (b.rate - a.rate)
    }
}
