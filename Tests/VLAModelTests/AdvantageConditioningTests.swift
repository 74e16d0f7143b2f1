import Foundation
import Testing
import RobotData
import TensorKit
@testable import VLAModel

@Suite("RECAP advantage token and classifier-free guidance")
struct AdvantageConditioningTests {
    /// The batch's inputs with every row conditioned on `indicator` (nil: unconditioned).
    func inputs(_ c: VLAConfig, _ indicator: AdvantageIndicator?) throws -> PolicyInputs {
        var inputs = try tinyBatch(c).inputs
        let b = inputs.batchSize
        inputs.advantage = try Tensor([Int32](repeating: indicator?.rawValue ?? 0, count: b), shape: [b])
        inputs.advantageMask = try Tensor([Bool](repeating: indicator != nil, count: b), shape: [b])
        return inputs
    }

    @Test func unconditionedRowsComputeExactlyWhatTheModelWithoutTheTokenComputes() throws {
        let c = tinyConfig()
        let plain = try FlowMatchingVLA(config: c, key: RandomKey(seed: 3))
        plain.freeze(["backbone"])
        let stats = NormalizationStats(episodes: [])
        let conditioned = try VLAPolicy(model: plain, stats: stats).withAdvantageConditioning(seed: 9).model
        #expect(conditioned.config.advantageConditioning && conditioned.advantageEmbedding != nil)
        // Frozen parameters stay frozen; the new token trains.
        #expect(Set(plain.trainableParameters().keys).union(["advantageEmbedding.weight"]) == Set(conditioned.trainableParameters().keys))

        // Reference: the model without the token, same key. Masked token ⇒ identical samples.
        let reference: [Float] = try plain.sampleActions(inputs(c, nil), key: RandomKey(seed: 4)).toArray()
        let unconditioned: [Float] = try conditioned.sampleActions(inputs(c, nil), key: RandomKey(seed: 4)).toArray()
        #expect(zip(reference, unconditioned).allSatisfy { abs($0 - $1) < 1e-5 })
        // An indicator changes the prefix, hence the chunk; positive and negative differ.
        let positive: [Float] = try conditioned.sampleActions(inputs(c, .positive), key: RandomKey(seed: 4)).toArray()
        let negative: [Float] = try conditioned.sampleActions(inputs(c, .negative), key: RandomKey(seed: 4)).toArray()
        #expect(zip(reference, positive).contains { abs($0 - $1) > 1e-4 })
        #expect(zip(positive, negative).contains { abs($0 - $1) > 1e-4 })
    }

    @Test func classifierFreeGuidanceMixesVelocitiesInClosedForm() throws {
        var c = tinyConfig()
        c.advantageConditioning = true
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 5))
        let (cond, uncond) = (try inputs(c, .positive), try inputs(c, nil))
        func sample(_ x: PolicyInputs, cfg: ClassifierFreeGuidance? = nil) throws -> [Float] {
            try model.sampleActions(x, key: RandomKey(seed: 6), steps: 1, classifierFree: cfg).toArray()
        }
        let c1 = try sample(cond), u = try sample(uncond)
        // One Euler step from the same noise x: a = x − v, and v = v_u + w·(v_c − v_u), so the
        // guided chunk is u + w·(c − u) exactly: w = 0 gives u, w = 1 gives c, w = 2 gives 2c − u.
        for w in [0.0, 1.0, 2.0] {
            let guided = try sample(cond, cfg: ClassifierFreeGuidance(unconditioned: uncond, weight: w))
            let expected = zip(c1, u).map { $1 + Float(w) * ($0 - $1) }
            #expect(zip(guided, expected).allSatisfy { abs($0 - $1) < 1e-4 }, "w = \(w)")
        }
        #expect(zip(c1, u).contains { abs($0 - $1) > 1e-4 })
    }

    @Test func advantageTokenGetsGradientOnlyFromConditionedRows() throws {
        var c = tinyConfig()
        c.advantageConditioning = true
        let model = try FlowMatchingVLA(config: c, key: RandomKey(seed: 7))
        func tokenGradient(_ indicator: AdvantageIndicator?) throws -> [Float] {
            var batch = try tinyBatch(c)
            batch.inputs = try inputs(c, indicator)
            let grads = try valueAndGrad(model: model) { m in try m.loss(batch, key: RandomKey(seed: 8)) }(model).grads
            return try grads["advantageEmbedding.weight"]!.toArray()
        }
        // Row 1 of the embedding is "positive": only it moves when rows ask for positive.
        let d = c.dims
        let positive = try tokenGradient(.positive), none = try tokenGradient(nil)
        #expect(positive[d...].contains { $0 != 0 } && positive[..<d].allSatisfy { $0 == 0 })
        #expect(none.allSatisfy { $0 == 0 })
    }
}

@Suite("Camera slots")
struct CameraSlotTests {
    @Test func bimanualWristsGetTheirOwnSlots() {
        // RobotSim's names: "scene", "a_wrist" (single arm), "l_wrist" / "r_wrist" (bimanual).
        #expect(["scene", "a_wrist", "l_wrist", "r_wrist"].map(CameraSlots.slot(for:)) == [0, 1, 1, 2])
        #expect(CameraSlots.isKnown("r_wrist") && !CameraSlots.isKnown("ceiling"))
    }
}
