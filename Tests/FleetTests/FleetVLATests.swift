import Foundation
import Testing
import TestSupport
import RobotData
import RobotSim
import TensorKit
@testable import Fleet
import Training
import VLAModel

@Suite("Fleet with the flow-matching VLA", .stopsLearners, .timeLimit(.minutes(10)))
struct FleetVLATests {
    @Test func hgDaggerLoopTrainsTheVLAOnOperatorStepsAndActorsSwapVersions() async throws {
        let model = tinyVLAConfig()
        let offline = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010, 10_011], imageSize: 16)
        let stats = NormalizationStats(episodes: offline)
        let learnerPolicy = VLAPolicy(model: try FlowMatchingVLA(config: model, key: RandomKey(seed: 1)), stats: stats)
        var schedule = TrainingSchedule()
        schedule.batchSize = 8
        schedule.warmupSteps = 2
        schedule.totalSteps = 10_000
        let trainer = BehaviorCloningTrainer(policy: learnerPolicy, schedule: schedule, seed: 2)
        let backend = try PostTrainingBackend(trainer: trainer, offline: offline, specs: DemoCollector.specs, seed: 3)

        var config = FleetLearnerConfig(storeDirectory: temporaryDirectory("vla-loop"))
        config.catalog = TaskCatalog([(.arm7, .reach)])
        config.publishEveryTrainSteps = 3
        let board = temporaryDirectory("vla-loop-tensorboard")
        config.tensorBoardDirectory = board
        config.minPublishInterval = 0.2
        let learner = try trackedLearner(config: config, backend: backend)
        let port = try await learner.start()

        func actorConfig(_ id: String) -> FleetActorConfig {
            var c = smallActorConfig(id, port: port, episodes: 2, maxEpisodes: 6)
            c.targetPolicyVersion = 2
            c.gate.policyStepBudget = 8
            c.gate.handBackAfter = 4
            c.heartbeatInterval = 0.2
            return c
        }
        // Every actor starts from the same pretrained weights the learner holds.
        async let first = FleetActor(config: actorConfig("vla-1"), policy: VLAActorPolicy(
            policy: VLAPolicy(model: try FlowMatchingVLA(config: model, key: RandomKey(seed: 1)), stats: stats),
            embodiment: EmbodimentKind.arm7.spec, seed: 4)).run()
        // The second actor samples with JPM guidance (oracle point): the actor prepares it at
        // every episode start, on its episode thread.
        let guided = VLAActorPolicy(
            policy: VLAPolicy(model: try FlowMatchingVLA(config: model, key: RandomKey(seed: 1)), stats: stats),
            embodiment: EmbodimentKind.arm7.spec, seed: 5, jpm: JointPredictionModule(strength: 1, pointSource: .oracle))
        async let second = FleetActor(config: actorConfig("vla-2"), policy: guided).run()
        let reports = try await [first, second]
        await learner.stop()
        #expect(guided.jpm?.jointTarget?.slots == Array(0..<7) && guided.jpm?.worldTarget != nil)

        let m = learner.metrics.snapshot()
        for report in reports {
            #expect(report.unacked == 0 && report.rejected == 0)
            let versions = report.episodes.map(\.policyVersion)
            #expect(versions == versions.sorted(), "versions \(versions)")
            #expect(versions.last! >= 2, "versions \(versions)")
        }
        // The learner imitated operator takeovers from the online episodes.
        #expect(m.operatorStepsAccepted > 0)
        // Its curves, read back by TensorBoard: one loss point per train step, one success
        // point per accepted episode.
        let files = try FileManager.default.contentsOfDirectory(at: board, includingPropertiesForKeys: nil)
        let read = try await ChildProcess.run(ChildProcess.python, [ChildProcess.packageRoot.appendingPathComponent("scripts/read_tensorboard.py").path,
                                                                     files[0].path], timeout: 120)
        let scalars = (try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any])?["scalars"] as? [String: [[Double]]]
        #expect(files.count == 1 && scalars?["learner/loss"]?.map(\.[0]) == (1...m.trainSteps).map(Double.init), "\(read.stderr)")
        #expect(scalars?["fleet/success arm7/reach"]?.count == Int(m.episodesAccepted))
        #expect(scalars?["sampler/omega_on arm7/reach"]?.allSatisfy { (0.2 - 1e-6...0.8 + 1e-6).contains($0[1]) } == true)   // float32 on the wire
        #expect(await backend.onlineEpisodeCount == learner.store.count)
        #expect(await backend.stepsTrained == m.trainSteps && m.trainSteps >= 6)
        // SOP's adaptive mix drew from both sources, with ω_on inside its bounds.
        let drawn = await backend.samplesDrawn
        #expect(drawn.online > 0 && drawn.offline > 0, "\(drawn)")
        let shares = await backend.onlineShares
        #expect(shares.keys.sorted() == ["arm7/reach"] && shares.values.allSatisfy { (0.2...0.8).contains($0) })
        // Published weights are the learner's trained parameters (they moved from the start).
        let start = try FlowMatchingVLA(config: model, key: RandomKey(seed: 1)).parameters()["velocityHead.weight"]!
        let trained = learnerPolicy.model.parameters()["velocityHead.weight"]!
        #expect(try start.toArray(Float.self) != trained.toArray(Float.self))
    }

    @Test func hgDaggerResumesExactlyFromItsCheckpoint() async throws {
        let model = tinyVLAConfig()
        let offline = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_012], imageSize: 16)
        var online = offline[0]
        online.id = UUID()
        online.sources = (0..<online.stepCount).map { $0 % 3 == 0 ? .operator : .policy }
        let stats = NormalizationStats(episodes: offline)
        var schedule = TrainingSchedule.postTraining
        schedule.batchSize = 6
        // The trainer's seed is configuration (it must match); weights, optimizer moments,
        // step and sampler state come from the checkpoint.
        func backend(initSeed: UInt64, samplerSeed: UInt64) throws -> PostTrainingBackend {
            let policy = VLAPolicy(model: try FlowMatchingVLA(config: model, key: RandomKey(seed: initSeed)), stats: stats)
            return try PostTrainingBackend(trainer: BehaviorCloningTrainer(policy: policy, schedule: schedule, seed: 5),
                                       offline: offline, specs: DemoCollector.specs, seed: samplerSeed)
        }
        let a = try backend(initSeed: 1, samplerSeed: 2)
        try await a.ingest(online)
        for _ in 0..<3 { _ = try await a.trainStep() }
        let directory = temporaryDirectory("hgdagger-checkpoint")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try await a.saveCheckpoint(to: directory)

        let b = try backend(initSeed: 8, samplerSeed: 9)
        try await b.restoreCheckpoint(from: directory)
        try await b.ingest(online)
        #expect(await b.stepsTrained == 3)
        #expect(await a.onlineShares == b.onlineShares)
        // The next step is the same computation on both: same batch, same key, same state.
        let la = try await a.trainStep(), lb = try await b.trainStep()
        #expect(la != nil && la == lb)
        #expect(try bitPatterns(await a.exportTrainableWeights()) == bitPatterns(await b.exportTrainableWeights()))
        #expect(await a.samplesDrawn == b.samplesDrawn)
    }
}
