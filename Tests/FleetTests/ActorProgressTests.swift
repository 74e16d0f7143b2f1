import Foundation
import Testing
import TestSupport
import RobotData
import RobotSim
import TensorKit
@testable import Fleet
import Training
import VLAModel

@Suite("Actor progress estimate")
struct ActorProgressTests {
    @Test func actorReportsItsProgressHeadsEstimateForTheChunksObservation() throws {
        var model = tinyVLAConfig()
        model.progressWeight = 1
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 16)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: model, key: RandomKey(seed: 1)), stats: NormalizationStats(episodes: demos))
        let actor = VLAActorPolicy(policy: policy, embodiment: EmbodimentKind.arm7.spec, seed: 2)
        #expect(actor.progressEstimate == nil)
        let env = try RobotEnvironment(embodiment: .arm7, task: .reach, seed: 3, config: EnvironmentConfig(imageWidth: 16, imageHeight: 16))
        let observation = env.reset()
        _ = try actor.actionChunk(observation: observation, instruction: env.instruction)
        // Reference: the head evaluated directly on the same observation.
        let expected = try policy.progress(PolicyEvaluator.policyObservation(observation, env: env))
        #expect(actor.progressEstimate == expected)
        #expect(expected > 0 && expected < 1)

        // A policy without the head has no estimate, so the gate's progress rule stays off.
        let plain = VLAActorPolicy(policy: VLAPolicy(model: try FlowMatchingVLA(config: tinyVLAConfig(), key: RandomKey(seed: 1)),
                                                     stats: NormalizationStats(episodes: demos)),
                                   embodiment: EmbodimentKind.arm7.spec, seed: 2)
        _ = try plain.actionChunk(observation: observation, instruction: env.instruction)
        #expect(plain.progressEstimate == nil)
    }
}
