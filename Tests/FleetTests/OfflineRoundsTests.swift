import Foundation
import Testing
import TestSupport
@testable import Fleet
import VLAModel

/// `vla demo --offline-rounds N`: plain HG-DAgger, SOP's offline baseline.
@Suite("Offline HG-DAgger rounds", .stopsLearners, .timeLimit(.minutes(10)))
struct OfflineRoundsTests {
    @Test func eachRoundCollectsWithOneFixedVersionThenRetrains() async throws {
        var demo = tinyFleetDemo("offline-rounds")
        demo.actors = 2
        demo.episodesPerActor = 2
        demo.trainSteps = 6
        demo.publishEveryTrainSteps = 2
        demo.evaluateBefore = false
        demo.gate.policyStepBudget = 10
        demo.offlineRounds = 2
        // With a pointing head, as `vla demo` runs it: the grounding stays frozen with the backbone.
        demo.model.pointingWeight = 1
        demo.setup.frozen = PostTrainingSetup.languageBackboneAndGrounding
        let lines = Locked([String]())
        let report = try await demo.run { line in lines.withLock { $0.append(line) } }
        #expect(report.settings["post-training"]?.hasPrefix("offline HG-DAgger: 2 rounds") == true)
        // 2 rounds × 2 actors × 2 episodes, each round on one version: the first round on the
        // pretrained v1, the second on what the first round's retraining published.
        let episodes = report.episodes
        #expect(episodes.count == 8)
        let rounds = [Array(episodes.prefix(4)), Array(episodes.suffix(4))]
        #expect(rounds[0].allSatisfy { $0.policyVersion == 1 }, "\(rounds[0].map(\.policyVersion))")
        let second = Set(rounds[1].map(\.policyVersion))
        #expect(second.count == 1 && second.first! > 1, "\(second)")
        // Round 1 retrained to exactly step 3, round 2 to step 6.
        #expect(report.trainSteps == 6)
        // Only the action expert moved: vision encoder and pointing head equal the pretrained ones.
        let (pretrained, _) = try VLAPolicy.load(from: demo.output.appendingPathComponent("pretrain/checkpoint"))
        let (post, _) = try VLAPolicy.load(from: demo.output.appendingPathComponent("post-trained"))
        let before = pretrained.model.parameters(), after = post.model.parameters()
        let grounding = before.keys.filter { $0.hasPrefix("vision") || $0.hasPrefix("pointingHead.") }
        #expect(grounding.count >= 4 && grounding.contains { $0.hasPrefix("pointingHead.") })
        for key in grounding { #expect(try before[key]!.toArray(Float.self) == after[key]!.toArray(Float.self), "\(key)") }
        #expect(try before["velocityHead.weight"]!.toArray(Float.self) != after["velocityHead.weight"]!.toArray(Float.self))
        let log = lines.current
        #expect(log.contains { $0.contains("offline round 1/2: retraining to train step 3") })
        #expect(log.contains { $0.contains("offline round 2/2: retraining to train step 6") })
    }
}
