import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Training
import VLAModel

@Suite("RECAP value: returns, bins, distributional value")
struct RECAPValueTests {
    @Test func returnsAndNStepAdvantagesMatchHandComputedValues() {
        let returns = RECAPReturns(failurePenalty: 1)
        // L = 10: −0.1 per step, −1 more on a failure's last step.
        let g = returns.returnsToGo(steps: 4, success: false, stepLimit: 10)
        #expect(zip(g, [-1.4, -1.3, -1.2, -1.1] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
        let success = returns.returnsToGo(steps: 3, success: true, stepLimit: 10)
        #expect(zip(success, [-0.3, -0.2, -0.1] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
        // n = 2, V = (−0.5, −0.4, −0.2, −0.1): A0 = −0.2 + V2 − V0 = 0.1, A1 = −0.2 + V3 − V1 = 0.1,
        // A2 = −0.2 − V2 = 0 and A3 = −0.1 − V3 = 0 (no bootstrap past the end).
        let a = returns.advantages(values: [-0.5, -0.4, -0.2, -0.1], success: true, stepLimit: 10, n: 2)
        #expect(zip(a, [0.1, 0.1, 0, 0] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(a)")
        // A failure's last step carries the penalty: A3 = −1.1 − V3 = −1.0.
        let f = returns.advantages(values: [-0.5, -0.4, -0.2, -0.1], success: false, stepLimit: 10, n: 2)
        #expect(abs(f[3] - -1.0) < 1e-6 && abs(f[2] - -1.0) < 1e-6)
    }

    @Test func twoHotTargetsKeepTheExpectationAndClampToTheGrid() {
        let bins = ReturnBins(low: -2, high: 0, count: 5)   // centres −2, −1.5, −1, −0.5, 0
        #expect(zip(bins.twoHot(-0.8), [0, 0, 0.6, 0.4, 0] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
        for value: Float in [-1.93, -0.8, -0.25, -1.0] {
            let expectation = zip(bins.twoHot(value), bins.centres).map(*).reduce(0, +)
            #expect(abs(expectation - value) < 1e-5)
        }
        #expect(bins.twoHot(0) == [0, 0, 0, 0, 1])
        #expect(bins.twoHot(-3) == [1, 0, 0, 0, 0])
    }

    @Test func crossEntropyMatchesHandComputedValue() throws {
        // log softmax([0, ln 3]) = (ln ¼, ln ¾); −(½ ln ¼ + ½ ln ¾) = 0.836988.
        let logits = try Tensor([0, Float(Foundation.log(3.0))], shape: [1, 2])
        let loss = try StepsToGoValue.crossEntropy(logits: logits, targets: Tensor([0.5, 0.5] as [Float], shape: [1, 2])).item()
        #expect(abs(loss - 0.836988) < 1e-5)
    }

    @Test func valueFittedOnDemosPredictsStepsToGo() throws {
        var c = VLAConfig()
        c.imageSize = 16; c.dims = 32; c.heads = 2; c.backboneLayers = 1; c.expertLayers = 1; c.horizon = 4
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010, 10_011, 10_012], imageSize: 16)
        let encoder = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)), stats: NormalizationStats(episodes: demos))
        let value = try StepsToGoValue(encoder: encoder, hidden: [64, 64], seed: 2)
        try value.fit(episodes: demos, specs: DemoCollector.specs, stepLimit: { _ in 100 }, steps: 400, batchSize: 32, seed: 3)
        var errors: [Float] = [], truth: [Float] = []
        for e in demos {
            let v: [Float] = try value.values(features: value.features(of: e, spec: EmbodimentKind.arm7.spec)).toArray()
            let g = value.returns.returnsToGo(steps: e.stepCount, success: true, stepLimit: 100)
            errors += zip(v, g).map { abs($0 - $1) }
            truth += g
        }
        // Baseline: the best constant (the mean return). The fitted value must do far better.
        let mean = truth.reduce(0, +) / Float(truth.count)
        let baseline = truth.map { abs($0 - mean) }.reduce(0, +) / Float(truth.count)
        let fitted = errors.reduce(0, +) / Float(errors.count)
        #expect(fitted < 0.5 * baseline, "value MAE \(fitted) vs constant \(baseline)")
    }
}
