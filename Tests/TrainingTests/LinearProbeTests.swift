import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
@testable import Training
@testable import VLAModel

/// `rows` points of `width` standard-normal features; class c shifts feature 0 by `means[c]`.
private func gaussianClasses(rows: Int, width: Int, means: [Double], seed: UInt64) -> (features: [Float], labels: [Int]) {
    var g = SeededGenerator(seed: seed)
    var x: [Float] = [], y: [Int] = []
    for _ in 0..<rows {
        let c = g.int(0..<means.count)
        y.append(c)
        for j in 0..<width { x.append(Float(g.gaussian() + (j == 0 ? means[c] : 0))) }
    }
    return (x, y)
}

@Suite("Linear probe and the L1 grounding probe")
struct LinearProbeTests {
    @Test func reachesTheBayesAccuracyOfTwoGaussians() throws {
        // Classes N(±e₀, I) in 8 dimensions: the Bayes rule is the sign of x₀, accuracy Φ(1) =
        // 0.841345 (closed form; scipy.stats.norm.cdf(1)). A fitted linear probe gets within
        // sampling error of it (4 000 test rows: σ ≈ 0.006).
        let train = gaussianClasses(rows: 2000, width: 8, means: [-1, 1], seed: 1)
        let test = gaussianClasses(rows: 4000, width: 8, means: [-1, 1], seed: 2)
        let result = try LinearProbe(classes: 2).fit(train: train, test: test, width: 8)
        #expect(abs(result.testAccuracy - 0.841345) < 0.025, "\(result)")
        #expect(abs(result.majorityAccuracy - 0.5) < 0.03)
    }

    @Test func readsNothingFromFeaturesUnrelatedToTheLabels() throws {
        // Four classes with no shift: every rule scores chance (0.25) on new rows (2 000: σ ≈ 0.01).
        let train = gaussianClasses(rows: 400, width: 32, means: [0, 0, 0, 0], seed: 3)
        let test = gaussianClasses(rows: 2000, width: 32, means: [0, 0, 0, 0], seed: 4)
        let result = try LinearProbe(classes: 4).fit(train: train, test: test, width: 32)
        #expect(result.testAccuracy < 0.3, "\(result)")
        #expect(result.trainAccuracy > result.testAccuracy)
    }

    @Test func badDataIsATypedError() throws {
        let probe = LinearProbe(classes: 2)
        let good = gaussianClasses(rows: 20, width: 2, means: [-1, 1], seed: 5)
        #expect(throws: LinearProbeError.shapeMismatch(rows: 20, width: 3, features: 40, labels: 20)) {
            try probe.fit(train: good, test: good, width: 3)
        }
        #expect(throws: LinearProbeError.labelOutOfRange(label: 2, classes: 2)) {
            try probe.fit(train: (good.features, [2] + good.labels.dropFirst()), test: good, width: 2)
        }
        #expect(throws: LinearProbeError.tooFewRows(4)) {
            try probe.fit(train: (Array(good.features.prefix(8)), Array(good.labels.prefix(4))), test: good, width: 2)
        }
    }

    @Test func groundingProbeReadsThePrefixTokensAtEveryDepth() throws {
        var c = smallConfig()
        c.answerWeight = 0.5
        c.pointingWeight = 1
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: c.imageSize)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)), stats: NormalizationStats(episodes: demos))
        var probe = try GroundingProbe(embodiment: .arm7, tasks: [.reach], family: .whereIs)
        probe.trainScenes = 12
        probe.heldOutScenes = 4
        probe.probe.steps = 20
        let report = try probe.run(policy: policy)
        #expect(report.rows.map(\.depth) == [0, 1, 0, 1, 1]
                && report.rows.map(\.readout) == [.sceneImage, .sceneImage, .question, .question, .pointing])
        #expect(report.trainQuestions == 12 && report.heldOutQuestions == 4)
        let whereIs = Set(["far", "near"].flatMap { a in ["left", "right"].map { "\(a) \($0)" } })
        #expect(Set(report.answers).isSubset(of: whereIs) && !report.answers.isEmpty)

        // The last depth's readouts against encodePrefix, computed independently: the scene
        // camera's tokens, and the mean of the question's real tokens.
        let scenes = try probe.questions.scenes(firstSeed: probe.firstSeed, count: 3, imageSize: c.imageSize)
        let features = try probe.features(policy: policy, scenes: scenes)
        let asked = scenes.map { ($0, $0.questions[0]) }
        let inputs = try QuestionPool.inputs(asked, policy: policy)
        let prefixTensor = try policy.model.encodePrefix(inputs).tokens
        let prefix: [Float] = try prefixTensor.toArray()
        let point: [Float] = try policy.model.pointTarget(prefix: prefixTensor).toArray()
        #expect(zip(point, features.pointing).allSatisfy { abs($0 - $1) < 1e-5 } && features.pointing.count == 6)
        let mask: [Bool] = try inputs.tokenMask.toArray()
        let lp = prefix.count / (3 * c.dims), p = c.tokensPerCamera, textStart = c.cameraSlots * p
        for row in 0..<3 {
            let image = Array(prefix[(row * lp * c.dims)..<((row * lp + p) * c.dims)])
            let got = Array(features.sceneImage[1][(row * p * c.dims)..<((row + 1) * p * c.dims)])
            #expect(zip(image, got).allSatisfy { abs($0 - $1) < 1e-5 })
            let real = (0..<c.maxTextLength).filter { mask[row * c.maxTextLength + $0] }
            #expect(real.count == asked[row].1.question.utf8.count + 1)
            for j in 0..<c.dims {
                let mean = real.map { prefix[(row * lp + textStart + $0) * c.dims + j] }.reduce(0, +) / Float(real.count)
                #expect(abs(mean - features.question[1][row * c.dims + j]) < 1e-4)
            }
        }
        #expect(features.answers == asked.map(\.1.answer))
    }

    @Test func groundingProbeRefusesOpenAnswersAndModelsWithoutAnswers() throws {
        #expect(throws: GroundingProbeError.openAnswers(.pointTo)) {
            try GroundingProbe(embodiment: .arm7, tasks: [.reach], family: .pointTo)
        }
        let c = smallConfig()   // answerWeight 0: no answer head
        let demos = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_010], imageSize: c.imageSize)
        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)), stats: NormalizationStats(episodes: demos))
        #expect(throws: GroundingProbeError.noAnswerHead) {
            try GroundingProbe(embodiment: .arm7, tasks: [.reach], family: .whereIs).run(policy: policy)
        }
    }
}
