import Foundation
import Testing
import TestSupport
@testable import Fleet
import RobotData
import RobotSim
import Training
import VLAModel

/// `vla demo --extra-demos N`: SOP's more-offline-data baseline (no fleet).
@Suite("More offline data instead of the fleet", .timeLimit(.minutes(10)))
struct ExtraDemosBaselineTests {
    @Test func trainsTheSameBackendOnMoreDemosWithoutAFleet() async throws {
        var demo = tinyFleetDemo("extra-demos")
        demo.trainSteps = 5
        demo.evaluateBefore = false
        demo.extraDemos = 3
        demo.model.pointingWeight = 1
        demo.setup.frozen = PostTrainingSetup.languageBackboneAndGrounding
        let lines = Locked([String]())
        let report = try await demo.run { line in lines.withLock { $0.append(line) } }

        // No fleet ran; the learner's backend took exactly the budgeted steps.
        #expect(report.episodes.isEmpty && report.versionsPublished == 0)
        #expect(report.trainSteps == 5)
        // 3 new demos from the seed after the pretraining demos' last; all 5 train.
        let stored = try EpisodeStore(root: demo.output.appendingPathComponent("pretrain/demos")).loadAll().episodes
        let lastPretrainSeed = try #require(stored.compactMap(\.seed).max())
        let seedLine = try #require(lines.current.first { $0.contains("extra demos from seeds") }, "\(lines.current)")
        #expect(seedLine.contains(": 3 extra demos from seeds \(lastPretrainSeed + 1)…"), "\(seedLine)")
        let line = try #require(lines.current.first { $0.contains("more offline data instead of the fleet") }, "\(lines.current)")
        #expect(line.contains("3 new demos,") && line.contains("5 train steps on 5 demos"), "\(line)")
        #expect(report.settings["post-training"]?.hasPrefix("offline: 3 more scripted demos") == true)
        // The action expert moved; the frozen grounding did not.
        let (pretrained, _) = try VLAPolicy.load(from: demo.output.appendingPathComponent("pretrain/checkpoint"))
        let (post, _) = try VLAPolicy.load(from: demo.output.appendingPathComponent("post-trained"))
        let before = pretrained.model.parameters(), after = post.model.parameters()
        #expect(try before["velocityHead.weight"]!.toArray(Float.self) != after["velocityHead.weight"]!.toArray(Float.self))
        for key in before.keys where key.hasPrefix("pointingHead.") {
            #expect(try before[key]!.toArray(Float.self) == after[key]!.toArray(Float.self), "\(key)")
        }
        #expect(report.after.count == 1)
        // The report's milestone counts are the evaluator's on the same policy and seeds.
        let reference = try PolicyEvaluator.evaluate(policy: post, embodiment: .arm7, task: .reach, seeds: [0])
        #expect(report.after[0].milestones == reference.milestones.map { .init(milestone: $0.milestone.rawValue, episodes: $0.episodes) })
        #expect(report.after[0].milestones?.map(\.milestone) == TaskMilestones.milestones(for: .reach).map(\.rawValue))
        #expect(FileManager.default.fileExists(atPath: demo.output.appendingPathComponent("report.html").path))
    }
}
