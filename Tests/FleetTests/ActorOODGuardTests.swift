import Foundation
import Testing
import TestSupport
import RobotData
@testable import RobotSim
import TensorKit
@testable import Fleet
import Training
import VLAModel

@Suite("OOD guard on fleet actors")
struct ActorOODGuardTests {
    @Test func actorScoresEveryChunkAndCorrectsOnlyOutOfDistributionStarts() throws {
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010, 10_011, 10_012], imageSize: 16)
        let stats = NormalizationStats(episodes: demos)
        var options = OODGuardOptions()
        options.mixture.components = 2
        var guardModel = try OODGuard.fit(episodes: demos, specs: DemoCollector.specs, stats: stats, options: options)
        guardModel.correction.rule = .logDensity
        let spec = EmbodimentKind.arm7.spec
        func actor(_ mode: OODGuardMode) throws -> VLAActorPolicy {
            VLAActorPolicy(policy: VLAPolicy(model: try FlowMatchingVLA(config: tinyVLAConfig(), key: RandomKey(seed: 1)), stats: stats),
                           embodiment: spec, seed: 3, ood: .init(guardModel: guardModel, mode: mode))
        }
        // A demo state (in distribution: τ is the 1% quantile of such states) and the same
        // state with every joint pushed 1.5 rad away (far outside).
        let inside = demos[0].policyObservation(at: 5, spec: spec)
        var far = inside
        for j in 0..<7 { far.nativeState[j] += 1.5 }
        func observation(_ o: PolicyObservation) -> Observation {
            Observation(cameraNames: o.cameras.keys.sorted(), images: o.cameras.keys.sorted().map { o.cameras[$0]! },
                        imageWidth: 16, imageHeight: 16, state: o.nativeState, instruction: o.instruction, step: 0)
        }
        let logP = try guardModel.logDensity(nativeStates: [inside.nativeState, far.nativeState], spec: spec)
        let tau = try guardModel.density(for: spec).threshold
        try #require(logP[0] >= tau && logP[1] < tau, "log p \(logP), τ \(tau)")

        let monitor = try actor(.monitor)
        let plainFar = try monitor.actionChunk(observation: observation(far), instruction: far.instruction)
        _ = try monitor.actionChunk(observation: observation(inside), instruction: inside.instruction)
        #expect(monitor.oodCounts.decisions == 2 && monitor.oodCounts.outOfDistributionDecisions == 1 && monitor.oodCounts.correctedChunks == 0)

        // Same seed ⇒ same sampled chunk; in correct mode the actor executes exactly what the
        // guard returns for that chunk from the far start (checked against a direct call).
        let correct = try actor(.correct)
        let correctedFar = try correct.actionChunk(observation: observation(far), instruction: far.instruction)
        let reference = try guardModel.apply(.correct, nativeState: far.nativeState, chunk: plainFar, spec: spec)
        #expect(correctedFar == reference.chunk)
        #expect(correct.oodCounts.outOfDistributionDecisions == 1)
        #expect(correct.oodCounts.correctedChunks == (reference.correctedRows > 0 ? 1 : 0))
        #expect(correct.oodCounts.recoveredStates == (reference.recovered ? 1 : 0))
        // An in-distribution start is executed as sampled.
        let calm = try actor(.correct)
        _ = try calm.actionChunk(observation: observation(inside), instruction: inside.instruction)
        #expect(calm.oodCounts.outOfDistributionDecisions == 0 && calm.oodCounts.correctedChunks == 0)
    }
}
