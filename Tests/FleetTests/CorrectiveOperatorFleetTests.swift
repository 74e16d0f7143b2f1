import Foundation
import Testing
import RobotData
import RobotSim
@testable import Fleet

@Suite("Corrective operator on actors", .stopsLearners, .timeLimit(.minutes(3)))
struct CorrectiveOperatorFleetTests {
    /// `FleetActorConfig.operatorApproach` reaches the operator that labels the fleet's
    /// episodes. Reference: each stored episode replayed in a fresh environment of the same
    /// seed, where every operator step must equal a direct-approach ScriptedExpert's action
    /// (and differ from the phase machine's somewhere, or the check would prove nothing).
    @Test func actorsTakeOverWithTheConfiguredApproach() async throws {
        let (learner, _) = try makeLearner("corrective")
        let port = try await learner.start()
        var c = smallActorConfig("corrective", port: port, episodes: 3, maxEpisodes: 3, stepLimit: 40)
        c.gate.deviationThreshold = 0.05
        c.gate.policyStepBudget = 8
        c.operatorApproach = .direct
        let report = try await FleetActor(config: c, policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 4)).run()
        await learner.stop()
        #expect(report.episodes.count == 3 && report.unacked == 0)
        var operatorSteps = 0, differsFromAbove = 0
        for summary in report.episodes {
            let episode = try learner.store.load(summary.id)
            let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: try #require(episode.seed), config: c.environment)
            env.reset()
            var direct = OperatorProfile.clean
            direct.approach = .direct
            let directOperator = ScriptedExpert(profile: direct), aboveOperator = ScriptedExpert()
            for t in 0..<episode.stepCount {
                let expected = directOperator.action(for: env), above = aboveOperator.action(for: env)
                let recorded = Array(episode.nativeActions.values[(t * episode.nativeActions.columns)..<((t + 1) * episode.nativeActions.columns)])
                if episode.sources[t] == .operator {
                    operatorSteps += 1
                    #expect(zip(recorded, expected).allSatisfy { abs($0 - $1) < 1e-5 }, "step \(t)")
                    if zip(recorded, above).contains(where: { abs($0 - $1) > 1e-3 }) { differsFromAbove += 1 }
                }
                _ = try env.step(nativeAction: recorded)
            }
        }
        #expect(operatorSteps > 10)
        #expect(differsFromAbove > 0)
    }
}
