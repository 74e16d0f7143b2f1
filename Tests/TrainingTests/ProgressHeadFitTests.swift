import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
import TestSupport
@testable import Training
import VLAModel

@Suite("Progress head as a success detector (ProgressLabels, ProgressHeadFit)")
struct ProgressHeadFitTests {
    @Test func labelsRiseOnSuccessesAndAreZeroOnFailures() throws {
        var e = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 0)[0]
        let last = e.stepCount - 1
        #expect(ProgressLabels.label(e, step: 0) == (0, 1))
        #expect(ProgressLabels.label(e, step: 3) == (3 / Float(last), 1))
        #expect(ProgressLabels.label(e, step: last) == (1, 1))
        e.success = false
        #expect(ProgressLabels.label(e, step: last) == (0, 1))
        #expect(ProgressLabels.label(e, step: last, failures: false).weight == 0)
    }

    @Test func separationCountsPairsAndTies() {
        // Successes 0.9, 0.6, 0.4; failures 0.6, 0.2: pairs (0.9 > both) 2 + (0.6 = 0.6, > 0.2) 1.5
        // + (0.4 > 0.2) 1 = 4.5 of 6.
        let s = ProgressHeadFit.separation([0.9, 0.6, 0.4, 0.6, 0.2], outcomes: [true, true, true, false, false])
        #expect(abs(s.auc! - 0.75) < 1e-12)
        #expect(abs(s.meanSuccess! - (0.9 + 0.6 + 0.4) / 3) < 1e-6 && abs(s.meanFailure! - 0.4) < 1e-6)
        // ≥ 0.5 calls success: 0.9, 0.6 right, 0.4 wrong, failure 0.6 wrong, 0.2 right.
        #expect(abs(s.accuracyAtHalf - 0.6) < 1e-12)
        #expect(ProgressHeadFit.separation([0.3, 0.7], outcomes: [true, true]).auc == nil)
    }

    @Test func addingAHeadKeepsEveryOtherWeightAndFrozenSet() throws {
        let (policy, observation) = try tinyPolicyFixture()
        policy.model.freeze(["vision"])
        #expect(policy.model.progressHead == nil)
        let extended = try policy.withProgressHead(seed: 3)
        #expect(extended.model.config.progressWeight == 1 && extended.model.progressHead != nil)
        let before = policy.model.parameters(), after = extended.model.parameters()
        for (key, value) in before { #expect(try value.toArray(Float.self) == after[key]!.toArray(Float.self), "\(key)") }
        #expect(Set(after.keys).subtracting(before.keys).allSatisfy { $0.hasPrefix("progressHead.") })
        #expect(Set(policy.model.trainableParameters().keys).union(["progressHead.up.weight"]).isSubset(of: Set(extended.model.trainableParameters().keys)))
        #expect(extended.model.trainableParameters().keys.allSatisfy { !$0.hasPrefix("vision") })
        let p = try extended.progress(observation)
        #expect(p > 0 && p < 1)
        #expect(try extended.withProgressHead(seed: 4) === extended)
    }

    @Test func headFitsTheMeanLabelOfEachStateUnderEitherRule() throws {
        // One scene, two outcomes: a scripted success and a failure that is the same motion
        // stopped halfway. Where the two share states (the first half) the squared loss's
        // optimum is the mean label: with failures (2·t/(T − 1) + 0) / 3 for two success copies
        // and one failure, without them t/(T − 1). Past the halfway point only successes exist.
        let demo = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 16)[0]
        let (policy, _) = try tinyPolicyFixture()
        let failed = try firstSteps(of: demo, demo.stepCount / 2)
        var fit = ProgressHeadFit(embodiment: .arm7, task: .reach)
        fit.steps = 1500
        fit.batchSize = 64
        fit.learningRate = 3e-3
        let training = [demo, demo, failed]
        let spec = EmbodimentKind.arm7.spec
        let observations = training.flatMap { e in (0..<e.stepCount).map { e.policyObservation(at: $0, spec: spec) } }
        let features = try ProgressHeadFit.features(policy, observations)
        let width = features.count / observations.count
        // Features are what predictProgress reads: the mean of the valid prefix tokens, then the
        // standardized state — recomputed here from the raw tokens.
        let inputs = try policy.inputs([observations[0]])
        let (tokens, mask) = try policy.model.encodePrefix(inputs)
        let t = try tokens.toArray(Float.self), valid = try mask.astype(.float32).toArray(Float.self)
        let d = policy.model.config.dims, rows = valid.indices.filter { valid[$0] > 0 }
        var expected = (0..<d).map { j in rows.reduce(Float(0)) { $0 + t[$1 * d + j] } / Float(rows.count) }
        expected += try (inputs.state * inputs.stateMask).toArray(Float.self)
        #expect(width == expected.count && rows.count < valid.count)   // padding and the missing camera are left out
        for j in 0..<width { #expect(abs(features[j] - expected[j]) < 1e-4, "feature \(j)") }

        let steps = training.flatMap { e in (0..<e.stepCount).map { (e, $0) } }
        let ends = [demo.stepCount - 1, 2 * demo.stepCount + failed.stepCount - 1]   // last rows of a success and of the failure
        var finals: [Bool: [Float]] = [:]
        for failures in [false, true] {
            let head = try MLP(dims: width, hidden: 64, outDims: 1, activation: .gelu, key: RandomKey(seed: 5))
            _ = try fit.fit(head, features: features, width: width, labels: steps.map { ProgressLabels.label($0.0, step: $0.1, failures: failures) })
            let all = try ProgressHeadFit.predict(head, features, width: width)
            finals[failures] = ends.map { all[$0] }
        }
        let halfway = Float(failed.stepCount - 1) / Float(demo.stepCount - 1)
        #expect(finals[true]![0] > 0.85 && finals[false]![0] > 0.85, "\(finals)")   // the success's end
        #expect(abs(finals[true]![1] - 2 * halfway / 3) < 0.06, "\(finals), halfway \(halfway)")
        #expect(abs(finals[false]![1] - halfway) < 0.06, "\(finals), halfway \(halfway)")
    }
    @Test func runRecordsRolloutsAndReturnsThePolicyWithOnlyANewHead() throws {
        let (policy, _) = try tinyPolicyFixture()
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 16)
        var fit = ProgressHeadFit(embodiment: .arm7, task: .reach)
        fit.rolloutSeeds = [20_000, 20_001]
        fit.heldOutSeeds = [0, 1]
        fit.steps = 5
        fit.batchSize = 8
        var lines: [String] = []
        let (fitted, report) = try fit.run(policy: policy, demos: demos) { lines.append($0) }
        #expect(report.rollouts.episodes == 2 && report.heldOut.episodes == 2 && report.checkpointHead == nil)
        // An untrained policy fails its rollouts: only the rule with failures labels their steps.
        let rolloutSteps = report.labelledSteps.withFailures - demos[0].stepCount
        #expect(report.rollouts.successes == 0 && report.labelledSteps.successesOnly == demos[0].stepCount && rolloutSteps > 0)
        let before = policy.model.parameters(), after = fitted.model.parameters()
        for (key, value) in before { #expect(try value.toArray(Float.self) == after[key]!.toArray(Float.self), "\(key)") }
        #expect(after.keys.contains("progressHead.up.weight"))
        #expect(lines.contains { $0.contains("held-out rollouts: 2/2") })
        let json = try JSONEncoder().encode(report)
        let back = try JSONDecoder().decode(ProgressHeadFit.Report.self, from: json)
        #expect(back.withFailures == report.withFailures && back.labelledSteps == report.labelledSteps)
    }
    @Test func fineTuningTrainsTheBackboneAndReportsItsHead() throws {
        let (policy, _) = try tinyPolicyFixture()
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: 16)
        var fit = ProgressHeadFit(embodiment: .arm7, task: .reach)
        fit.rolloutSeeds = [20_000]
        fit.heldOutSeeds = [0, 1]
        fit.steps = 3
        fit.backboneSteps = 3
        var lines: [String] = []
        let (tuned, report) = try fit.run(policy: policy, demos: demos) { lines.append($0) }
        #expect(report.fineTuned != nil)
        #expect(lines.contains { $0.contains("step 3/3") })
        let before = policy.model.parameters(), after = tuned.model.parameters()
        #expect(try before["backbone.0.attention.query.weight"]!.toArray(Float.self) != after["backbone.0.attention.query.weight"]!.toArray(Float.self))
    }
}

/// The first `n` steps of `e`, as a failed episode (the motion stopped there).
private func firstSteps(of e: Episode, _ n: Int) throws -> Episode {
    let rows = { (m: StepMatrix) in try StepMatrix(rows: n, columns: m.columns, values: Array(m.values[0..<(n * m.columns)])) }
    return Episode(embodiment: e.embodiment, task: e.task, instruction: e.instruction,
                   cameras: e.cameras.mapValues { CameraFrames(height: $0.height, width: $0.width, pixels: Array($0.pixels[0..<(n * $0.frameBytes)])) },
                   states: try rows(e.states), nativeActions: try rows(e.nativeActions), unifiedActions: try rows(e.unifiedActions),
                   actionMask: e.actionMask, rewards: Array(e.rewards[0..<n]), dones: Array(repeating: false, count: n),
                   sources: Array(e.sources[0..<n]), timestamps: Array(e.timestamps[0..<n]), success: false, seed: e.seed)
}
