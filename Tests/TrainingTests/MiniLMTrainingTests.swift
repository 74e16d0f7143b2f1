import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
import TestSupport
@testable import Training
@testable import VLAModel

@Suite("VLA with the MiniLM text encoder")
struct MiniLMTrainingTests {
    static let modelAvailable = (try? MiniLMTextEncoder.defaultDirectory()) != nil

    @Test(.enabled(if: modelAvailable, "all-MiniLM-L6-v2 not found (run scripts/bootstrap, or set SWIFTVLA_MINILM_DIR)"))
    func tinyMiniLMPolicyTrainsSavesWithoutMiniLMAndReloadsExactly() throws {
        var c = tinyVLAConfig()
        c.textEncoder = .miniLM
        c.maxTextLength = 32
        let episodes = try DemoCollector.collect(embodiment: .arm7, task: .reach, seeds: [10_020], imageSize: c.imageSize)
        let dataset = try DemonstrationDataset(episodes: episodes, specs: DemoCollector.specs, config: c)
        let cache = try MiniLMFeatureCache.shared(maxLength: c.maxTextLength)
        let prompt = ObservationEncoder.prompt(EmbodimentKind.arm7.spec, episodes[0].instruction)

        // The host batch carries the cached features of each row's prompt and its WordPiece ids.
        let host = try dataset.hostBatch([(0, 0), (0, 3)])
        let expected = try cache.features(prompt)
        #expect(host.inputs.textFeatureWidth == MiniLMTextEncoder.featureWidth)
        #expect(host.inputs.textFeatures == expected.hiddenStates + expected.hiddenStates)
        #expect(host.inputs.tokens == expected.ids + expected.ids && host.inputs.tokenMask == expected.mask + expected.mask)
        #expect(HostPolicyBatch.concatenated([host, host]).inputs.textFeatures.count == 4 * c.maxTextLength * MiniLMTextEncoder.featureWidth)

        let policy = VLAPolicy(model: try FlowMatchingVLA(config: c, key: RandomKey(seed: 1)), stats: dataset.stats)
        var schedule = TrainingSchedule()
        schedule.totalSteps = 5
        schedule.warmupSteps = 1
        schedule.learningRate = 1e-3
        schedule.batchSize = 4
        let trainer = BehaviorCloningTrainer(policy: policy, schedule: schedule, seed: 3)
        let projectionBefore: [Float] = try policy.model.textProjection!.weight.toArray()
        var generator = SplitMix64(seed: 7)
        for _ in 0..<5 {
            let loss = try trainer.trainStep(dataset.sampleBatch(size: 4, generator: &generator))
            #expect(loss.isFinite)
        }
        // The projection learns (MiniLM itself is not a parameter of the model).
        #expect(try policy.model.textProjection!.weight.toArray(Float.self) != projectionBefore)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vla-minilm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try policy.save(to: dir, optimizer: trainer.optimizer, step: trainer.step)
        // The checkpoint records the choice, never the 90 MB of MiniLM weights.
        let saved = try TensorFile.load(dir.appendingPathComponent("model.safetensors")).tensors
        #expect(Set(saved.keys) == Set(policy.model.parameters().keys))
        #expect(!saved.keys.contains { $0.hasPrefix("encoder.") || $0.hasPrefix("embeddings.") })
        #expect(saved.values.reduce(0) { $0 + $1.count } < 1_000_000)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("config.json"))) as! [String: Any]
        #expect(config["textEncoder"] as? String == "minilm")

        let (restored, step) = try VLAPolicy.load(from: dir)
        #expect(step == 5 && restored.model.config.textEncoder == .miniLM)
        let observation = episodes[0].policyObservation(at: 2, spec: EmbodimentKind.arm7.spec)
        let a = try policy.actionChunk(observation, key: RandomKey(seed: 4))
        let b = try restored.actionChunk(observation, key: RandomKey(seed: 4))
        #expect(a == b)
        #expect(a.count == c.horizon && a[0].count == 8)
    }
}
