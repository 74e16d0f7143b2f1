import Foundation
import RobotData
import RobotSim
import TensorKit
import Training
import VLAModel

/// The main job (`vla demo`): pretrain a small VLA on scripted demos (cached), measure it,
/// post-train it online with a learner and several actors on loopback (HG-DAgger: the
/// scripted operator takes over when the policy strays), and measure it again on the same
/// held-out seeds.
public struct FleetDemo: Sendable {
    public var output: URL
    public var embodiment: EmbodimentKind = .arm7
    public var task: TaskKind = .reach
    public var actors = 4
    public var pretrainDemos = 30
    public var pretrainSteps = 300
    public var episodesPerActor = 6
    public var evaluationSeeds = 20
    public var model = VLAConfig()
    public var seed: UInt64 = 0

    public init(output: URL) { self.output = output }

    public struct Report: Codable, Sendable {
        public var before: Double
        public var beforeInterval: [Double]
        public var after: Double
        public var afterInterval: [Double]
        public var evaluationEpisodes: Int
        public var fleetEpisodes: Int
        public var operatorStepFraction: Double
        public var fleetSuccessRate: Double
        public var trainSteps: Int
        public var versionsPublished: Int
        public var fleetSeconds: Double
    }

    public func run(log: @escaping @Sendable (String) -> Void) async throws -> Report {
        // 1. Pretrain (resumes or returns at once when the cached run is complete).
        var pretrain = BehaviorCloningRun(output: output.appendingPathComponent("pretrain"))
        pretrain.embodiments = [embodiment]
        pretrain.tasks = [task]
        pretrain.demosPerPair = pretrainDemos
        pretrain.model = model
        pretrain.schedule.totalSteps = pretrainSteps
        pretrain.seed = seed
        try FileManager.default.createDirectory(at: pretrain.output, withIntermediateDirectories: true)
        log("== pretraining on \(pretrainDemos) scripted demos (\(embodiment.rawValue)/\(task.rawValue))")
        let pretrained = try pretrain.run(log: log)
        let checkpoint = pretrain.output.appendingPathComponent("checkpoint")

        // 2. Held-out evaluation before the fleet.
        let seeds = Array(UInt64(0)..<UInt64(evaluationSeeds))
        log("== evaluating the pretrained policy on \(evaluationSeeds) held-out seeds")
        let before = try PolicyEvaluator.evaluate(policy: pretrained, embodiment: embodiment, task: task, seeds: seeds)
        log("pretrained: \(before.success)")

        // 3. Fleet post-training: learner + actors on loopback.
        let demos = try EpisodeStore(root: pretrain.output.appendingPathComponent("demos"))
            .loadAll(matching: EpisodeQuery(task: task.rawValue, embodiment: embodiment.rawValue, source: .demo, success: true)).episodes
        var schedule = TrainingSchedule()
        schedule.learningRate = 1e-4
        schedule.warmupSteps = 1
        schedule.totalSteps = 1_000_000
        schedule.batchSize = 16
        let trainer = BehaviorCloningTrainer(policy: pretrained, schedule: schedule, seed: seed &+ 1)
        let backend = try HGDAggerBackend(trainer: trainer, offline: demos, specs: DemoCollector.specs, seed: seed &+ 2)
        let fleetRun = output.appendingPathComponent("fleet-\(Int(Date().timeIntervalSince1970))")
        var config = FleetLearnerConfig(storeDirectory: fleetRun)
        config.catalog = TaskCatalog([(embodiment, task)])
        config.publishEveryTrainSteps = 10
        let learner = try FleetLearner(config: config, backend: backend)
        let port = try await learner.start()
        log("== fleet: learner on 127.0.0.1:\(port), \(actors) actors × \(episodesPerActor) episodes")
        let started = Date()
        let (model, embodiment, task, episodes) = (self.model, self.embodiment, self.task, self.episodesPerActor)
        let reports = try await withThrowingTaskGroup(of: FleetActorReport.self) { group in
            for i in 0..<actors {
                group.addTask {
                    var c = FleetActorConfig(actorID: "demo-actor-\(i)", learnerPort: port, embodiment: embodiment, tasks: [task])
                    c.episodes = episodes
                    c.maxEpisodes = episodes
                    c.environment = EnvironmentConfig(imageWidth: model.imageSize, imageHeight: model.imageSize)
                    c.stepsPerChunk = 16
                    // A watchful operator: the small pretrained policy rarely finishes alone,
                    // so takeovers (the HG-DAgger labels) come early and often.
                    c.gate.deviationThreshold = 0.3
                    c.gate.policyStepBudget = 40
                    c.gate.handBackAfter = 10
                    let (policy, _) = try VLAPolicy.load(from: checkpoint)
                    let actorPolicy = VLAActorPolicy(policy: policy, embodiment: embodiment.spec, seed: UInt64(100 + i))
                    let report = try await FleetActor(config: c, policy: actorPolicy).run()
                    let ok = report.episodes.filter(\.success).count
                    log("actor \(i): \(report.episodes.count) episodes, \(ok) successes, versions \(report.episodes.map(\.policyVersion))")
                    return report
                }
            }
            var all: [FleetActorReport] = []
            for try await r in group { all.append(r) }
            return all
        }
        let fleetSeconds = Date().timeIntervalSince(started)
        await learner.stop()
        let metrics = learner.metrics.snapshot()
        let summaries = reports.flatMap(\.episodes)
        let steps = summaries.reduce(0) { $0 + $1.steps }, operatorSteps = summaries.reduce(0) { $0 + $1.operatorSteps }
        log(String(format: "fleet: %d episodes in %.0f s, %d train steps, %d versions, operator steps %.0f%%",
                   summaries.count, fleetSeconds, metrics.trainSteps, metrics.versionsPublished,
                   100 * Double(operatorSteps) / Double(max(1, steps))))

        // 4. The same held-out evaluation after the fleet.
        log("== evaluating the post-trained policy on the same seeds")
        let after = try TensorLock.run {
            try PolicyEvaluator.evaluate(policy: trainer.policy, embodiment: embodiment, task: task, seeds: seeds)
        }
        log("post-trained: \(after.success)")
        try trainer.policy.save(to: output.appendingPathComponent("post-trained"), optimizer: trainer.optimizer, step: trainer.step)
        let report = Report(
            before: before.success.rate, beforeInterval: [before.success.interval95.low, before.success.interval95.high],
            after: after.success.rate, afterInterval: [after.success.interval95.low, after.success.interval95.high],
            evaluationEpisodes: evaluationSeeds, fleetEpisodes: summaries.count,
            operatorStepFraction: Double(operatorSteps) / Double(max(1, steps)),
            fleetSuccessRate: Double(summaries.filter(\.success).count) / Double(max(1, summaries.count)),
            trainSteps: metrics.trainSteps, versionsPublished: metrics.versionsPublished, fleetSeconds: fleetSeconds)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(report).write(to: output.appendingPathComponent("report.json"), options: .atomic)
        return report
    }
}
