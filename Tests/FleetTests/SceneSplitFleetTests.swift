import Foundation
import Testing
import RobotData
import RobotSim
@testable import Fleet

@Suite("Scene split on actors", .stopsLearners, .timeLimit(.minutes(3)))
struct SceneSplitFleetTests {
    /// An actor with `sceneSplit` plays the seen seeds of its assignment in order and skips the
    /// held-out ones. Reference: the learner's stored episodes, whose seeds must be exactly the
    /// first seen seeds from the assignment's base (recomputed here with the split), while the
    /// same range unfiltered holds a held-out seed (or the check would prove nothing).
    @Test func actorPlaysOnlySeenScenesFromItsAssignment() async throws {
        let (learner, _) = try makeLearner("split")
        let port = try await learner.start()
        var c = smallActorConfig("split", port: port, episodes: 12, maxEpisodes: 12, stepLimit: 3)
        c.sceneSplit = .standard
        let report = try await FleetActor(config: c, policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 4)).run()
        await learner.stop()
        #expect(report.episodes.count == 12 && report.unacked == 0)
        let seeds = try report.episodes.map { try learner.store.load($0.id).seed ?? 0 }
        let expected = SceneSplit.standard.seeds(.seen, embodiment: .arm7, task: .reach, from: FleetLearnerConfig.defaultSeedBase, count: 12)
        #expect(seeds == expected)
        let range = FleetLearnerConfig.defaultSeedBase...expected.last!
        #expect(range.contains { SceneSplit.standard.part(embodiment: .arm7, task: .reach, seed: $0) != .seen })
    }
}
