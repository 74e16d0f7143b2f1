import Foundation
import Testing
import RobotSim
import TensorKit
import TestSupport
@testable import Fleet
import VLAModel

/// `vla demo --lockstep`: actors and learner take turns, so a fleet run is a function of its seeds.
@Suite("Lock-step fleet rounds", .stopsLearners, .timeLimit(.minutes(10)))
struct LockstepFleetTests {
    @Test func twoLockstepFleetsFromOnePretrainingEndBitIdentical() async throws {
        let shared = temporaryDirectory("lockstep-pretrain")
        func run(_ name: String) async throws -> (FleetDemoReport, FleetDemo) {
            var demo = tinyFleetDemo(name)
            demo.pretrainDirectory = shared
            demo.actors = 2
            demo.trainSteps = 6
            demo.publishEveryTrainSteps = 2
            demo.lockstepEpisodesPerRound = 1
            demo.evaluateBefore = false
            demo.gate.policyStepBudget = 10
            return (try await demo.run { _ in }, demo)
        }
        let (first, demoA) = try await run("lockstep-a")
        let (second, demoB) = try await run("lockstep-b")
        #expect(first.settings["post-training"]?.hasPrefix("online in lock-step rounds") == true)
        // 3 rounds of 2 train steps; round r acts with version r on every actor.
        #expect(first.trainSteps == 6 && second.trainSteps == 6)
        func byActor(_ r: FleetDemoReport) -> [String: [FleetDemoReport.Episode]] {
            Dictionary(grouping: r.episodes, by: \.actor).mapValues { $0.sorted { $0.policyVersion < $1.policyVersion } }
        }
        let (a, b) = (byActor(first), byActor(second))
        #expect(a.keys.sorted() == ["demo-actor-0", "demo-actor-1"])
        for (actor, episodes) in a {
            #expect(episodes.map(\.policyVersion) == [1, 2, 3], "\(actor)")
            #expect(episodes.allSatisfy { $0.policyLag == 0 }, "\(actor)")
            // Same scenes, same policy versions, same operator takeovers: the same episodes.
            let other = b[actor] ?? []
            #expect(episodes.map(\.steps) == other.map(\.steps), "\(actor)")
            #expect(episodes.map(\.operatorSteps) == other.map(\.operatorSteps), "\(actor)")
            #expect(episodes.map(\.success) == other.map(\.success), "\(actor)")
        }
        // The learners trained on the same batches in the same order: bit-identical weights,
        // and different from the pretrained ones (the rounds trained something).
        let (pretrained, _) = try VLAPolicy.load(from: shared.appendingPathComponent("checkpoint"))
        let (postA, _) = try VLAPolicy.load(from: demoA.output.appendingPathComponent("post-trained"))
        let (postB, _) = try VLAPolicy.load(from: demoB.output.appendingPathComponent("post-trained"))
        let (start, wa, wb) = (try bitPatterns(pretrained.model.parameters()), try bitPatterns(postA.model.parameters()),
                               try bitPatterns(postB.model.parameters()))
        #expect(wa.keys.sorted() == wb.keys.sorted())
        let differing = wa.keys.filter { wa[$0] != wb[$0] }.sorted()
        #expect(differing.isEmpty, "parameters that differ: \(differing)")
        let moved = wa["velocityHead.weight"] != start["velocityHead.weight"]
        #expect(moved)
    }

    @Test func theLearnerTrainsOnlyOnceEveryActorsRoundIsIn() async throws {
        let (learner, backend) = try makeLearner("lockstep-rounds") {
            $0.publishEveryTrainSteps = 3
            $0.lockstep = LockstepRounds(actors: 2, episodesPerRound: 2)
        }
        let port = try await learner.start()
        func actor(_ id: String) throws -> FleetActor {
            var c = smallActorConfig(id, port: port, episodes: 6, maxEpisodes: 6)
            c.lockstepEpisodesPerVersion = 2
            c.heartbeatInterval = 0.1
            return FleetActor(config: c, policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 9))
        }
        async let first = actor("actor-1").run()
        async let second = actor("actor-2").run()
        let reports = try await [first, second]
        // The last round trains after the actors are done.
        await learner.waitUntilPublished(version: 4)
        await learner.stop()
        // Two episodes per version on each actor; the learner trained 3 steps per round of
        // 2 × 2 episodes and published after each: v1 (start), v2, v3, v4.
        for report in reports {
            #expect(report.episodes.map(\.policyVersion) == [1, 1, 2, 2, 3, 3])
            #expect(report.unacked == 0)
        }
        let m = learner.metrics.snapshot()
        #expect(m.trainSteps == 9 && m.versionsPublished == 4)
        #expect(await backend.stepsTrained == 9)
    }

    @Test func anActorWithoutItsRoundPartnersGivesUpWithATypedError() async throws {
        let (learner, _) = try makeLearner("lockstep-alone") {
            $0.publishEveryTrainSteps = 2
            $0.lockstep = LockstepRounds(actors: 2)
        }
        let port = try await learner.start()
        var c = smallActorConfig("alone", port: port, episodes: 3, maxEpisodes: 3)
        c.lockstepEpisodesPerVersion = 1
        c.lockstepTimeout = 1
        let actor = FleetActor(config: c, policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 9))
        await #expect(throws: FleetActorError.noNewVersion(after: 1, seconds: 1)) { try await actor.run() }
        // The learner stored the one episode and did not train on a partial round.
        #expect(learner.metrics.snapshot().episodesAccepted == 1 && learner.metrics.snapshot().trainSteps == 0)
        await learner.stop()
    }
}
