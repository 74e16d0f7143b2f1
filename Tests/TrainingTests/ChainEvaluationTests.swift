import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Training
import VLAModel

@Suite("Chained evaluation")
struct ChainEvaluationTests {
    /// Ten chains of 5 that completed 5, 3, 0, 1, 5, 2, 4, 5, 0, 3 instructions in a row:
    /// average 28/10 = 2.8; at least k in a row for k = 1…5: 8, 7, 6, 4, 3 of 10. The Wilson
    /// intervals are scipy's (`binomtest(k, 10).proportion_ci(method="wilson")`, scipy 1.17.1).
    @Test func statisticsMatchHandComputedValues() throws {
        let completed = [5, 3, 0, 1, 5, 2, 4, 5, 0, 3]
        // Steps of each completed goal: goal j of a chain took 10·(j + 1) steps.
        // Chains short of 5 ended on push (0, 1, 2 completed) or pick_place (3, 4, 3).
        let outcomes = completed.map { n in
            ChainOutcome(stepsPerCompletedGoal: (0..<n).map { 10 * ($0 + 1) }, failedTask: n == 5 ? nil : n < 3 ? .push : .pickPlace)
        }
        let stats = ChainStatistics(length: 5, outcomes: outcomes)
        #expect(stats.chains == 10 && stats.completed == completed)
        #expect(Swift.abs(stats.averageLength - 2.8) < 1e-12)
        #expect(stats.inARow.map(\.successes) == [8, 7, 6, 4, 3])
        #expect(stats.inARow.allSatisfy { $0.episodes == 10 })
        let wilson: [(Double, Double)] = [(0.4902, 0.9433), (0.3968, 0.8922), (0.3127, 0.8318), (0.1682, 0.6873), (0.1078, 0.6032)]
        for (rate, (low, high)) in zip(stats.inARow, wilson) {
            #expect(Swift.abs(rate.interval95.low - low) < 1e-4 && Swift.abs(rate.interval95.high - high) < 1e-4)
        }
        // 28 completed goals: 8 firsts (10), 7 seconds (20), 6 thirds (30), 4 fourths (40), 3 fifths (50)
        // = 80 + 140 + 180 + 160 + 150 = 710 steps → 710 / 28.
        #expect(Swift.abs(stats.meanStepsPerCompletedGoal - 710.0 / 28.0) < 1e-12)
        let json = try JSONSerialization.jsonObject(with: Data(stats.json(extra: #", "operator": true"#).utf8)) as! [String: Any]
        #expect(json["average_length"] as? Double == 2.8 && json["chains"] as? Int == 10 && json["operator"] as? Bool == true)
        #expect((json["in_a_row"] as? [[String: Any]])?.count == 5)
        #expect(stats.failuresByTask == [.push: 4, .pickPlace: 3])
        #expect(json["failures_by_task"] as? [String: Int] == ["reach": 0, "push": 4, "pick_place": 3])
    }

    @Test func noChainsGiveZerosNotNaN() {
        let stats = ChainStatistics(length: 3, outcomes: [])
        #expect(stats.averageLength == 0 && stats.meanStepsPerCompletedGoal == 0)
        #expect(stats.inARow.map(\.successes) == [0, 0, 0])
    }

    /// The evaluator's operator mode is the environment's operator run, seed by seed.
    @Test func operatorChainsMatchTheEnvironmentsOwnRuns() throws {
        let chain = try TaskChain(length: 3)
        let stats = try PolicyEvaluator.evaluateChains(.scriptedOperator, embodiment: .arm7, chain: chain, seeds: [2, 3])
        let direct = try [UInt64(2), 3].map {
            try RobotEnvironment(embodiment: .arm7, chain: chain, seed: $0, config: EnvironmentConfig(renderImages: false)).runChainWithOperator()
        }
        #expect(stats.completed == direct.map(\.completed))
        #expect(stats.completed == [3, 3])
    }

    /// An untrained policy whose arm joints JPM steers exactly (oracle point, strength = sampling
    /// steps) reaches what the instruction names; the second reach only succeeds if the evaluator
    /// gave the next instruction and JPM re-aimed at its object.
    @Test func policyChainsMoveOnToTheNextInstructionAndReAimJPM() throws {
        let c = smallConfig()
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_001], imageSize: c.imageSize)
        let dataset = try DemonstrationDataset(episodes: demos, specs: DemoCollector.specs, config: c)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)), stats: dataset.stats)
        let env = try RobotEnvironment(embodiment: .arm7, chain: TaskChain(length: 2, tasks: [.reach]), seed: 1,
                                       config: EnvironmentConfig(imageWidth: c.imageSize, imageHeight: c.imageSize))
        #expect(env.goals[0].object != env.goals[1].object)
        let jpm = JointPredictionModule(strength: Double(c.samplingSteps), pointSource: .oracle)
        let outcome = try PolicyEvaluator.runChain(policy: policy, environment: env, key: RandomKey(seed: 1), jpm: jpm)
        #expect(outcome.completed == 2)
        #expect(env.goalIndex == 1)
        // JPM's last target is the second goal's object.
        let target = try #require(jpm.worldTarget), centre = env.objectPosition(env.goals[1].object)
        #expect(((target - centre) * (target - centre)).sum().squareRoot() < 0.035)
        // Without JPM the same untrained policy fails the first reach: the chain ends at 0.
        let unguided = try PolicyEvaluator.runChain(policy: policy, environment: env, key: RandomKey(seed: 1))
        #expect(unguided.completed == 0 && unguided.failedTask == .reach)
    }
}
