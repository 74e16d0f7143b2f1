import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
import TestSupport
@testable import Training
import VLAModel

@Suite("Speed and progress labels of a demonstration dataset")
struct SpeedAndProgressLabelTests {
    @Test func rowsCarryTheirEpisodesSpeedOverTheMedianAndOutcomeProgress() throws {
        // The same scene demonstrated at 0.5×, 1× and 2× operator speed (32 px: optical flow
        // needs a 16-px coarsest pyramid level).
        let episodes = try [0.5, 1, 2].flatMap { scale in
            try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 32, profile: .speed(scale))
        }
        #expect(episodes.count == 3)
        var failed = episodes[1]
        failed.success = false
        var config = tinyVLAConfig()
        config.imageSize = 32
        config.speedConditioning = true
        config.progressWeight = 1
        let dataset = try DemonstrationDataset(episodes: episodes + [failed], specs: DemoCollector.specs, config: config)

        // Reference: the wrist camera's optical-flow speed measured directly, median per body.
        let speeds = try episodes.map { try SpeedAlignment(camera: "a_wrist").measure($0) }
        let median = speeds.sorted()[1]
        #expect(dataset.stats.speedReference == ["arm7": median])
        #expect(speeds[0] < speeds[1] && speeds[1] < speeds[2], "\(speeds)")

        let picks = [(0, 3), (1, 0), (2, episodes[2].stepCount - 1), (3, 5)]
        let batch = try dataset.hostBatch(picks)
        let expectedLog = [speeds[0], speeds[1], speeds[2], speeds[1]].map { Foundation.log($0 / median) }
        for (got, want) in zip(batch.inputs.logSpeeds, expectedLog) { #expect(abs(got - want) < 1e-5) }
        #expect(batch.inputs.logSpeeds[0] < -0.25 && batch.inputs.logSpeeds[2] > 0.25, "\(batch.inputs.logSpeeds)")
        // Progress t/(T − 1) on successful episodes; the failed copy is labelled 0 (ProgressLabels).
        #expect(batch.progress! == [3 / Float(episodes[0].stepCount - 1), 0, 1, 0])
        #expect(batch.progressMask! == [1, 1, 1, 1])
        let tensors = try batch.tensors()
        #expect(try tensors.progress!.toArray() as [Float] == batch.progress!)
        #expect(try tensors.inputs.logSpeed.toArray() as [Float] == batch.inputs.logSpeeds)
    }

    @Test func speedKnobMustBePositiveAndFinite() throws {
        let (policy, observation) = try tinyPolicyFixture()
        var o = observation
        for bad: Float in [0, -1, .nan, .infinity] {
            o.speed = bad
            #expect(throws: PolicyError.badObservation("speed must be positive and finite, got \(bad)")) { try policy.encoder.hostInputs([o]) }
        }
        o.speed = 2
        #expect(try policy.encoder.hostInputs([o]).logSpeeds == [Foundation.log(2)])
        #expect(try policy.encoder.hostInputs([observation]).logSpeeds == [0])
        // The policy's knob fills in observations that name no speed; an observation's own wins.
        policy.speed = 0.5
        #expect(try policy.inputs([observation, o]).logSpeed.toArray() as [Float] == [Foundation.log(0.5), Foundation.log(2)])
    }
}
