import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Training
@testable import VLAModel

/// `vla eval`'s milestone counts: per episode, what `TaskMilestones` saw after every step.
@Suite struct MilestoneEvaluationTests {
    @Test func evaluationCountsEachMilestoneOncePerEpisode() throws {
        let c = smallConfig()
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: c.imageSize)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 4)), stats: NormalizationStats(episodes: demos))
        let seeds: [UInt64] = [0, 1, 2]
        let result = try PolicyEvaluator.evaluate(policy: policy, embodiment: .arm7, task: .reach, seeds: seeds)
        #expect(result.milestones.map(\.milestone) == [.nearObject, .succeeded])
        #expect(result.milestones[1].episodes == result.success.successes)

        // Recount by replaying the same episodes (keys from the seeds) with the test's own reading:
        // the hand within 10 cm of the target at some step; one call per step.
        var near = 0, closestPerSeed: [Double] = []
        for seed in seeds {
            let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: seed,
                                           config: EnvironmentConfig(imageWidth: c.imageSize, imageHeight: c.imageSize))
            var closest = Double.infinity, calls = 0
            var counts = PolicyEvaluator.OODCounts()
            let (_, steps) = try PolicyEvaluator.runEpisode(policy: policy, environment: env, key: RandomKey(seed: seed), ood: nil, counts: &counts) { env in
                calls += 1
                let d = env.gripperPositions[0] - env.objectPosition(env.goal.object)
                closest = min(closest, (d * d).sum().squareRoot())
            }
            #expect(calls == steps)
            if closest < 0.10 { near += 1 }
            closestPerSeed.append(closest)
        }
        #expect(zip(result.closestApproaches, closestPerSeed).allSatisfy { abs($0 - $1) < 1e-12 } && result.closestApproaches.count == 3)
        // Nearest-rank quartiles of three values: the smallest, the middle, the largest.
        let sorted = closestPerSeed.sorted(), q = try #require(result.closestApproachQuartiles)
        #expect(abs(q.p25 - sorted[0]) < 1e-12 && abs(q.median - sorted[1]) < 1e-12 && abs(q.p75 - sorted[2]) < 1e-12)
        #expect(result.milestones[0].episodes == near)
        let parsed = try JSONSerialization.jsonObject(with: Data(result.milestonesJSON.utf8)) as? [String: Int]
        #expect(parsed == ["near_object": near, "succeeded": result.success.successes])
        #expect(result.milestoneSummary.hasPrefix("near_object \(near)/3, succeeded \(result.success.successes)/3; closest approach median "))
    }
}
